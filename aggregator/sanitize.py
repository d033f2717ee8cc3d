"""Entry HTML made safe once, with nh3 (Ammonia), before anything stores or republishes it.

What survives is the markup the document format needs (`class`, `loading`, `alt`, `srcset`,
`data-recalc-dims`, `referrerpolicy`, headings, paragraphs, images); what goes is scripts,
event handlers, `javascript:`/`data:` URLs, styles and iframes other than the allow-list.
Relative links and images are made absolute against the entry's base URL and every `<img>`
gets `referrerpolicy="no-referrer"` (image hosts such as Aljazeera's refuse hot-linking with
a referrer).

When the cleaned HTML means exactly the same as the input (the same tree under an HTML5
parser, which is what browsers use), the input's own text is kept, so a clean source comes
out byte for byte as it went in rather than re-serialised.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import nh3
from selectolax.lexbor import LexborHTMLParser

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
BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*(?=\n)")


def _iframe_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "iframe" and attribute == "src":
        host = urlsplit(value).hostname or ""
        return value if host in IFRAME_HOSTS and value.startswith("https://") else None
    return value


def _cleaner_options(base: str | None, iframes: bool) -> dict:
    tags = TAGS | {"iframe"} if iframes else TAGS
    options: dict = {
        "tags": tags,
        "clean_content_tags": {"script", "style", "noscript", "template", "object", "embed"},
        "attributes": ATTRIBUTES,
        "url_schemes": URL_SCHEMES,
        "set_tag_attribute_values": {"img": {"referrerpolicy": "no-referrer"}},
        "strip_comments": True,
    }
    if iframes:
        options["attribute_filter"] = _iframe_filter
    # Relative URLs are resolved against the entry; without a base they cannot be, so they go.
    options["url_relative"] = ("rewrite_with_base", base) if base else "deny"
    return options


def sanitize_html(fragment: str, base: str | None = None) -> str:
    """Return `fragment` safe to embed in a page; keep the original text if it was already."""
    return clean_html(fragment, base)[0]


def clean_html(fragment: str, base: str | None = None) -> tuple[str, str | None]:
    """`sanitize_html` and `first_image` of its result in one go: each entry's HTML is parsed
    once for both, which is most of what sanitising costs after nh3 itself."""
    if not fragment:
        return "", None
    if base is not None and not base.startswith(("http://", "https://")):
        base = None
    iframes = "<iframe" in fragment.lower()
    cleaned = nh3.clean(fragment, **_cleaner_options(base, iframes))
    if cleaned == fragment:
        return fragment, first_image(fragment)
    original_tree = _parse_wrapped(fragment)
    cleaned_tree = _parse_wrapped(cleaned)
    if _same_parsed(original_tree, cleaned_tree):
        return fragment, _first_src(original_tree)
    return cleaned, _first_src(cleaned_tree)


def plain_text(fragment: str | None) -> str:
    """Titles and authors are text: drop any markup, decode entities, fold whitespace."""
    if not fragment:
        return ""
    text = nh3.clean(fragment, tags=set()) if "<" in fragment else fragment
    text = html.unescape(text)
    folded = " ".join(text.split())
    if folded.isprintable():  # the usual case, without a Python loop over every character
        return folded
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())


def absolute_url(url: str | None, base: str | None) -> str | None:
    """An http(s) URL made absolute against `base`, or None when it is not a web URL."""
    if not url:
        return None
    url = url.strip()
    if base:
        url = urljoin(base, url)
    return url if url.startswith(("http://", "https://")) else None


def first_image(fragment: str) -> str | None:
    """The `src` of the first `<img>` in already-sanitised HTML."""
    if "<img" not in fragment:
        return None
    node = LexborHTMLParser(fragment).css_first("img[src]")
    return node.attributes.get("src") if node is not None else None


def strip_blank_lines(fragment: str) -> str:
    """Remove whitespace-only lines: in Markdown a blank line would end the HTML block."""
    return BLANK_LINES.sub("", fragment.strip("\n")).strip()


def _same_tree(original: str, cleaned: str) -> bool:
    return _same_parsed(_parse_wrapped(original), _parse_wrapped(cleaned))


def _parse_wrapped(fragment: str) -> LexborHTMLParser:
    # The wrapper and the trailing sentinel catch unbalanced markup (an unclosed <div>) that
    # would otherwise swallow whatever the document or page puts after the entry.
    return LexborHTMLParser(f"<body><div>{fragment}</div><i></i></body>")


def _same_parsed(original: LexborHTMLParser, cleaned: LexborHTMLParser) -> bool:
    """Whether two parsed fragments are the same tree. Equal serialisations (lexbor, in C)
    mean equal trees; only when they differ (attribute order, say) is the tree walked."""
    first, second = original.body, cleaned.body
    if first is not None and second is not None and first.html == second.html:
        return True
    return _shape(original) == _shape(cleaned)


def _first_src(tree: LexborHTMLParser) -> str | None:
    """What `first_image` gives, from an already parsed tree."""
    for node in tree.tags("img"):
        attributes = node.attributes
        if "src" in attributes:
            return attributes["src"]
    return None


def _tree(fragment: str) -> list[tuple]:
    """The parsed tree as a flat list of (depth, tag, attributes) / (depth, text) items."""
    return _shape(LexborHTMLParser(f"<body>{fragment}</body>"))


def _shape(tree: LexborHTMLParser) -> list[tuple]:
    body = tree.body
    shape: list[tuple] = []
    stack = [(body, 0)] if body is not None else []
    while stack:
        node, depth = stack.pop()
        if node.tag == "-text":
            shape.append((depth, "#", node.text_content))
            continue
        attrs = tuple(sorted((key, value or "") for key, value in node.attributes.items()))
        shape.append((depth, node.tag, attrs))
        children = list(node.iter(include_text=True))
        stack.extend((child, depth + 1) for child in reversed(children))
    return shape
