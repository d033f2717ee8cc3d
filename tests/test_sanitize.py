"""The shortcuts in `sanitize` against the plain way (one prepared nh3 cleaner instead of
options built per entry: same output for any HTML), and the normal form it writes."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import nh3
import pytest
from feedfuzz import URLS, html_fragments
from htmltree import same_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invariants import check_safe_html

from aggregator.sources import sanitize
from aggregator.sources.markup_bounds import text_of, within_bounds

SHORTCUTS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASES = st.sampled_from(
    [None, "https://example.org/news/story-1", "http://example.org/", "https://:host/", "ftp://x/"]
)
RELATIVE_PARTS = st.sampled_from(
    ['<a href="rel/x">a</a>', '<img src="/i.png">', '<a href="mailto:a@b.example">m</a>',
     '<video poster="p.jpg" src="v.mp4"></video>', '<a href>bare</a>', '<img src="">',
     '<a href="HTTP://UPPER.example/">u</a>', '<a href=" https://space.example/">s</a>',
     '<img srcset="a.png 1x, /b.png 2x">', '<iframe src="https://www.youtube.com/embed/x">'
     "</iframe>", '<p data-src="x">text with href="fake" inside</p>',
     '<img alt src="https://x.example/a.jpg?w=1&resize=2" referrerpolicy="no-referrer">']
)  # fmt: skip


def test_the_url_attributes_are_the_ones_nh3_treats_as_urls() -> None:
    """Ask nh3 which allowed attributes it resolves or drops as relative URLs."""
    deny = sanitize._cleaner_options(None, iframes=True)
    deny.pop("attribute_filter", None)
    keep = {**deny, "url_relative": "pass_through"}
    treated = set()
    for tag, attributes in sanitize.ATTRIBUTES.items():
        for attribute in attributes | sanitize.GLOBAL_ATTRIBUTES:
            element = "div" if tag == "*" else tag
            html = f'<{element} {attribute}="rel/x">x</{element}>'
            if nh3.clean(html, **deny) != nh3.clean(html, **keep):
                treated.add(attribute)
    assert treated == set(sanitize.URL_ATTRIBUTES)


@SHORTCUTS
@given(parts=st.lists(html_fragments() | RELATIVE_PARTS, max_size=4), base=BASES | URLS)
def test_the_prepared_cleaner_gives_what_per_entry_options_give(
    parts: list[str], base: str | None
) -> None:
    fragment = "".join(parts)
    usable = base if base and base.startswith(("http://", "https://")) else None
    lowered = fragment.lower()
    expected = sanitize.clean_with_base(fragment, usable, "<iframe" in lowered, "srcset" in lowered)
    assert sanitize.clean_markup(fragment, base) == expected


@SHORTCUTS
@given(parts=st.lists(html_fragments() | RELATIVE_PARTS, max_size=4), base=BASES)
def test_the_normal_form_means_what_nh3_wrote(parts: list[str], base: str | None) -> None:
    """The same tree as nh3's own output and the same first image."""
    fragment = "".join(parts)
    cleaned, image = sanitize.clean_html(fragment, base)
    if not within_bounds(fragment):  # kept as its text (tests/test_markup_bounds.py)
        fragment = text_of(fragment)
    nh3_wrote = sanitize.clean_markup(fragment, base) if fragment else ""
    assert same_tree(cleaned, nh3_wrote)
    assert image == sanitize.first_image(nh3_wrote)
    assert not re.search(r"</(?:br|img|hr|source|wbr)\b", cleaned, re.IGNORECASE)
    assert not re.search(r"&(?!amp;|lt;|gt;|quot;|nbsp;)#", cleaned)


