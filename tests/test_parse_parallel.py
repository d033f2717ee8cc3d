"""The fast paths give exactly what the plain ones give.

Parsing in worker processes must return the same entries as `parse_feed` in this process,
and the sanitiser (`clean_html`) HTML in the normal form that means what nh3 wrote and its
first image, on every feed in tests/data and on generated ones.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedworld import DATA, rsshub_feed, rsshub_item
from htmltree import same_tree
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config.settings import Config
from aggregator.errors import ParseError
from aggregator.models import Source
from aggregator.poll import workers
from aggregator.poll.pipeline import Pipeline
from aggregator.poll.processes import ParserProcesses
from aggregator.sources.markup_bounds import text_of, within_bounds
from aggregator.sources.parse import parse_feed
from aggregator.sources.sanitize import clean_html, clean_markup, first_image
from aggregator.store.database import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from world import feed_xml

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = Source(name="corpus", url="https://chinese.aljazeera.net/news", author="Someone")


def corpus() -> list[tuple[str, bytes]]:
    """Every feed file in tests/data, plus RSSHub-shaped and bench-world feeds."""
    feeds = [
        (path.name, path.read_bytes())
        for path in sorted(DATA.iterdir())
        if path.suffix in {".rss", ".xml", ".rdf", ".atom"}
    ]
    odd_bodies = [
        "<p>未闭合的段落<div>还有一个",
        '<img src="/relative.jpg"><script>alert(1)</script><p onclick="x()">点击</p>',
        '<p><a href="javascript:alert(1)">链接</a><img alt src="https://a.example/x.png"></p>',
        '<iframe src="https://www.youtube.com/embed/x"></iframe><iframe src="http://evil/"></iframe>',
        "<!-- 注释 --><p>文字</p>",
        "",
    ]
    items = [rsshub_item(i, body=body) for i, body in enumerate(odd_bodies)]
    feeds.append(("rsshub-odd", rsshub_feed(items + [rsshub_item(i) for i in range(6, 12)])))
    feeds.append(("world-0", feed_xml(0, 0)))
    feeds.append(("world-7-v3", feed_xml(7, 3)))
    feeds.append(("not-a-feed", b"<html><body>Not a feed</body></html>"))
    feeds.append(("empty", b""))
    return feeds


def parse_or_error(body: bytes) -> object:
    try:
        return parse_feed(body, SOURCE, SOURCE.url, {}, NOW)
    except ParseError as exc:
        return ("ParseError", str(exc))


@pytest.fixture
def pipeline(make_config) -> Iterator[Pipeline]:
    config: Config = make_config([{"name": "corpus", "url": SOURCE.url}])
    store = Store(config.paths.database)
    opened = Pipeline(config, store, parse_processes=2)
    yield opened
    opened.close()
    store.close()


def test_worker_processes_parse_exactly_like_this_process(pipeline: Pipeline) -> None:
    for name, body in corpus():
        plain = parse_or_error(body)
        try:
            parallel: object = pipeline.parsers.parse(body, SOURCE, SOURCE.url, {}, NOW)
        except ParseError as exc:
            parallel = ("ParseError", str(exc))
        assert parallel == plain, name


def test_the_normal_form_means_what_nh3_wrote_on_the_corpus() -> None:
    """What `clean_html` gives is nh3's cleaning in the normal form: the same tree, the same
    first image, and kept byte for byte when it is already written that way."""
    import feedparser

    for name, body in corpus():
        parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
        for raw in parsed.entries:
            for fragment in [raw.get("summary") or ""] + [
                c.get("value") or "" for c in raw.get("content") or []
            ]:
                base = raw.get("link")
                cleaned, image = clean_html(fragment, base)
                nh3_wrote = clean_markup(fragment, base) if fragment else ""
                assert same_tree(cleaned, nh3_wrote), name
                assert image == first_image(nh3_wrote), name
                assert clean_html(cleaned, base) == (cleaned, image), name


HTML_PIECES = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        '<img src="a.jpg">',
        '<img alt src="https://x.example/b.png?a=1&b=2">',
        "<img>",
        '<img src="javascript:x">',
        "<script>x</script>",
        "<b>",
        "</b>",
        "<table><tr><td>",
        "</table>",
        "<!-- c -->",
        '<a href="/x" onclick="y">',
        "</a>",
        "文字",
        "&amp;",
        "&",
        "<",
        " ",
        "\n",
        '<iframe src="https://www.youtube.com/embed/v"></iframe>',
        '<span class="c" style="color:red">',
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(HTML_PIECES, max_size=12), st.sampled_from([None, "https://e.example/p/"]))
def test_the_normal_form_means_what_nh3_wrote_on_any_markup(
    pieces: list[str], base: str | None
) -> None:
    fragment = "".join(pieces)
    cleaned, image = clean_html(fragment, base)
    if not within_bounds(fragment):  # kept as its text (tests/test_markup_bounds.py)
        fragment = text_of(fragment)
    nh3_wrote = clean_markup(fragment, base) if fragment else ""
    assert same_tree(cleaned, nh3_wrote)
    assert image == first_image(nh3_wrote)
    assert clean_html(cleaned, base) == (cleaned, image)


def test_the_time_limit_is_not_taken_for_a_failure_by_the_code_it_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path falls back to feedparser on any Exception: it took the limit's first
    alarm, a ParseError, for a fault of its own, and feedparser read on with none left (14
    minutes for a feed in punycode). Here the parsing swallows every Exception."""

    def swallowing(*args: object) -> str:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            with contextlib.suppress(Exception):
                time.sleep(0.01)
        return "read to the end"

    monkeypatch.setattr(workers, "parse_task", swallowing)
    started = time.monotonic()
    with pytest.raises(ParseError, match=r"took longer than 0\.2 s"):
        workers.limited_parse_task(0.2)
    assert time.monotonic() - started < 2


def test_a_feed_slow_to_read_is_refused_and_the_parser_process_goes_on() -> None:
    """feedparser looks through an entry's tags for each new one: an item of 30,000
    categories, in a feed it reads (a comment in the title keeps the fast path out), takes it
    over ten seconds. A parser process refuses a feed past its limit and parses the next."""
    categories = "".join(f"<category>c{i}</category>" for i in range(30_000))
    slow = (
        '<rss version="2.0"><channel><title>t</title><item><title>a<!-- c -->b</title>'
        f"{categories}</item></channel></rss>"
    ).encode()
    parsers = ParserProcesses(1, parse_seconds=0.5)
    source = Source("slow", "https://slow.example/feed")
    try:
        with pytest.raises(ParseError, match=r"took longer than 0\.5 s"):
            parsers.parse(slow, source, source.url, {}, datetime.now(UTC))
        plain = (DATA / "aljazeera.rss").read_bytes()
        assert parsers.parse(plain, source, source.url, {}, datetime.now(UTC)).entries
    finally:
        parsers.close()
