"""A whole pass against a real local HTTP server: dedupe, changes, 304, error isolation."""

from __future__ import annotations

from pathlib import Path

import feedparser
import yaml
from feedworld import DATA, rsshub_feed, rsshub_item

from aggregator.config import Config


def documents(config: Config) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in config.paths.documents.glob("*.md")}


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
    assert pipeline.write_documents() == 3
    assert len(documents(config)) == 3
    assert pipeline.write_documents() == 0


def test_disabled_sources_are_not_polled(feed_server, make_config, pipeline_for) -> None:
    feed = feed_server.serve("/news", rsshub_feed([rsshub_item(1)]))
    config = make_config([{"name": "news", "url": feed_server.url("/news"), "enabled": False}])
    assert pipeline_for(config).update_all() == []
    assert feed.requests == 0
    assert yaml.safe_load(config.path.read_text())["sources"][0]["enabled"] is False