def test_a_clean_source_is_kept_as_it_was_written() -> None:
    """`alt` without a value and a bare `&` mean what nh3's `alt=""` and `&amp;` mean."""
    fragment = '<p><img alt src="https://x.example/a.jpg?w=1&resize=2"></p>'
    cleaned, image = sanitize.clean_html(fragment, "https://x.example/")
    assert "referrerpolicy" in cleaned  # not clean: the attribute is added
    source = fragment.replace("<img ", '<img referrerpolicy="no-referrer" ')
    assert sanitize.clean_html(source, "https://x.example/") == (source, image)


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("<p>one<br></br>two</p>", "<p>one<br><br>two</p>"),  # a browser's two breaks
        ("<p>line<br/>next<BR>end<br />.</p>", "<p>line<br>next<br>end<br>.</p>"),
        ('<p>x<img src="https://a.example/i.png" referrerpolicy="no-referrer"></img></p>',
         '<p>x<img src="https://a.example/i.png" referrerpolicy="no-referrer"></p>'),
        ("<p>&#X61;&#x62;&#99;&eacute;&#39;&#123;</p>", "<p>abcé'{</p>"),
        ("<p>&copy 2024 &notit; &amp; &amp;x</p>", "<p>© 2024 ¬it; & &x</p>"),
        ("<p>1 &lt; 2 &gt; 0, &quot;q&quot;&nbsp;AT&T &# &amp;amp; &amp;copy</p>",
         '<p>1 &lt; 2 &gt; 0, "q"&nbsp;AT&T &amp;# &amp;amp; &amp;copy</p>'),
        ('<p><a href="https://a.example/?x=1&y=2&amp;z=3&copy=4&amp;lt;">a</a></p>',
         '<p><a href="https://a.example/?x=1&y=2&z=3&amp;copy=4&amp;lt;"'
         ' rel="noopener noreferrer">a</a></p>'),
        ("<P CLASS=x>a<P>b</P><ul><li>c<li>d</ul>",
         '<p class="x">a</p><p>b</p><ul><li>c</li><li>d</li></ul>'),
        ('<p><img alt="" title=\'say "<b>"\' src="https://a.example/i.png"></p>',
         '<p><img alt title="say &quot;&lt;b&gt;&quot;" src="https://a.example/i.png"'
         ' referrerpolicy="no-referrer"></p>'),
        ('<p title="">x=""</p>', '<p title>x=""</p>'),
    ],
    ids=["br-end-tag", "br-spellings", "img-end-tag", "references", "legacy-named",
         "normal-references", "bare-ampersands", "implied-tags", "attributes",
         "empty-value-not-text"],
)  # fmt: skip
def test_sanitised_html_is_written_in_its_normal_form(fragment: str, expected: str) -> None:
    """Kramdown (Jekyll) shows `</br>` and `&#X61;` as text: what comes out is html5ever's
    serialisation (void elements without end tags, only `&amp;` `&lt;` `&gt;` `&quot;`
    `&nbsp;`), with empty attributes bare and a `&` that starts no reference left bare."""
    cleaned, _ = sanitize.clean_html(fragment, "https://a.example/")
    assert cleaned == expected
    assert same_tree(cleaned, sanitize.clean_markup(fragment, "https://a.example/"))
    assert sanitize.clean_html(cleaned, "https://a.example/")[0] == cleaned


@pytest.mark.parametrize(
    ("fragment", "with_base", "without_base"),
    [
        # Found by the fuzzer: one "/" lost from an image's URL. nh3 took it for absolute;
        # a browser resolves it against the page, as urljoin does against the entry.
        (
            '<img src="https:/chinese.aljazeera.net/x.jpg">',
            "https://x.example/chinese.aljazeera.net/x.jpg",
            None,
        ),
        ('<a href="HTTPS://A.example/x">a</a>', "https://A.example/x", "https://A.example/x"),
        ('<a href=" https://a.example/b ">a</a>', "https://a.example/b", "https://a.example/b"),
        ('<a href="MAILTO:x@y.example">m</a>', "mailto:x@y.example", "mailto:x@y.example"),
        ('<a href="http:rel.html">r</a>', None, None),
    ],
)
def test_urls_that_are_not_plainly_absolute_become_so_or_go(
    fragment: str, with_base: str | None, without_base: str | None
) -> None:
    for base, expected in (("https://x.example/news/1", with_base), (None, without_base)):
        cleaned, _ = sanitize.clean_html(fragment, base)
        check_safe_html(cleaned)
        if expected:
            assert f'="{expected}"' in cleaned, cleaned
        else:
            assert "href=" not in cleaned and "src=" not in cleaned, cleaned


def _absolute_url_by_urllib(url: str, base: str | None) -> str | None:
    """`absolute_url` as urllib alone decides it: the reference its shortcut is held to."""
    if not url:
        return None
    url = "".join(ch for ch in url.strip() if ch.isprintable())
    if base:
        try:
            url = urljoin(base, url)
        except ValueError:
            return None
    if not url.startswith(("http://", "https://")):
        return None
    try:
        return url if urlsplit(url).hostname else None
    except ValueError:
        return None


SCHEMES = st.sampled_from(["http", "https", "HTTP", "ftp"])
URL_TEXT = st.text(alphabet="htps:/?#[]@!$&'()*+,;=%._~-aZ09 \t\\\"<>中", max_size=40)
PART = st.text(alphabet="az09/.-_~!$&'()*+,;=:@%?#[] \"<>中", max_size=12)
# Built like a URL, so that most examples are near the shortcut's edge.
SHAPED_URL = st.builds(
    "{}://{}{}{}{}{}".format,
    SCHEMES,
    st.one_of(st.text(alphabet="a09.-", min_size=1, max_size=6), st.text("aZ09.-@[]:", max_size=9)),
    st.sampled_from(["", ":80", ":", ":99999", ":1234567"]),
    st.one_of(st.just(""), PART.map("/{}".format)),
    st.one_of(st.just(""), PART.map("?{}".format)),
    st.one_of(st.just(""), PART.map("#{}".format)),
)


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(URL_TEXT, SHAPED_URL),
    st.sampled_from([None, "", "https://x.example/news/1", "http://x.example/a/", "ftp://f/"]),
)
def test_plain_absolute_urls_skip_urllib_and_come_out_the_same(url: str, base: str | None) -> None:
    assert sanitize.absolute_url(url, base) == _absolute_url_by_urllib(url, base)


