"""Markup that would make an HTML parser do far more work than its length (deep nesting,
formatting elements reopened after every block) is kept as text; real articles, sloppy ones
too, are untouched. A property test checks the model against lexbor's actual tree."""

from __future__ import annotations

import html
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedworld import DATA, rsshub_feed, rsshub_item
from htmltree import shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from aggregator.models import Source
from aggregator.sources import markup_bounds as bounds
from aggregator.sources.markup_bounds import text_of, within_bounds
from aggregator.sources.parse import parse_feed
from aggregator.sources.sanitize import clean_html, clean_markup, plain_text

FORMATTING_200 = "".join(f'<b id="{i}">' for i in range(200))


def reopening(hide: str) -> str:
    """100 groups of 10 distinct <b> with their end tags put where `hide` has E, then
    16,000 blocks."""
    groups = "".join(
        "".join(f'<b id="{g}-{j}">' for j in range(10)) + hide.replace("E", "</b>" * 10)
        for g in range(100)
    )
    return "<p>" + groups + "x</p>" + "<p>x</p>" * 16000


HOSTILE = {
    "nested divs": "<div>" * 40000,
    "reopened formatting": "<p>" + FORMATTING_200 + "x</p>" + "<p>x</p>" * 16000,
    "twelve reopened again and again": "<p>"
    + "".join(f'<i id="{i}">' for i in range(12))
    + "x</p>"
    + "<p>x</p>" * 16000,
    "quotes hiding >": "<p>" + "".join(f'<b title=">{i}">' for i in range(200)) + "x</p>",
    "end tags out of scope": reopening("<object>E</object>"),
    "end tags in a textarea": reopening("<textarea>E</textarea>"),
    "end tags in bogus comments": reopening("E").replace("</b>", "</3 </b>"),
    "end tags in a comment": reopening("<!--E-->"),
    "end tags in CDATA": reopening("<svg><![CDATA[>E]]></svg>"),
    "end tags in an attribute": reopening('<i title="E">'),
    "a comment opened in a textarea": "<textarea><!--</textarea>" + "<div>" * 40000,
    "a quote opened in a textarea": '<textarea><b title="</textarea>' + "<div>" * 40000 + '">',
    "formatting opened in SVG": "<p><svg>" + FORMATTING_200 + "</svg></p>" + "<p>x</p>" * 16000,
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_markup_is_kept_as_text_of_bounded_size(name: str) -> None:
    fragment = HOSTILE[name]
    assert not within_bounds(fragment)
    cleaned, image = clean_html(fragment, "https://x.example/")
    assert "<" not in cleaned and image is None
    assert len(cleaned) <= len(fragment)
    assert "<" not in plain_text(fragment)


def test_the_guard_is_needed_where_it_says() -> None:
    """What the limits are for: unguarded, 130 KB of the reopening payload comes out of
    the cleaner about 30 times larger."""
    fragment = HOSTILE["reopened formatting"]
    assert len(clean_markup(fragment)) > 10 * len(fragment)


ARTICLES = {
    "links and emphasis": '<p>一段 <a href="https://x.example/a">链接</a> 和 <b>粗体</b>，'
    '<em>强调</em><br><img src="https://x.example/i.png"></p>\n' * 2000,
    "unclosed paragraphs and items": '<p>文字 <font color="red">红 <b>粗 <p>下一段 <li>项 <li>项'
    * 500,
    "bold left open in every paragraph": "<p><b>粗体文字</p><p>下一段文字" * 1000,
    "tables": "<table><tr><td><b>a</b><td><i>b</i></tr><tr><td>c</table>" * 500,
    "nested lists": ("<ul><li>a" * 40 + "</ul>" * 40) * 50,
    "paragraphs in buttons": "<p><button></p>" * 20000,
    "abrupt comments are real comments": reopening("<!-->E"),
}


@pytest.mark.parametrize("name", ARTICLES)
def test_articles_real_and_sloppy_are_untouched(name: str) -> None:
    fragment = ARTICLES[name]
    assert within_bounds(fragment)
    assert clean_html(fragment, "https://x.example/")[0].count("<") >= fragment.count("<") // 2


def test_the_corpus_is_within_bounds() -> None:
    for path in [*DATA.iterdir(), Path(__file__).parents[2] / "shared/examples/aljazeera-news.rss"]:
        if path.is_file():
            assert within_bounds(html.unescape(path.read_text(encoding="utf-8", errors="replace")))


def test_text_of_leaves_no_markup() -> None:
    assert text_of('<b title="x">a</b><!-- c --> 1 < 2 <![CDATA[d]]><i') == " a   1 < 2   "


def test_a_feed_with_such_an_entry_says_so() -> None:
    source = Source("s", "https://x.example/feed")
    body = rsshub_feed([rsshub_item(1), rsshub_item(2, body=HOSTILE["reopened formatting"])])
    parsed = parse_feed(body, source, source.url, {}, datetime.now(UTC))
    assert len(parsed.entries) == 2
    assert parsed.error and "kept as text" in parsed.error
    assert "<" not in parsed.entries[1].content


# -- the model against the real parser --------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "x", " ", "<p>", "</p>", "<div>", "</div>", "<li>", "<ul>", "</ul>", "<span>",
        "</span>", "<table>", "<td>", "</table>", "<object>", "</object>", "<button>",
        "</button>", "<select>", "</select>", "<option>", "<svg>", "</svg>", "<textarea>",
        "</textarea>", "<!--", "-->", "<![CDATA[", "]]>", "</3 ", ">", '<i title="', '">',
        "<br>", "<a href=x>", "</a>", "<nobr>", "</nobr>", "<h1>", "<dd>", "<dt>",
        "<style>", "</style>", "<title>", "</title>", "<math>", "</math>", "<xmp>", "</xmp>",
        "<noscript>", "</noscript>", "<?", "<!x", "'", "=",
    ]
)  # fmt: skip
FORMATTING = st.builds(
    lambda name, n, closing: f"</{name}>" if closing else f'<{name} id="{n}">',
    st.sampled_from(["b", "i", "em", "font", "u"]),
    st.integers(0, 30),
    st.booleans(),
)


@settings(
    max_examples=int(os.environ.get("BOUNDS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(TOKENS | FORMATTING, min_size=1, max_size=60), st.integers(1, 30))
def test_the_model_counts_at_least_what_lexbor_builds(parts: list[str], repeat: int) -> None:
    """Read with the limits out of the way, the model is within a factor of four of
    lexbor's actual tree: the adoption agency, tables, foster parenting and SVG are
    approximated, so lexbor may nest deeper and build more elements (implied parents, the
    agency's clones, reopened elements) than the model counts, but not without bound.
    Whatever the markup, the parser's work stays proportional to what the limits allow."""
    fragment = "".join(parts) * repeat
    limits = (bounds.MAX_OPEN_ELEMENTS, bounds.MAX_ACTIVE_FORMATTING, bounds.REOPEN_BUDGET)
    bounds.MAX_OPEN_ELEMENTS = bounds.MAX_ACTIVE_FORMATTING = bounds.REOPEN_BUDGET = 10**9
    try:
        model = bounds._Model(len(fragment))
        model.read(fragment)
    finally:
        bounds.MAX_OPEN_ELEMENTS, bounds.MAX_ACTIVE_FORMATTING, bounds.REOPEN_BUDGET = limits
    tree = shape(LexborHTMLParser(f"<body>{fragment}</body>"))
    elements = sum(1 for item in tree if item[1] != "#")
    depth = max(item[0] for item in tree)
    assert depth <= 4 * model.deepest + 8
    assert elements <= 4 * (fragment.count("<") + model.reopened) + 8
