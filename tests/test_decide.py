"""Every outcome of a poll as a named case of `decide.plan_poll`: plain values in, a plan
out; no HTTP server, no database, no clock."""

# ruff: noqa: E501  (the table reads best one case a line)

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.models import (
    Entry,
    FetchResult,
    HttpState,
    ParsedFeed,
    PollStatus,
    Source,
    SourceStatus,
)
from aggregator.poll.decide import (
    NOTHING_ASKED,
    EntriesPlan,
    content_hash,
    plan_poll,
    sort_entries,
    without_respellings,
)
from aggregator.store.rows import KnownEntry, SourceState

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SOURCE = Source(name="news", url="https://example.org/feed", interval=600)
OLD_HTTP = HttpState(etag='"old"', last_modified="Mon, 30 Nov 2026 10:00:00 GMT")
NEW_HTTP = HttpState(etag='"new"', last_modified="Wed, 02 Dec 2026 11:00:00 GMT")
HEALTHY = SourceState("news", SOURCE.url, http=OLD_HTTP, status=SourceStatus.OK, ttl=None)
FAILING = replace(HEALTHY, status=SourceStatus.ERROR, error="HTTP 500", consecutive_errors=2)
WARNED = replace(HEALTHY, status=SourceStatus.WARNING, error="mismatched tag")
NEVER_READ = SourceState("news", SOURCE.url)


def entry(n: int, content: str = "<p>body</p>") -> Entry:
    return Entry(
        "news", f"id-{n}", f"https://example.org/{n}", f"Title {n}", None, NOW, None, content, None
    )


def body(**fields: Any) -> FetchResult:
    return FetchResult(url=SOURCE.url, status=200, body=b"<rss/>", http=NEW_HTTP, **fields)


NOT_MODIFIED = FetchResult(url=SOURCE.url, status=304, not_modified=True, http=OLD_HTTP)
TWO_NEW = sort_entries([entry(1), entry(2)], {}, NOW)
ONE_CHANGED = sort_entries(
    [entry(1, "<p>edited</p>")], {"id-1": KnownEntry(7, content_hash(entry(1)))}, NOW
)
NOTHING_NEW = sort_entries([entry(1)], {"id-1": KnownEntry(7, content_hash(entry(1)))}, NOW)
FEED = ParsedFeed(entries=(), title="News", link="https://example.org/")


def minutes(n: float) -> datetime:
    return NOW + timedelta(minutes=n)


# id, state before, fetched, parsed, parse error, entries -> poll status, source status,
# error, consecutive errors, next poll, validators kept, current URL
CASES = [
    ("200-new-entries", HEALTHY, body(), FEED, None, TWO_NEW,
     PollStatus.NEW, SourceStatus.OK, None, 0, minutes(10), NEW_HTTP, None),
    ("200-changed-entry", HEALTHY, body(), FEED, None, ONE_CHANGED,
     PollStatus.CHANGED, SourceStatus.OK, None, 0, minutes(10), NEW_HTTP, None),
    ("200-nothing-new", HEALTHY, body(), FEED, None, NOTHING_NEW,
     PollStatus.UNCHANGED, SourceStatus.OK, None, 0, minutes(10), NEW_HTTP, None),
    ("200-broken-feed-is-a-warning", HEALTHY, body(), replace(FEED, error="bad tag"), None, TWO_NEW,
     PollStatus.NEW, SourceStatus.WARNING, "bad tag", 0, minutes(10), NEW_HTTP, None),
    ("200-recovers-a-failing-source", FAILING, body(), FEED, None, NOTHING_NEW,
     PollStatus.UNCHANGED, SourceStatus.OK, None, 0, minutes(10), NEW_HTTP, None),
    ("200-feed-ttl-longer-than-interval", HEALTHY, body(), replace(FEED, ttl=3600), None, NOTHING_NEW,
     PollStatus.UNCHANGED, SourceStatus.OK, None, 0, minutes(60), NEW_HTTP, None),
    ("200-cache-control-max-age", HEALTHY, body(max_age=1800), FEED, None, NOTHING_NEW,
     PollStatus.UNCHANGED, SourceStatus.OK, None, 0, minutes(30), NEW_HTTP, None),
    ("301-adopted", HEALTHY, body(permanent_redirect="https://new.example.org/feed"), FEED, None,
     NOTHING_NEW, PollStatus.UNCHANGED, SourceStatus.OK, None, 0, minutes(10), NEW_HTTP,
     "https://new.example.org/feed"),
    ("302-not-adopted", HEALTHY, replace(body(), url="https://elsewhere.example.org/f"), FEED, None,
     NOTHING_NEW, PollStatus.UNCHANGED, SourceStatus.OK, None, 0, minutes(10), NEW_HTTP, None),
    ("304-keeps-validators", HEALTHY, NOT_MODIFIED, None, None, None,
     PollStatus.NOT_MODIFIED, SourceStatus.OK, None, 0, minutes(10), OLD_HTTP, None),
    ("304-keeps-the-warning-of-the-same-body", WARNED, NOT_MODIFIED, None, None, None,
     PollStatus.NOT_MODIFIED, SourceStatus.WARNING, "mismatched tag", 0, minutes(10), OLD_HTTP, None),
    ("304-never-asked-for-is-an-error", NEVER_READ, replace(NOT_MODIFIED, http=HttpState()), None,
     None, None, PollStatus.ERROR, SourceStatus.ERROR, NOTHING_ASKED, 1, minutes(10), HttpState(),
     None),
    ("304-while-failing-confirms-nothing", FAILING, NOT_MODIFIED, None, None, None,
     PollStatus.ERROR, SourceStatus.ERROR, f"{NOTHING_ASKED}; before that: HTTP 500", 3,
     minutes(10), OLD_HTTP, None),
    ("500-backs-off", FAILING, FetchResult(SOURCE.url, status=500, error="HTTP 500 Internal Server Error"),
     None, None, None, PollStatus.ERROR, SourceStatus.ERROR, "HTTP 500 Internal Server Error", 3,
     minutes(10), OLD_HTTP, None),
    ("500-fifth-error-backs-off-beyond-interval", replace(FAILING, consecutive_errors=5),
     FetchResult(SOURCE.url, status=500, error="HTTP 500"), None, None, None,
     PollStatus.ERROR, SourceStatus.ERROR, "HTTP 500", 6, minutes(32), OLD_HTTP, None),
    ("429-retry-after", HEALTHY, FetchResult(SOURCE.url, status=429, error="HTTP 429", retry_after=7200),
     None, None, None, PollStatus.ERROR, SourceStatus.ERROR, "HTTP 429", 1, minutes(120), OLD_HTTP, None),
    ("410-gone-stops-polling", HEALTHY, FetchResult(SOURCE.url, status=410, error="HTTP 410 Gone"),
     None, None, None, PollStatus.ERROR, SourceStatus.GONE, "HTTP 410 Gone", 1, None, OLD_HTTP, None),
    ("parse-error-keeps-nothing-of-the-answer", HEALTHY,
     body(permanent_redirect="https://new.example.org/feed"), None, "not a feed: an HTML page", None,
     PollStatus.ERROR, SourceStatus.ERROR, "not a feed: an HTML page", 1, minutes(10), OLD_HTTP, None),
    ("no-answer", HEALTHY, FetchResult(SOURCE.url, error="connection refused"), None, None, None,
     PollStatus.ERROR, SourceStatus.ERROR, "connection refused", 1, minutes(10), OLD_HTTP, None),
]  # fmt: skip


