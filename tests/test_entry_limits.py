"""Bounds on what one poll keeps: a title is a line, a feed cannot flood the site."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from feedworld import rsshub_feed, rsshub_item

from aggregator.config.settings import ConfigError
from aggregator.models import Entry, EntryLimits, ParsedFeed
from aggregator.sources.entry_limits import limit_entry, limit_feed, shorten

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def entry(**fields) -> Entry:
    base = {
        "source": "s", "identity": "1", "link": None, "title": "T", "author": None,
        "published": None, "updated": None, "content": "<p>c</p>", "image": None,
    }  # fmt: skip
    return Entry(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "cut"),
    [
        ({"title": "word " * 1000}, ["titles"]),
        ({"author": "x" * 500}, ["authors"]),
        ({"categories": tuple(f"c{i}" for i in range(50))}, ["categories beyond the limit"]),
        ({"categories": ("y" * 500,)}, ["category names"]),
        ({"content": "<p>" + "<b>long</b> " * 100_000 + "</p>"}, ["contents"]),
        ({"title": "a normal title", "content": "<p>an article</p>"}, []),
    ],
    ids=["title", "author", "many-categories", "long-category", "content", "within"],
)
def test_each_field_is_bounded(fields: dict, cut: list[str]) -> None:
    limits = EntryLimits()
    limited, what = limit_entry(entry(**fields), limits)
    assert what == cut
    assert len(limited.title) <= limits.title
    assert len(limited.author or "") <= limits.author
    assert len(limited.categories) <= limits.categories
    assert all(len(name) <= limits.category for name in limited.categories)
    assert len(limited.content) <= limits.content + 1000  # escaping may add a little
    if not cut:
        assert limited == entry(**fields)


def test_a_cut_content_is_its_text_not_broken_markup() -> None:
    limited, _ = limit_entry(
        entry(content="<p>" + "<b>x &amp; y</b> " * 10_000), EntryLimits(content=100)
    )
    assert limited.content.startswith("<p>x &amp; y x") and limited.content.endswith("…</p>")
    assert "<b>" not in limited.content


def test_shorten_cuts_at_a_word() -> None:
    assert shorten("one two three four five", 14) == "one two three…"
    assert shorten("short", 10) == "short"
    assert len(shorten("x" * 100, 10)) == 10


def test_a_feed_keeps_its_newest_entries_and_says_what_was_cut() -> None:
    entries = tuple(entry(identity=str(i), title="t" * (400 if i == 0 else 5)) for i in range(30))
    parsed = limit_feed(ParsedFeed(entries, error="malformed feed (x)"), EntryLimits(entries=10))
    assert [e.identity for e in parsed.entries] == [str(i) for i in range(10)]
    assert parsed.error == (
        "malformed feed (x); cut to the configured limits: entries beyond the first 10 (20), "
        "titles (1)"
    )


def test_a_huge_feed_is_stored_within_the_limits(feed_server, make_config, pipeline_for) -> None:
    items = [rsshub_item(0, title="长" * 200_000)] + [rsshub_item(i) for i in range(1, 40)]
    feed_server.serve("/feed", rsshub_feed(items))
    config = make_config(
        [{"name": "big", "url": feed_server.url("/feed")}], limits={"entries": 25, "title": 80}
    )
    pipeline = pipeline_for(config)
    (result,) = pipeline.update_all()
    assert result.new == 25
    state = pipeline.store.source_state("big")
    assert state.status == "warning" and "titles (1)" in (state.error or "")
    longest = max(len(p.read_text("utf-8")) for p in config.paths.documents.iterdir())
    assert longest < 20_000


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"title": 0}, "limits.title"),
        ({"entries": 10**12}, "limits.entries"),
        ({"content": "lots"}, "limits.content"),
        ({"words": 3}, "limits.words"),
    ],
    ids=["zero", "huge", "not-a-size", "unknown-key"],
)
def test_limits_are_validated(make_config, limits: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config([{"name": "a", "url": "http://127.0.0.1:1/"}], limits=limits)