@pytest.mark.parametrize(
    ("html", "image"),
    [
        ('<img src="https://x.test/a.jpg"><img src="https://x.test/b.jpg">', "https://x.test/a.jpg"),
        ('<img src="https://x.test/p.gif" width="1" height="1"><img src="https://x.test/a.jpg">',
         "https://x.test/a.jpg"),
        ('<a href="http://feeds.feedburner.com/~ff/X?a=1"><img src="http://feeds.feedburner.com/'
         '~ff/X?d=y"></a><img src="http://feeds.feedburner.com/~r/X/~4/abc" height="1">', None),
        ("<p>no picture</p>", None),
    ],
    ids=["first", "after-a-pixel", "share-buttons-and-pixel-only", "none"],
)  # fmt: skip
def test_the_first_image_is_a_picture(html: str, image: str | None) -> None:
    assert sanitize.clean_html(html, "https://x.test/")[1] == image


def _first_image_by_parser(fragment: str) -> str | None:
    """`first_image` as an HTML parser (lexbor) reads the fragment: what the shortcut of
    reading html5ever's serialisation by pattern must give."""
    from selectolax.lexbor import LexborHTMLParser

    for node in LexborHTMLParser(fragment).css("img[src]"):
        attributes = node.attributes
        src = attributes.get("src") or ""
        if attributes.get("width") in sanitize.PIXEL_SIZES:
            continue
        if attributes.get("height") in sanitize.PIXEL_SIZES:
            continue
        if src and not sanitize.NOT_A_PICTURE.match(src):
            return src
    return None


IMAGES = st.builds(
    "<img{}{}{}>".format,
    st.sampled_from(
        ['', ' src=""', ' src', ' SRC="https://x.example/upper.jpg"', ' src="/rel.png"',
         ' src="https://x.example/a.jpg?w=770&resize=770%2C433"',
         ' src="https://x.example/a.jpg?a=1&amp;copy=2&lt;"', ' src="data:image/png;base64,AA"',
         ' src="https://x.example/q&quot;uote&#39;s&nbsp;.jpg"', ' src=https://x.example/bare.jpg',
         " src='https://x.example/single.jpg'", ' src="http://feeds.feedburner.com/~ff/X?d=y"',
         ' src="https://x.example/a b>c<d.jpg"', ' src="https://x.example/1.jpg" src="https://x.example/2.jpg"']
    ),
    st.sampled_from(
        ['', ' width="1"', ' height="2"', ' width="0" height="300"', ' width="10"', ' width=" 1"',
         ' WIDTH="1"', ' width']
    ),
    st.sampled_from(
        ['', ' alt', ' alt=""', ' alt="a > b"', ' alt="say &quot;hi&quot;"', ' title="<img src=x>"',
         ' srcset="a.png 1x, /b.png 2x"', ' data-recalc-dims="1"', ' loading="lazy"',
         ' onerror="x()"', ' referrerpolicy="no-referrer"', ' class="wp-image-1 aligncenter"',
         ' /']
    ),
)  # fmt: skip


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(html_fragments() | IMAGES | RELATIVE_PARTS, max_size=5),
    base=BASES,
)
def test_the_first_image_read_by_pattern_is_the_one_an_html_parser_finds(
    parts: list[str], base: str | None
) -> None:
    """From the normal form (what entries carry) and from nh3's own serialisation."""
    fragment = "".join(parts)
    cleaned, image = sanitize.clean_html(fragment, base)
    assert image == _first_image_by_parser(cleaned)
    if within_bounds(fragment) and fragment:
        nh3_wrote = sanitize.clean_markup(fragment, base)
        assert sanitize.first_image(nh3_wrote) == _first_image_by_parser(nh3_wrote)


def test_every_attribute_an_image_may_keep_is_read_by_the_pattern() -> None:
    """An allowed attribute the pattern could not read would hide the image after it."""
    names = sanitize.ATTRIBUTES.get("img", set()) | sanitize.GLOBAL_ATTRIBUTES
    for name in names:
        cleaned, image = sanitize.clean_html(
            f'<img {name}="v" src="https://x.example/a.jpg">', "https://x.example/"
        )
        assert image is not None and image == _first_image_by_parser(cleaned), (name, cleaned)
