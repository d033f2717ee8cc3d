"""The corpus of real-shaped feeds (tests/data/real/<case>) read through both parser paths,
each held to the facts written beside it by hand (<case>.expected.json), as lemon24/reader
keeps `full.rss` beside `full.rss.py`. The end-to-end run over the same files is
tests/e2e/test_real_feeds.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.models import Source
from aggregator.sources.parse import parse_feed
from aggregator.sources.sanitize import valid_url

REAL = Path(__file__).parent / "data" / "real"
CASES = sorted(path.name.removesuffix(".expected.json") for path in REAL.glob("*.expected.json"))
NOW = datetime(2026, 12, 1, tzinfo=UTC)
URL = "https://feeds.example.net/some/path/feed"


def expected(case: str) -> dict:
    return json.loads((REAL / f"{case}.expected.json").read_text(encoding="utf-8"))


def parse(case: str, fast: bool):
    facts = expected(case)
    headers = {"content-type": facts["content_type"]} if facts.get("content_type") else {}
    body = (REAL / case).read_bytes()
    return parse_feed(body, Source("case", URL), URL, headers, NOW, fast=fast)


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "feedparser"])
@pytest.mark.parametrize("case", CASES)
def test_case_reads_as_written_down(case: str, fast: bool) -> None:
    facts = expected(case)
    if facts["kind"] == "not-a-feed":
        with pytest.raises(ParseError) as refused:
            parse(case, fast)
        assert str(refused.value).startswith(facts["error_starts_with"])
        return
    feed = parse(case, fast)
    assert len(feed.entries) == facts["entries"]
    assert [e.identity for e in feed.entries] == facts["ids"]
    assert [e.title for e in feed.entries] == facts["titles"]
    for entry in feed.entries:
        assert entry.link is None or entry.link == valid_url(entry.link)  # published as is


@pytest.mark.parametrize("case", [c for c in CASES if expected(c)["kind"] == "feed"])
def test_both_paths_give_the_same_entries(case: str) -> None:
    assert parse(case, fast=True) == parse(case, fast=False)
