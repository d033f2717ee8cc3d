"""Fuzzing: random and mutated feed documents through parse -> store -> documents -> merged
feeds, with the invariants that must hold for every input whatever: each step either takes it
or refuses it with a ParseError, every document has front matter YAML can read and safe HTML,
every file stays inside its output folder, and the merged feeds are valid XML (and JSON)
with nothing that runs.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import feedparser
from feedfuzz import SEEDS, feeds, mutated
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from invariants import (
    STRICT_XML,
    check_document,
    check_feeds_as_feedgen_writes_them,
    check_inert_text,
    check_safe_html,
    visible_files,
)
from lxml import etree

from aggregator.errors import ParseError
from aggregator.models import Source
from aggregator.outputs.documents import write_documents
from aggregator.outputs.feeds import FeedInfo, Fragments, publish_feeds
from aggregator.outputs.jsonfeed import build_json_feed
from aggregator.poll.decide import sort_entries as decide
from aggregator.sources.parse import parse_feed
from aggregator.store.database import Store
from aggregator.store.rows import SourceState

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SOURCE = Source("fuzz", "https://feeds.example/fuzz.xml", categories=("Fuzz",))
INFO = FeedInfo("Merged", "https://merged.example/", "Everything")
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def run_pipeline(body: bytes, content_type: str = "application/rss+xml") -> int:
    """Every step on `body` in a fresh folder, then every invariant; returns entries kept."""
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        documents, public = root / "documents", root / "public"
        try:
            parsed = parse_feed(body, SOURCE, SOURCE.url, {"content-type": content_type}, NOW)
        except ParseError:
            return 0  # refused, in words: fine (test_hostile checks the words)
        store = Store(root / "db" / "aggregator.db")
        try:
            store.sync_sources([(SOURCE.name, SOURCE.url)])
            known = store.known_entries(SOURCE.name, [e.identity for e in parsed.entries])
            decision = decide(parsed.entries, known, NOW)
            store.save_poll(SourceState(SOURCE.name, SOURCE.url), decision.new, (), NOW)
            owed = store.owed_documents()
            written, failed = write_documents(
                documents, store.entries_by_id([item.id for item in owed.write]), {"fuzz": SOURCE}
            )
            assert not failed and sorted(written) == [done.id for done in owed.done]
            store.mark_documents(owed.done)
            newest = store.newest_entries(50)
            publish_feeds(public, INFO, newest, {"fuzz": SOURCE})
            check_feeds_as_feedgen_writes_them(INFO, newest, {"fuzz": SOURCE}, Fragments())
            json_feed = build_json_feed(INFO, newest, {"fuzz": SOURCE})
            assert store.integrity_check() == "ok"
            count = store.count_entries()
        finally:
            store.close()
        check_outputs(root, documents, public, json_feed, count, len(newest))
        return count


def check_outputs(
    root: Path, documents: Path, public: Path, json_feed: bytes, count: int, listed: int
) -> None:
    files = {p.relative_to(root).parts[0] for p in root.rglob("*") if p.is_file()}
    assert files <= {"documents", "public", "db"}, files
    names = visible_files(documents)
    assert len(names) == count
    for path in names:
        assert path.parent == documents and path.suffix == ".md"
        check_document(path)
        check_safe_html(path.read_text(encoding="utf-8").split("\n---\n", 1)[1])
    for name in (INFO.rss_name, INFO.atom_name):
        data = (public / name).read_bytes()
        etree.fromstring(data, STRICT_XML)
        merged = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
        assert not merged.bozo, merged.get("bozo_exception")
        assert len(merged.entries) == listed  # one per article, however many sources had it
        for entry in merged.entries:
            for content in entry.get("content") or []:
                check_safe_html(content["value"])
            check_inert_text(entry.get("title", ""))
            check_inert_text(entry.get("author", ""))
    for item in json.loads(json_feed)["items"]:
        check_safe_html(item.get("content_html", ""))


@FUZZ
@given(body=feeds())
def test_random_feeds_keep_every_invariant(body: bytes) -> None:
    event(f"entries kept: {min(run_pipeline(body), 3)}+")


# -- real feeds, mutated ---------------------------------------------------------------------


@FUZZ
@given(body=mutated(), content_type=st.sampled_from(["application/rss+xml", "text/html", ""]))
def test_mutated_feeds_keep_every_invariant(body: bytes, content_type: str) -> None:
    event(f"entries kept: {min(run_pipeline(body, content_type), 3)}+")


def test_the_seeds_themselves_go_through() -> None:
    """The unmutated seeds are kept whole: the fuzzer starts from working feeds."""
    assert [run_pipeline(seed) for seed in SEEDS] == [1, 2, 2, 3]
