"""Full-text articles for summary-only sources (`full_text: true`, poll/articles.py): each
new entry's page, served by a real local server, becomes the document's and the feeds' body;
the feed's own text is kept beside it; a page is fetched once whoever carries it; a page
that gives no article is a warning, never an error, and is not fetched again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from feedworld import rsshub_feed, rsshub_item

from aggregator.models import SourceStatus

PAGES = Path(__file__).parent / "data" / "articles"
SUMMARY = "<p>湄公河流域持续干旱。</p>"
HTML = "text/html; charset=utf-8"


def summary_feed(feed_server, *paths: str) -> bytes:
    items = [
        rsshub_item(n, body=SUMMARY, link=feed_server.url(path)) for n, path in enumerate(paths)
    ]
    return rsshub_feed(items)


def test_new_entries_get_their_articles(feed_server, make_config, pipeline_for) -> None:
    page = feed_server.serve(
        "/news/mekong.html", (PAGES / "zh-news.html").read_bytes(), content_type=HTML
    )
    home = feed_server.serve("/", (PAGES / "home.html").read_bytes(), content_type=HTML)
    feed_server.serve("/feed", summary_feed(feed_server, "/news/mekong.html", "/"))
    config = make_config([{"name": "news", "url": feed_server.url("/feed"), "full_text": True}])
    pipeline = pipeline_for(config)
    (result,) = pipeline.update_all()
    assert result.new == 2
    documents = {p.read_text() for p in config.paths.documents.glob("*.md")}
    article = next(text for text in documents if "渔业同样受到冲击" in text)
    assert "<figcaption>2026年11月，越南同塔省一处干涸的稻田" in article
    assert "headimg: " in article and "mekong-drought.jpg" in article  # the article's image
    # The home page gave no article: its entry keeps the feed's text, and the source says so.
    assert any(SUMMARY in text and "渔业" not in text for text in documents)
    state = pipeline.store.source_state("news")
    assert state is not None and state.status == SourceStatus.WARNING
    assert state.error is not None and state.error.startswith(
        "full text: 1 of 2 articles not extracted"
    )
    merged = (config.paths.public / "feed.xml").read_text()
    assert "渔业同样受到冲击" in merged
    # The feed's own text stays beside the article.
    with sqlite3.connect(config.paths.database) as db:
        rows = db.execute(
            "SELECT content, full_text IS NOT NULL FROM entries ORDER BY id"
        ).fetchall()
    assert [(content, has) for content, has in rows] == [(SUMMARY, 1), (SUMMARY, 0)]
    # The next poll of the same feed fetches no page again, the failed one included.
    feed_server.serve("/feed", summary_feed(feed_server, "/news/mekong.html", "/") + b" ")
    (again,) = pipeline.update_all()
    assert again.new == 0
    assert (page.requests, home.requests) == (1, 1)


def test_a_page_is_fetched_once_for_two_sources(feed_server, make_config, pipeline_for) -> None:
    page = feed_server.serve(
        "/city/cycling", (PAGES / "en-news.html").read_bytes(), content_type=HTML
    )
    feed_server.serve("/a", summary_feed(feed_server, "/city/cycling"))
    feed_server.serve("/b", summary_feed(feed_server, "/city/cycling"))
    config = make_config(
        [
            {"name": "a", "url": feed_server.url("/a"), "full_text": True},
            {"name": "b", "url": feed_server.url("/b"), "full_text": True},
        ]
    )
    results = pipeline_for(config).update_all()
    assert [r.new for r in results] == [1, 1]
    assert page.requests == 1
    with sqlite3.connect(config.paths.database) as db:
        rows = dict(db.execute("SELECT source, full_text FROM entries").fetchall())
    assert rows["a"] == rows["b"] and "<p>" in rows["a"] and SUMMARY not in rows["a"]


def test_without_full_text_no_page_is_fetched(feed_server, make_config, pipeline_for) -> None:
    page = feed_server.serve(
        "/news/mekong.html", (PAGES / "zh-news.html").read_bytes(), content_type=HTML
    )
    feed_server.serve("/feed", summary_feed(feed_server, "/news/mekong.html"))
    config = make_config([{"name": "news", "url": feed_server.url("/feed")}])
    pipeline_for(config).update_all()
    assert page.requests == 0


def test_a_hostile_page_is_a_warning(feed_server, make_config, pipeline_for) -> None:
    """A page beyond the size cap, and one that is no page at all: the poll stores its
    entries with the feed's text and says why on the source."""
    feed_server.serve(
        "/huge", b"<html><body>" + b"<p>x</p>" * 1_000_000 + b"</body></html>", content_type=HTML
    )
    feed_server.serve("/photo", b"\xff\xd8\xff\xe0" + b"\0" * 1000, content_type="image/jpeg")
    feed_server.serve("/feed", summary_feed(feed_server, "/huge", "/photo"))
    config = make_config([{"name": "news", "url": feed_server.url("/feed"), "full_text": True}])
    pipeline = pipeline_for(config)
    (result,) = pipeline.update_all()
    assert result.new == 2 and result.status != "error"
    state = pipeline.store.source_state("news")
    assert state is not None and state.status == SourceStatus.WARNING
    assert "2 of 2 articles not extracted" in (state.error or "")
    assert "limit" in (state.error or "")
