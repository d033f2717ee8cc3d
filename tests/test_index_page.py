"""The status page: every published feed linked and auto-discoverable, each source's state,
the latest entries, and nothing a feed sent left unescaped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from feedworld import rsshub_feed, rsshub_item

from aggregator.config.settings import Config
from aggregator.models import Entry, Source, StoredEntry
from aggregator.outputs.feed_groups import feed_groups, published_feeds
from aggregator.outputs.feeds import FeedInfo
from aggregator.poll.pipeline import Pipeline
from aggregator.service.index_page import index_page_for, render_index
from aggregator.sources.discover import feed_links as advertised_feeds
from aggregator.store.database import Store
from aggregator.store.rows import SourceState


class Page(HTMLParser):
    """The tags of a page, to check it parses and to read its links."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.anchors: list[str | None] = []
        self.scripts = 0
        self.feed(data.decode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))
        elif tag == "a":
            self.anchors.append(dict(attrs).get("href"))
        elif tag == "script":
            self.scripts += 1


@pytest.fixture
def passed(feed_server, make_config) -> Iterator[tuple[Config, Store]]:
    feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
    feed_server.serve("/broken", b"nope", status=500)
    config = make_config(
        [
            {"name": "news", "url": feed_server.url("/news"), "categories": ["新闻", "World"]},
            {"name": "broken", "url": feed_server.url("/broken"), "title": "Broken <b>"},
            {"name": "paused", "url": feed_server.url("/paused"), "enabled": False},
        ]
    )
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store)
    pipeline.update_all()
    pipeline.close()
    yield config, store
    store.close()


def test_page_links_every_published_feed(passed: tuple[Config, Store]) -> None:
    config, store = passed
    page = index_page_for(config, store)
    parsed = Page(page)
    alternates = [link for link in parsed.links if link.get("rel") == "alternate"]
    # Advertised in the head: merged + 2 categories, three formats each (the source feeds
    # would be thousands of tags for a large config).
    assert len(alternates) == 3 * (1 + 2)
    assert not [link for link in alternates if "source/" in (link["href"] or "")]
    for link in alternates:
        href = link["href"]
        assert href and href in parsed.anchors
    # Linked in the body: every feed publish() wrote, the 3 sources' too.
    feeds = [href for href in parsed.anchors if href and href.endswith((".xml", ".json"))]
    assert len(feeds) == 3 * (1 + 2 + 3)
    for href in feeds:
        path = href.replace("%E6%96%B0%E9%97%BB", "新闻")
        assert (config.paths.public / path).is_file(), href  # published, so servable
    assert {link["type"] for link in alternates} == {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
    }
    # A reader's autodiscovery (ours, as `add` uses it) finds the feeds, merged first.
    found = advertised_feeds(page, "http://127.0.0.1:8080/")
    assert [f.url for f in found[:3]] == [
        "http://127.0.0.1:8080/feed.xml",
        "http://127.0.0.1:8080/atom.xml",
        "http://127.0.0.1:8080/feed.json",
    ]
    assert found[3].url == "http://127.0.0.1:8080/category/%E6%96%B0%E9%97%BB/feed.xml"


def test_page_shows_sources_and_latest_entries(passed: tuple[Config, Store]) -> None:
    config, store = passed
    text = index_page_for(config, store).decode("utf-8")
    assert "<td>ok</td>" in text and "<td>3</td>" in text
    assert '<td class="error">error</td>' in text and "HTTP 500" in text
    assert "<td>disabled</td>" in text
    assert "Broken &lt;b&gt;" in text and "Broken <b>" not in text
    assert text.count("新闻标题 第") == 3
    assert text.index("新闻标题 第0条") < text.index("新闻标题 第2条")  # newest first


def test_whatever_a_feed_sends_is_escaped() -> None:
    nasty = '"><script>alert(1)</script>'
    entry = Entry("s", "1", 'https://x.example/?a=1&b="2"', nasty, None, None, None, "", None)
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    stored = StoredEntry(1, entry, moment, moment, "x.md", source_title=nasty)
    source = Source("s", "https://x.example/feed", categories=(nasty,))
    state = SourceState("s", source.url, status="error", error=nasty, entries=1)
    links = published_feeds(FeedInfo(nasty, "http://h/", "d"), feed_groups([source]))
    page = render_index(nasty, links, [source], {"s": state}, [stored])
    parsed = Page(page)
    assert parsed.scripts == 0
    assert 'https://x.example/?a=1&b="2"' in parsed.anchors
    assert b"<script>" not in page


def test_an_empty_database_gives_a_page(tmp_path: Path, make_config) -> None:
    config = make_config([{"name": "a", "url": "http://127.0.0.1:9/"}])
    store = Store(config.paths.database)
    try:
        text = index_page_for(config, store).decode("utf-8")
    finally:
        store.close()
    assert "nothing stored yet" in text
    assert "<td>new</td>" in text
