"""Golden files for parsing: each feed of tests/data/golden/<case> parsed in full, every field
of every entry and of the feed, held to <case>.expected.json.

Each case is read through both parser paths: the fast path (`parse_fast`) where it accepts
the document, and feedparser's own path always. The expected file says which path the
fast reader takes (`fast_path`: "accepts", or "declines: <why>"), so a change in what the
fast reader accepts shows up here too. The expected files were written by
tests/data/golden/regenerate.py and then read by eye; they are not rewritten by the tests.
A file with a `known_bug` holds what the parser should give, corrected by hand: its case is
an expected failure (strict, so that the fix is noticed and the key removed).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.models import ParsedFeed, Source
from aggregator.sources.parse import parse_feed
from aggregator.sources.parse_fast import parse_plain_feed

GOLDEN = Path(__file__).parent / "data" / "golden"
CASES = sorted(path.name.removesuffix(".expected.json") for path in GOLDEN.glob("*.expected.json"))
NOW = datetime(2026, 12, 1, tzinfo=UTC)  # after every date of the cases: none is clamped
URL = "https://feeds.example.net/golden/feed"  # where the cases are "fetched" from
SOURCE = Source("golden", URL)


def expected(case: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{case}.expected.json").read_text(encoding="utf-8"))


def headers(case: str) -> dict[str, str]:
    return {"content-type": expected(case)["content_type"]}


def parse(case: str, *, fast: bool) -> ParsedFeed:
    body = (GOLDEN / case).read_bytes()
    return parse_feed(body, SOURCE, URL, headers(case), NOW, fast=fast)


def fast_path_accepts(case: str) -> bool:
    body = (GOLDEN / case).read_bytes()
    return parse_plain_feed(body, {**headers(case), "content-location": URL}) is not None


def serialise(feed: ParsedFeed) -> dict[str, Any]:
    """A `ParsedFeed` as the expected files write it: every field of the feed and of each
    entry, datetimes as ISO strings, tuples as lists."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return list(value) if isinstance(value, tuple) else value

    def fields(value: Any) -> dict[str, Any]:
        return {
            field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }

    data = fields(dataclasses.replace(feed, entries=()))
    del data["entries"]
    return {"feed": data, "entries": [fields(entry) for entry in feed.entries]}


def assert_golden(feed: ParsedFeed, facts: dict[str, Any]) -> None:
    """Field by field, entry by entry, so that a failure names what differs."""
    got = serialise(feed)
    assert got["feed"] == facts["feed"]
    assert [e["identity"] for e in got["entries"]] == [e["identity"] for e in facts["entries"]]
    for entry, wanted in zip(got["entries"], facts["entries"], strict=True):
        assert entry == wanted, f"entry {wanted['identity']}"


def mark_known_bug(request: pytest.FixtureRequest, facts: dict[str, Any]) -> None:
    if "known_bug" in facts:
        request.applymarker(pytest.mark.xfail(reason=facts["known_bug"], strict=True))


@pytest.mark.parametrize("case", CASES)
def test_feedparser_path_gives_the_golden_entries(
    case: str, request: pytest.FixtureRequest
) -> None:
    facts = expected(case)
    mark_known_bug(request, facts)
    assert_golden(parse(case, fast=False), facts)


@pytest.mark.parametrize("case", CASES)
def test_fast_path_gives_the_golden_entries_or_declines(
    case: str, request: pytest.FixtureRequest
) -> None:
    facts = expected(case)
    accepts = facts["fast_path"] == "accepts"
    assert fast_path_accepts(case) == accepts, facts["fast_path"]
    if not accepts:
        return  # parse_feed(fast=True) is feedparser's path then: the test above
    mark_known_bug(request, facts)
    assert_golden(parse(case, fast=True), facts)