@pytest.mark.parametrize(
    "state, fetched, parsed, parse_error, entries, status, source_status, error, errors, "
    "next_poll, http, current_url",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan_poll(
    state: SourceState,
    fetched: FetchResult,
    parsed: ParsedFeed | None,
    parse_error: str | None,
    entries: EntriesPlan | None,
    status: PollStatus,
    source_status: SourceStatus,
    error: str | None,
    errors: int,
    next_poll: datetime | None,
    http: HttpState,
    current_url: str | None,
) -> None:
    plan = plan_poll(
        SOURCE,
        state,
        fetched,
        NOW,
        max_interval=86400,
        parsed=parsed,
        parse_error=parse_error,
        entries=entries,
    )
    assert plan.result.status == status
    assert plan.result.error == (None if status == PollStatus.NOT_MODIFIED else error)
    assert (plan.state.status, plan.state.error) == (source_status, error)
    assert plan.state.consecutive_errors == errors
    assert plan.state.next_poll == next_poll
    assert plan.state.http == http
    assert plan.state.current_url == current_url
    assert plan.state.last_fetch == NOW
    succeeded = status != PollStatus.ERROR
    assert plan.state.last_success == (NOW if succeeded else state.last_success)
    # Entries are stored only when a feed was read; a 304 may be saved in a batch.
    assert (plan.entries is not None) == (entries is not None and succeeded)
    assert plan.state_only == (status == PollStatus.NOT_MODIFIED)
    if plan.entries is not None:
        assert (plan.result.new, plan.result.changed) == (len(entries.new), len(entries.changed))
        assert plan.state.title == "News"
    assert plan.moved == (current_url if current_url != state.current_url else None)


def test_new_entries_get_their_document_names() -> None:
    plan = sort_entries([entry(1), entry(2)], {}, NOW)
    assert [name for _, _, name in plan.new] == sorted(name for _, _, name in plan.new)
    assert all(name.endswith(".md") and "title-" in name for _, _, name in plan.new)


@pytest.mark.parametrize(
    "stored_content, respelled",
    [("<p>body</p>", True), ("<P>body</P>", True), ("<p>other body</p>", False)],
    ids=["same-html", "older-spelling-of-the-same-html", "really-changed"],
)
def test_a_change_that_is_only_a_spelling_is_no_change(
    stored_content: str, respelled: bool
) -> None:
    known = {"id-1": KnownEntry(7, "a hash of an older sanitiser's output")}
    plan = sort_entries([entry(1)], known, NOW)
    assert len(plan.changed) == 1
    kept = without_respellings(plan, {"id-1": ("Title 1", stored_content)})
    assert (len(kept.respelled), len(kept.changed)) == ((1, 0) if respelled else (0, 1))
    assert kept.unchanged == (1 if respelled else 0)
