"""Entry HTML made safe once, with nh3 (Ammonia), before anything stores or republishes it.

What survives is the markup the document format needs (`class`, `loading`, `alt`, `srcset`,
`data-recalc-dims`, `referrerpolicy`, headings, paragraphs, images); what goes is scripts,
event handlers, `javascript:`/`data:` URLs, styles and iframes other than the allow-list.
Relative links and images (`srcset` too) are made absolute against the entry's base URL and
every `<img>` gets `referrerpolicy="no-referrer"` (image hosts such as Aljazeera's refuse
hot-linking with a referrer). An `<iframe>` is kept only with an `https://` source on one of
`IFRAME_HOSTS` (video players); any other iframe is removed whole.

What comes out is nh3's serialisation (html5ever's, which follows the HTML standard's) in one
normal form: void elements without end tags, character references decoded except `&amp;`,
`&lt;`, `&gt;`, `&quot;` and `&nbsp;`. Spellings that mean the same to a browser do not to
every Markdown processor a document goes through (kramdown, Jekyll's, shows `</br>` and
`&#X61;` as text and loses its place after `<P>` inside `<p>`), so an input's own text is
never kept as it was written. Two liberties with html5ever's form keep clean real-world
markup byte for byte as it came (`shared/examples/seed-document.md`): an empty attribute is
written bare (`alt`), and a `&` that starts no character reference is left bare (a URL's
`?w=770&resize=...`). Attribute values also escape `<` and `>`, as the standard now does.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import nh3

from aggregator.sources.markup_bounds import text_of, within_bounds
from aggregator.text import one_line

IFRAME_HOSTS = frozenset(
    {
        "www.youtube.com",
        "www.youtube-nocookie.com",
        "player.vimeo.com",
        "player.bilibili.com",
        "www.dailymotion.com",
    }
)
TAGS = (nh3.ALLOWED_TAGS | {"figure", "figcaption", "picture", "source", "video", "audio"}) - {
    "map",
    "area",
}
GLOBAL_ATTRIBUTES = {"class", "title", "lang", "dir"}
ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": GLOBAL_ATTRIBUTES,
    "img": {
        "src",
        "srcset",
        "sizes",
        "alt",
        "width",
        "height",
        "loading",
        "decoding",
        "data-recalc-dims",
        "referrerpolicy",
    },
    "a": {"href", "hreflang", "title"},
    "source": {"src", "srcset", "type", "media", "sizes"},
    "video": {"src", "poster", "controls", "width", "height", "preload"},
    "audio": {"src", "controls", "preload"},
    "iframe": {"src", "width", "height", "allowfullscreen", "frameborder"},
}
URL_SCHEMES = {"http", "https", "mailto"}


# What an HTML parser would take for the start of a tag, a comment or a declaration; and for
# a character reference.
TAG_LIKE = re.compile(r"<[A-Za-z/!?]")
# A start or end tag without `=` (so without an attribute value), and its name as an HTML
# parser reads it (`<T, E>`: "t,"); and the opening tag of an element whose content an HTML
# parser takes as code, not text, up to its closing tag or the end.
TAG_SHAPED = re.compile(r"</?([A-Za-z][^\s/<>=]*)[^<>=]*>")
RAW_TEXT_OPENER = re.compile(r"<(script|style|template)\b[^<>]*>", re.IGNORECASE)
# The elements of HTML (current and obsolete) and the roots of SVG and MathML in HTML.
_ELEMENT_NAMES = """
    a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound
    big blink blockquote body br button canvas caption center cite code col colgroup data
    datalist dd del details dfn dialog dir div dl dt em embed fieldset figcaption figure font
    footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe image img
    input ins isindex kbd keygen label legend li link listing main map mark marquee math menu
    menuitem meta meter multicol nav nextid nobr noembed noframes noscript object ol optgroup
    option output p param picture plaintext portal pre progress q rb rp rt rtc ruby s samp
    script search section select slot small source spacer span strike strong style sub
    summary sup svg table tbody td template textarea tfoot th thead time title tr track tt u
    ul var video wbr xmp"""
HTML_ELEMENTS = frozenset(_ELEMENT_NAMES.split())
ENTITY_LIKE = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);?")
# An iframe whose source the filter refused, as html5ever serialises it; removed whole.
BARE_IFRAME = re.compile(r"<iframe\b(?![^>]*\ssrc=)[^>]*>.*?</iframe>", re.DOTALL)
SRCSET_URL = re.compile(r"[\s,]*(\S+)")
# The attributes ammonia treats as URLs among those allowed here (tests/test_sanitize.py
# asks nh3 which they are), as html5ever writes them: a value that may be relative.
URL_ATTRIBUTES = ("href", "src", "poster")
# Cleaning adds `rel="noopener noreferrer"` to links, `referrerpolicy` to images and closes
# tags: a link-only fragment grows 3.4x. More than this is markup making the parser build
# elements the input does not have.
MAX_GROWTH = 4
# An absolute http(s) URL of plain ASCII with a host name (no user, no IPv6 brackets, no
# spaces or quotes), no `;` in its path and no empty `?` or `#`: what urllib's parse and
# unparse give back as it is (tests/test_sanitize.py holds the two to the same answers).
PLAIN_WEB_URL = re.compile(
    r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~!$&'()*+,=:@%/-]*)?"
    r"(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]+)?(?:#[A-Za-z0-9._~!$&'()*+,;=:@%/?-]+)?"
)
# What RFC 3986 allows in a URI as it is: unreserved, reserved and `%` of an escape.
URI_CHARACTERS = "-._~:/?#[]@!$&'()*+,;=%"
LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
MAYBE_RELATIVE_URL = re.compile(rf'\s(?:{"|".join(URL_ATTRIBUTES)})="(?!https?://)')
# A tag as html5ever writes one (allowed names only, values always in double quotes, which
# they never contain) and what `normal_form` changes in it; an escaped `&` and what it
# would be taken for unescaped (HTML's rule, as `html.unescape` applies it).
SERIALISED_TAG = re.compile(r'<[a-z][a-z0-9]*(?: [a-z][a-z0-9_:-]*(?:="[^"]*")?)+>')
NEEDS_TAG_WORK = re.compile(r'=""|="[^"]*[<>]')
EMPTY_VALUE = re.compile(r'(?<=[a-z0-9_:-])=""')
ANGLE_IN_VALUE = re.compile(r'="[^"]*[<>][^"]*"')
ESCAPED_AMPERSAND = re.compile(r"&amp;(?=(#|[^\t\n\f <&#;]{1,32};?)?)")


def _attribute_filter(base: str | None) -> Callable[[str, str, str], str | None]:
    """The checks nh3 cannot express: iframe hosts, the URLs inside `srcset`, and URLs
    that are not plainly absolute."""

    def check(tag: str, attribute: str, value: str) -> str | None:
        if attribute == "srcset":
            return absolute_srcset(value, base)
        if tag == "iframe" and attribute == "src":
            host = urlsplit(value).hostname or ""
            return value if host in IFRAME_HOSTS and value.startswith("https://") else None
        if attribute in URL_ATTRIBUTES and not value.startswith(("http://", "https://", "mailto:")):
            return _web_url(value, base)
        return value

    return check


def _web_url(value: str, base: str | None) -> str | None:
    """A URL nh3 let through that is not plainly absolute: " https://x", "HTTPS://x" or
    "https:/x" (which a browser resolves against the page, as urljoin does against the
    entry) made absolute http(s), or a mailto: kept; None for anything else."""
    value = value.strip()
    scheme, colon, rest = value.partition(":")
    if colon and scheme.lower() in ("http", "https", "mailto"):
        value = f"{scheme.lower()}:{rest}"
    return value if value.startswith("mailto:") else valid_url(absolute_url(value, base))


def srcset_candidates(value: str) -> list[tuple[str, str]]:
    """A `srcset` as (URL, descriptor) pairs, as HTML splits it: a URL is a run of
    non-spaces (trailing commas end it), its descriptor runs to the next comma."""
    candidates: list[tuple[str, str]] = []
    position = 0
    while match := SRCSET_URL.match(value, position):
        url, position = match.group(1), match.end()
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = value.find(",", position)
            end = len(value) if end < 0 else end
            descriptor, position = value[position:end].strip(), end + 1
        if url:
            candidates.append((url, descriptor))
    return candidates


def absolute_srcset(value: str, base: str | None) -> str | None:
    """`srcset` with every candidate URL absolute http(s); others dropped."""
    candidates: list[str] = []
    changed = False
    for url, descriptor in srcset_candidates(value):
        absolute = valid_url(absolute_url(url, base))
        changed = changed or absolute != url
        if absolute:
            candidates.append(f"{absolute} {descriptor}".strip())
    if not candidates:
        return None  # nothing usable (blank, or no web URL): drop the attribute
    return value if not changed else ", ".join(candidates)


def _cleaner_options(base: str | None, iframes: bool, srcset: bool = False) -> dict:
    tags = TAGS | {"iframe"} if iframes else TAGS
    options: dict = {
        "tags": tags,
        "clean_content_tags": {"script", "style", "noscript", "template", "object", "embed"},
        "attributes": ATTRIBUTES,
        "url_schemes": URL_SCHEMES,
        "set_tag_attribute_values": {"img": {"referrerpolicy": "no-referrer"}},
        "strip_comments": True,
    }
    # A Python call per attribute: only on the path for entries whose URLs need work.
    options["attribute_filter"] = _attribute_filter(base)
    # Relative URLs are resolved against the entry; without a base they cannot be, so they go.
    options["url_relative"] = ("rewrite_with_base", base) if base else "deny"
    return options


def sanitize_html(fragment: str, base: str | None = None) -> str:
    """`fragment` safe to embed in a page, in the normal form (`normal_form`)."""
    if not fragment:
        return ""
    if not within_bounds(fragment):
        fragment = text_of(fragment)  # markup no article has, that would cost minutes
    cleaned = clean_markup(fragment, base)
    if len(cleaned) > MAX_GROWTH * len(fragment) + 65536:  # should markup_bounds miss a way
        fragment = text_of(fragment)
        cleaned = clean_markup(fragment, base)
    return normal_form(cleaned)


def clean_markup(fragment: str, base: str | None = None) -> str:
    """The cleaning itself: nh3 and what it cannot express."""
    if base is not None and not base.startswith(("http://", "https://")):
        base = None
    lowered = fragment.lower()
    iframes, srcset = "<iframe" in lowered, "srcset" in lowered
    if not (iframes or srcset):
        # One prepared cleaner for every entry: building nh3's options anew is half of its
        # time. It leaves relative URLs alone, so when its output holds none it is what the
        # entry's own options would give too; otherwise those options do the work.
        cleaned = _shared_cleaner().clean(fragment)
        if not MAYBE_RELATIVE_URL.search(cleaned):
            return cleaned
    return clean_with_base(fragment, base, iframes, srcset)


def clean_with_base(fragment: str, base: str | None, iframes: bool, srcset: bool) -> str:
    """nh3 with options made for this entry: its base URL, iframe hosts, `srcset` URLs, and
    URLs nh3 takes for absolute that are not plainly so."""
    try:
        cleaned = nh3.clean(fragment, **_cleaner_options(base, iframes, srcset))
    except ValueError:
        # A base nh3 cannot parse (an entry link like "https://:host/"): relative URLs
        # cannot be resolved against it, so they go, as without any base.
        cleaned = nh3.clean(fragment, **_cleaner_options(None, iframes, srcset))
    if iframes:
        cleaned = BARE_IFRAME.sub("", cleaned)
    return cleaned


@functools.cache
def _shared_cleaner() -> nh3.Cleaner:
    options = _cleaner_options(None, iframes=False)
    options["url_relative"] = "pass_through"
    # No Python call per attribute: output with a URL that needs work (MAYBE_RELATIVE_URL)
    # is cleaned again with the entry's own options.
    del options["attribute_filter"]
    return nh3.Cleaner(**options)


def clean_html(fragment: str, base: str | None = None) -> tuple[str, str | None]:
    """`sanitize_html` and the `first_image` of its result: what parsing an entry needs."""
    normal = sanitize_html(fragment, base)
    return normal, first_image(normal)


def normal_form(serialised: str) -> str:
    """html5ever's serialisation of a fragment (nh3's output) with the liberties the module's
    docstring names: empty attributes bare, `&` unescaped where it starts no reference, `<`
    and `>` escaped in attribute values. The tree is the same."""
    if '="' in serialised and NEEDS_TAG_WORK.search(serialised):
        serialised = SERIALISED_TAG.sub(_normal_tag, serialised)
    if "&amp;" in serialised:
        serialised = ESCAPED_AMPERSAND.sub(_bare_ampersand, serialised)
    return serialised


def _normal_tag(match: re.Match[str]) -> str:
    tag = match.group(0)
    if "<" in tag[1:] or ">" in tag[:-1]:
        tag = ANGLE_IN_VALUE.sub(_escape_angles, tag)
    return EMPTY_VALUE.sub("", tag) if '=""' in tag else tag


def _escape_angles(match: re.Match[str]) -> str:
    return match.group(0).replace("<", "&lt;").replace(">", "&gt;")


def _bare_ampersand(match: re.Match[str]) -> str:
    """`&amp;` as `&` when what follows would not be read as a character reference."""
    follows = match.group(1)
    if follows is None:
        return "&"
    if follows == "#" or html.unescape("&" + follows) != "&" + follows:
        return "&amp;"
    return "&"


def plain_text(fragment: str | None, *, as_of_0_3: bool = False) -> str:
    """Titles and authors are text: drop any markup, decode entities, fold whitespace.

    Markup that arrives escaped, once or more (`&lt;img onerror=...&gt;`, which feedparser's
    lenient parser passes on as it is, or `&amp;lt;...`), is decoded and dropped too: a feed
    reader that takes a title for HTML, or decodes it once more, would otherwise run it.
    Double-escaped entities (`AT&amp;amp;T`) come out decoded. What only looks like a tag
    stays (`Option<T>`, `Result<T, E>`, `Vec<String>`: see `_as_text`); the price is that a
    title about a literal `<div>` loses that word.

    `as_of_0_3`: the text as releases up to 0.3 made it, which dropped every tag-shaped
    word and the rest of a title after an unclosed `<script>`, and took format characters
    (ZWNJ, ZWJ, direction marks) and characters newer than Python's Unicode tables for
    controls. An entry with neither id nor link is known by a digest of its title: that
    one stays as it was, or an upgrade would store such an entry a second time."""
    if not fragment:
        return ""
    if not within_bounds(fragment):
        fragment = text_of(fragment)
    strip = _without_tags_0_3 if as_of_0_3 else _without_tags
    text = strip(fragment) if "<" in fragment else fragment
    text = html.unescape(text)
    for _ in range(8):  # one layer of escaping a round; real titles need none
        if "<" in text and TAG_LIKE.search(text):
            decoded = html.unescape(strip(text))
        elif "&" in text and ENTITY_LIKE.search(text):
            decoded = html.unescape(text)
        else:
            break
        if decoded == text:
            break
        text = decoded
    if as_of_0_3:
        return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return one_line(text)


def _without_tags(fragment: str) -> str:
    """The text of `fragment` (escaped), every tag dropped."""
    return nh3.clean(_as_text(fragment), tags=set())


def _without_tags_0_3(fragment: str) -> str:
    return nh3.clean(fragment, tags=set())


def _as_text(fragment: str) -> str:
    """`fragment` made ready for dropping its tags without dropping what it says:

    - what looks like a tag but names no HTML element and sets no attribute (`<T>`,
      `<T, E>`, `<String>`) is escaped: read as HTML it is an unknown element that shows
      and hides nothing, read as text it is what the title says;
    - the opening tag of a `<script>`, `<style>` or `<template>` never closed is removed:
      an HTML parser takes the whole rest of the title for code after it ("Why <script
      async> matters" read "Why"). Closed, their content goes with them."""
    if "<" not in fragment:
        return fragment
    fragment = TAG_SHAPED.sub(_pseudo_tag, fragment)
    lowered = fragment.lower()
    for opener in reversed(list(RAW_TEXT_OPENER.finditer(fragment))):
        if f"</{opener.group(1).lower()}" not in lowered[opener.end() :]:
            fragment = fragment[: opener.start()] + " " + fragment[opener.end() :]
    return fragment


def _pseudo_tag(match: re.Match[str]) -> str:
    name = match.group(1).lower()
    if name in HTML_ELEMENTS or "-" in name:  # a custom element a site may define
        return match.group(0)
    return "&lt;" + match.group(0)[1:]


def absolute_url(url: str | None, base: str | None) -> str | None:
    """An http(s) URL made absolute against `base`, or None when it is not a web URL."""
    if not url:
        return None
    url = url.strip()
    if not url.isprintable():  # control characters: invalid in a URL and in XML
        url = "".join(ch for ch in url if ch.isprintable())
    if PLAIN_WEB_URL.fullmatch(url):
        # What urljoin and urlsplit would give back unchanged, whatever the base: two
        # pure-Python URL parses an entry's link and images skip (a tenth of parsing).
        return url
    if base:
        try:
            url = urljoin(base, url)
        except ValueError:  # a base like "http://[::1" that cannot be split
            return None
    if not url.startswith(("http://", "https://")):
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return url if host else None  # "https://:8080/x" or "https:///x" lead nowhere


def valid_url(url: str | None) -> str | None:
    """`url` with every character RFC 3986 does not allow percent-encoded (a space, a
    quote, `<`, non-ASCII text as UTF-8; a non-ASCII host in IDNA), so that what we publish
    passes a feed validator; characters it allows, escapes included, are left as they are."""
    if not url or PLAIN_WEB_URL.fullmatch(url):
        return url
    url = LONE_PERCENT.sub("%25", url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = parts.netloc
        if not host.isascii():
            netloc = netloc.replace(host, host.encode("idna").decode("ascii"))
    except (ValueError, UnicodeError):
        netloc = None
    if netloc is not None and netloc != parts.netloc:
        url = urlunsplit(parts._replace(netloc=netloc))
    return quote(url, safe=URI_CHARACTERS)


# Images that are no picture of the article: FeedBurner's share buttons and its pixel.
NOT_A_PICTURE = re.compile(r"^https?://feeds\.feedburner\.com/~(?:ff|r)/")
# An <img> as html5ever writes it: lower-case names, values in double quotes (a `"` in one
# is `&quot;`), an empty value written or (the normal form) not.
SERIALISED_IMG = re.compile(r'<img((?: [a-z][a-z0-9_:-]*(?:="[^"]*")?)*)>')
IMG_ATTRIBUTE = re.compile(r' ([a-z][a-z0-9_:-]*)(?:="([^"]*)")?')
PIXEL_SIZES = {"0", "1", "2"}


def first_image(fragment: str) -> str | None:
    """The `src` of the first `<img>` in already-sanitised HTML that shows something: not
    a tracking pixel (width or height of 2 or less) nor a share button, which would
    otherwise become a post's cover. Read from html5ever's serialisation, whose tags have
    one shape (`SERIALISED_IMG`), without parsing the fragment again: this was a fifth of
    sanitising an entry (tests/test_sanitize.py checks it against an HTML parser's)."""
    if "<img" not in fragment:
        return None
    for tag in SERIALISED_IMG.finditer(fragment):
        attributes: dict[str, str] = {}
        for name, value in IMG_ATTRIBUTE.findall(tag.group(1)):
            attributes.setdefault(name, html.unescape(value) if "&" in value else value)
        src = attributes.get("src") or ""
        if attributes.get("width") in PIXEL_SIZES or attributes.get("height") in PIXEL_SIZES:
            continue
        if src and not NOT_A_PICTURE.match(src):
            return src
    return None
