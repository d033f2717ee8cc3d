"""A whole pass against a real local HTTP server: dedupe, changes, 304, error isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
import yaml
from conftest import run_cli
from feedworld import DATA, rsshub_feed, rsshub_item
from werkzeug import Response

from aggregator.config.settings import Config, load_config
from aggregator.models import Publishing
from aggregator.outputs.documents import document_name
from aggregator.poll.decide import NOTHING_ASKED
from aggregator.service.index_page import index_page_for
from aggregator.service.status_report import status_report


def documents(config: Config) -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in config.paths.documents.glob("*.md")
        if p.is_file()
    }


def test_pass_stores_documents_and_feeds_then_adds_nothing(
    feed_server, make_config, pipeline_for
) -> None:
    feed = feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(5)]))
    feed_server.serve("/atom", (DATA / "atom.xml").read_bytes(), etag=False)
    config = make_config(
        [
            {"name": "news", "url": feed_server.url("/news"), "categories": ["A", "B", "C"]},
            {"name": "blog", "url": feed_server.url("/atom")},
        ]
    )
    pipeline = pipeline_for(config)
    results = pipeline.update_all()
    assert [(r.source, r.status, r.new) for r in results] == [
        ("news", "new", 5),
        ("blog", "new", 2),
    ]
    docs = documents(config)
    assert len(docs) == 7
    rss = feedparser.parse((config.paths.public / "feed.xml").read_bytes())
    atom = feedparser.parse((config.paths.public / "atom.xml").read_bytes())
    assert len(rss.entries) == len(atom.entries) == 7
    assert not rss.bozo and not atom.bozo
    mtimes = {p: p.stat().st_mtime_ns for p in config.paths.documents.iterdir()}
    feed_bytes = (config.paths.public / "feed.xml").read_bytes()

    again = pipeline.update_all()
    assert [(r.source, r.status, r.new) for r in again] == [
        ("news", "not-modified", 0),  # the server answered 304 to If-None-Match
        ("blog", "not-modified", 0),  # same body again: its hash says unchanged
    ]
    assert feed.requests == 2
    assert {p: p.stat().st_mtime_ns for p in config.paths.documents.iterdir()} == mtimes
    assert (config.paths.public / "feed.xml").read_bytes() == feed_bytes
    assert pipeline.store.count_entries() == 7


def test_changed_entry_rewrites_its_own_document(feed_server, make_config, pipeline_for) -> None:
    items = [rsshub_item(i) for i in range(3)]
    feed_server.serve("/news", rsshub_feed(items))
    config = make_config([{"name": "news", "url": feed_server.url("/news")}])
    pipeline = pipeline_for(config)
    pipeline.update_all()
    before = documents(config)

    items[1] = rsshub_item(1, body="<p>更正后的内容</p>")
    items.insert(0, rsshub_item(7))
    feed_server.serve("/news", rsshub_feed(items))
    (result,) = pipeline.update_all()
    assert (result.new, result.changed) == (1, 1)
    after = documents(config)
    assert len(after) == 4
    changed = [name for name in before if before[name] != after[name]]
    assert len(changed) == 1 and "更正后的内容" in after[changed[0]]


def test_rsshub_validators_etag_wins_over_a_last_modified_of_now(
    feed_server, make_config, pipeline_for
) -> None:
    feed = feed_server.serve(
        "/news",
        rsshub_feed([rsshub_item(1)]),
        headers={"Last-Modified": "Tue, 24 Nov 2026 10:00:00 GMT"},
    )
    config = make_config([{"name": "news", "url": feed_server.url("/news")}])
    pipeline = pipeline_for(config)
    pipeline.update_all()
    state = pipeline.store.source_state("news")
    assert state.http.etag and state.http.last_modified is None
    pipeline.update_all()
    request, _ = feed_server.server.log[-1]
    assert request.headers.get("If-None-Match") == state.http.etag
    assert "If-Modified-Since" not in request.headers
    assert feed.requests == 2


def test_a_failing_source_does_not_stop_the_others(feed_server, make_config, pipeline_for) -> None:
    feed_server.serve("/ok", rsshub_feed([rsshub_item(1)]))
    feed_server.serve("/broken", b"oops", status=500, etag=False)
    feed_server.serve("/html", b"<html><body>Not a feed</body></html>", content_type="text/html")
    config = make_config(
        [
            {"name": "broken", "url": feed_server.url("/broken")},
            {"name": "refused", "url": "http://127.0.0.1:9/feed"},
            {"name": "html", "url": feed_server.url("/html")},
            {"name": "ok", "url": feed_server.url("/ok")},
        ],
        timeout={"connect": 2, "read": 2},
    )
    pipeline = pipeline_for(config)
    results = {r.source: r for r in pipeline.update_all()}
    assert results["ok"].status == "new"
    assert results["broken"].error == "HTTP 500 Internal Server Error"
    assert results["refused"].error.startswith("connection refused")
    assert "not a feed" in results["html"].error
    states = {s.name: s for s in pipeline.store.source_states()}
    assert states["broken"].status == "error" and states["broken"].consecutive_errors == 1
    assert states["broken"].next_poll is not None
    assert states["ok"].status == "ok" and states["ok"].entries == 1
    pipeline.update_all()
    assert pipeline.store.source_state("broken").consecutive_errors == 2


def test_documents_left_pending_by_a_crash_are_written_next_time(
    feed_server, make_config, pipeline_for, tmp_path: Path
) -> None:
    feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
    config = make_config([{"name": "news", "url": feed_server.url("/news")}])
    pipeline = pipeline_for(config)
    for source in config.sources:
        pipeline.poll(source)  # stored, but the process "died" before writing documents
    assert documents(config) == {}
    assert pipeline.publisher.write_documents() == 3
    assert len(documents(config)) == 3
    assert pipeline.publisher.write_documents() == 0


def test_disabled_sources_are_not_polled(feed_server, make_config, pipeline_for) -> None:
    feed = feed_server.serve("/news", rsshub_feed([rsshub_item(1)]))
    config = make_config([{"name": "news", "url": feed_server.url("/news"), "enabled": False}])
    assert pipeline_for(config).update_all() == []
    assert feed.requests == 0
    assert yaml.safe_load(config.path.read_text())["sources"][0]["enabled"] is False


# -- a failed source stays failed until a feed is read -------------------------------------

BROKEN = b"<head><title>Document Moved</title></head><body><h1>Object Moved</h1></body>"
AN_HTML_PAGE = "not a feed (an HTML page; give the feed's own URL)"


def _state(pipeline, name: str = "news") -> tuple:
    state = pipeline.store.source_state(name)
    return state.status, state.error, state.consecutive_errors


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ("same-broken-304", ("error", f"{NOTHING_ASKED}; before that: {AN_HTML_PAGE}", 2)),
        ("same-broken-200", ("error", AN_HTML_PAGE, 2)),
        ("http-500", ("error", "HTTP 500 Internal Server Error", 2)),
        ("good-feed", ("ok", None, 0)),
    ],
    ids=["304-confirms-nothing", "same-body-hash", "another-failure", "recovered"],
)
def test_a_failed_source_stays_failed_until_a_feed_is_read(
    feed_server, make_config, pipeline_for, second: str, expected: tuple
) -> None:
    feed = feed_server.serve("/news", BROKEN, content_type="text/html")
    config = make_config([{"name": "news", "url": feed_server.url("/news")}])
    pipeline = pipeline_for(config)
    (first,) = pipeline.update_all()
    assert first.status == "error"
    assert _state(pipeline) == ("error", first.error, 1)
    if second == "same-broken-304":
        # A server that answers 304 whatever is asked (a cache in front of a broken origin).
        feed_server.serve("/news", b"", status=304, etag=False)
    elif second == "http-500":
        feed_server.serve("/news", b"oops", status=500)
    elif second == "good-feed":
        feed_server.serve("/news", rsshub_feed([rsshub_item(0)]))
    (result,) = pipeline.update_all()
    assert _state(pipeline) == expected
    assert (result.status == "error") == (expected[0] == "error")
    if second == "same-broken-200":
        assert feed.requests == 2
    if second == "same-broken-304":  # and so it reads on, poll after poll
        pipeline.update_all()
        assert _state(pipeline) == (expected[0], expected[1], 3)


def test_a_failed_poll_leaves_no_validators_and_no_move(
    feed_server, make_config, pipeline_for
) -> None:
    """The failed answer's ETag is not sent back, and a 301 to a URL that fails is not
    adopted: the next poll asks the old URL, unconditionally."""
    good = feed_server.serve("/news", rsshub_feed([rsshub_item(0)]))
    config = make_config([{"name": "news", "url": feed_server.url("/news")}])
    pipeline = pipeline_for(config)
    pipeline.update_all()
    seen: list[dict] = []
    feed_server.server.clear()
    feed_server.feeds.clear()
    broken = feed_server.serve("/new", BROKEN, content_type="text/html")
    feed_server.server.expect_request("/news").respond_with_handler(
        lambda request: (
            seen.append(dict(request.headers))
            or Response(status=301, headers={"Location": feed_server.url("/new")})
        )
    )
    pipeline.update_all()
    state = pipeline.store.source_state("news")
    assert (state.status, state.current_url) == ("error", None)
    pipeline.update_all()
    assert "If-None-Match" in seen[0]  # validators of the last good read
    assert "If-None-Match" not in seen[1]  # in error: ask unconditionally
    assert broken.requests == 2 and good.requests == 1


# -- one article, one document -------------------------------------------------------------


def test_entries_of_one_source_sharing_a_link_are_all_published(
    feed_server, make_config, pipeline_for
) -> None:
    items = [
        rsshub_item(i, guid=f"episode-{i}", link="https://podcast.example/show") for i in range(9)
    ]
    items += [rsshub_item(9, guid="episode-9", link="https://podcast.example/")]
    feed_server.serve("/pod", rsshub_feed(items))
    feed_server.serve("/other", rsshub_feed([rsshub_item(0, link="https://podcast.example/")]))
    config = make_config(
        [
            {"name": "pod", "url": feed_server.url("/pod"), "categories": ["Podcasts"]},
            {"name": "a-other", "url": feed_server.url("/other"), "categories": ["Podcasts"]},
        ],
        feed={"max_items": 100},
    )
    pipeline_for(config).update_all()
    public = config.paths.public
    for path in ("feed.xml", "source/pod/feed.xml", "category/podcasts/feed.xml"):
        items_seen = feedparser.parse((public / path).read_bytes()).entries
        expected = 10 if path.startswith("source") else 11
        assert len(items_seen) == expected, path
    assert len(documents(config)) == 11


@pytest.mark.parametrize("order", ["a-first", "b-first"])
def test_an_article_from_two_sources_is_one_document_from_the_first_name(
    feed_server, make_config, pipeline_for, order: str
) -> None:
    link = "https://news.example/2026/story"
    feed_server.serve("/b", rsshub_feed([rsshub_item(0, guid="b-1", link=link + "#top")]))
    feed_server.serve("/a", rsshub_feed([rsshub_item(0, guid="a-1", link=link + "?utm_x=1")]))
    sources = {
        "a": {"name": "a-mirror", "url": feed_server.url("/a"), "author": "Mirror"},
        "b": {"name": "b-site", "url": feed_server.url("/b"), "author": "Site"},
    }
    first, second = ("a", "b") if order == "a-first" else ("b", "a")
    config = make_config([sources[first]])
    pipeline_for(config).update_all()
    config = make_config([sources[first], sources[second]])
    pipeline = pipeline_for(config)
    pipeline.update_all()
    docs = documents(config)
    assert len(docs) == 1
    (text,) = docs.values()
    assert "author: Mirror" in text  # a-mirror sorts first, whoever came first
    merged = feedparser.parse((config.paths.public / "feed.xml").read_bytes()).entries
    assert len(merged) == 1
    # Purging the first source gives the article's document to the other.
    run = run_cli("remove", "--purge", "a-mirror", "--config", str(config.path))
    assert run.returncode == 0, run.stderr
    pipeline = pipeline_for(load_config(config.path))
    pipeline.publisher.write_documents()
    (text,) = documents(config).values()
    assert "author: Site" in text


def test_pruning_the_first_sources_copy_gives_the_document_to_the_other(
    feed_server, make_config, pipeline_for
) -> None:
    link = "https://news.example/old-story"
    old = rsshub_item(5, guid="a-old", link=link)
    feed_server.serve("/a", rsshub_feed([old]))
    feed_server.serve("/b", rsshub_feed([rsshub_item(5, guid="b-old", link=link)]))
    sources = [
        {"name": "a", "url": feed_server.url("/a"), "keep": 1, "author": "A"},
        {"name": "b", "url": feed_server.url("/b"), "author": "B"},
    ]
    config = make_config(sources)
    pipeline = pipeline_for(config)
    pipeline.update_all()
    assert ["author: A" in text for text in documents(config).values()] == [True]
    feed_server.serve("/a", rsshub_feed([rsshub_item(0, guid="a-new"), old]))
    pipeline.update_all()  # a keeps 1: its copy of the old story is pruned
    texts = sorted(documents(config).values())
    assert len(texts) == 2
    assert sum("author: B" in text for text in texts) == 1


# -- one document's failure stays its own ----------------------------------------------------


def test_an_unwritable_document_holds_back_neither_the_others_nor_the_feeds(
    feed_server, make_config
) -> None:
    """A directory where one document's file should be: the other documents and the feeds
    are written, `update` exits 1 naming it, and once the path is free it is written."""
    items = [rsshub_item(i, guid=f"n-{i}") for i in range(6)]
    feed_server.serve("/news", rsshub_feed(items))
    config = make_config([{"name": "news", "url": feed_server.url("/news")}])
    date = datetime(2022, 1, 28, 4, 45, 33, tzinfo=UTC) - timedelta(hours=3)
    blocked = document_name("news", "n-3", "新闻标题 第3条", date)
    (config.paths.documents / blocked).mkdir(parents=True)
    run = run_cli("update", "--config", str(config.path))
    assert run.returncode == 1, run.stderr
    assert "1 documents could not be written" in run.stdout and blocked in run.stdout
    assert len(documents(config)) == 5
    rss = feedparser.parse((config.paths.public / "feed.xml").read_bytes())
    assert len(rss.entries) == 6
    (config.paths.documents / blocked).rmdir()
    run = run_cli("update", "--config", str(config.path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(documents(config)) == 6 and blocked in documents(config)


def test_documents_that_fail_show_on_the_status_and_the_page(
    feed_server, make_config, pipeline_for
) -> None:
    feed_server.serve("/news", rsshub_feed([rsshub_item(i, guid=f"n-{i}") for i in range(3)]))
    config = make_config([{"name": "news", "url": feed_server.url("/news")}])
    date = datetime(2022, 1, 28, 4, 45, 33, tzinfo=UTC) - timedelta(hours=1)
    (config.paths.documents / document_name("news", "n-1", "新闻标题 第1条", date)).mkdir(
        parents=True
    )
    pipeline = pipeline_for(config)
    pipeline.update_all()
    failing, reason = pipeline.store.document_failures()
    assert failing == 1 and "Is a directory" in (reason or "")
    publishing = Publishing(None, failing, reason)
    page = index_page_for(config, pipeline.store).decode("utf-8")
    assert "1 documents cannot be written" in page
    states = {s.name: s for s in pipeline.store.source_states()}
    report = status_report(config.sources, states, {}, (), (), datetime.now(UTC), True, publishing)
    assert report["publishing"]["ok"] is False
    assert report["publishing"]["documents_failing"] == 1
