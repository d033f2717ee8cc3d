"""What one poll means, decided from plain values: no HTTP, no database, no clock.

As lemon24/reader keeps its `Decider` ("does not interact with any dependencies, only
processes data") beside a pipeline that "does not decide", the poller (poller.py) fetches,
parses and looks up what is stored, then asks here for a `PollPlan` and applies it in one
transaction. Every outcome of a poll is a named case of `plan_poll` in tests/test_decide.py.

The rules, in one place:
- A source in error stays in error until a body is read and parsed: a 304 (or the same body)
  confirms nothing that was read since the failure began.
- Nothing of a failed poll is kept for the next: not its validators, not a move to a URL
  that did not work. Errors back off (schedule.next_delay), Retry-After is honoured, 410 Gone
  stops the source until its URL changes.
- A feed's complaint (feedparser's bozo) is a warning, kept while the server says the body
  did not change.
- An entry is new, changed (its title or content hash moved) or unchanged; a change that is
  only an older sanitiser's spelling of the same HTML is no change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from aggregator.models import (
    Entry,
    FetchResult,
    ParsedFeed,
    PollResult,
    PollStatus,
    Source,
    SourceStatus,
)
from aggregator.outputs.documents import document_name
from aggregator.poll.schedule import next_delay
from aggregator.sources.sanitize import sanitize_html
from aggregator.store.rows import KnownEntry, SourceState
from aggregator.text import XML_INVALID

NO_FEED_READ = "no feed read"
# A 304 to a request that sent no validators: whatever answers (a misconfigured server or a
# cache in front of it) cannot mean anything that was read.
NOTHING_ASKED = "HTTP 304 Not Modified, though nothing was asked conditionally"


def content_hash(entry: Entry) -> str:
    """What makes an entry 'changed': its title or its content."""
    return hashlib.sha256(f"{entry.title}\0{entry.content}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class EntriesPlan:
    """What storing one parsed feed's entries must do."""

    new: tuple[tuple[Entry, str, str], ...] = ()  # entry, hash, document name
    changed: tuple[tuple[Entry, str], ...] = ()
    unchanged: int = 0
    # Stored in another spelling of the same HTML (an older sanitiser's): new hash only.
    respelled: tuple[tuple[Entry, str], ...] = ()
    # Articles fetched from new entries' pages (`full_text` sources), by identity.
    full_texts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PollPlan:
    """Everything one poll stores: the source's new state and, when a feed was read, its
    entries. `moved` is a permanent redirect adopted by this poll (said in the log)."""

    state: SourceState
    result: PollResult
    entries: EntriesPlan | None = None
    moved: str | None = None

    @property
    def state_only(self) -> bool:
        """Only the source's row changes, and the poll succeeded: such rows may be saved in
        batches (losing one in a crash only means the source is polled again)."""
        return self.entries is None and self.result.status == PollStatus.NOT_MODIFIED


def sort_entries(
    entries: Sequence[Entry], known: Mapping[str, KnownEntry], now: datetime
) -> EntriesPlan:
    """Split parsed entries into new, changed and unchanged against what is stored."""
    new, changed, unchanged = [], [], 0
    for entry in entries:
        digest = content_hash(entry)
        stored = known.get(entry.identity)
        if stored is None:
            date = entry.published or entry.updated or now
            name = document_name(entry.source, entry.identity, entry.title, date)
            new.append((entry, digest, name))
        elif stored.content_hash != digest:
            changed.append((entry, digest))
        else:
            unchanged += 1
    return EntriesPlan(tuple(new), tuple(changed), unchanged)


def without_respellings(plan: EntriesPlan, stored: Mapping[str, tuple[str, str]]) -> EntriesPlan:
    """`plan` without the changes that are only the sanitiser's spelling: an entry stored by
    an earlier release reads the same once its stored HTML (`stored`: identity -> title,
    content) is written in today's normal form, and is not a change (no new version,
    document or item)."""
    changed, respelled = [], []
    for entry, digest in plan.changed:
        title, content = stored[entry.identity]
        normal = XML_INVALID.sub("", sanitize_html(content, entry.link))
        same = content_hash(replace(entry, title=title, content=normal)) == digest
        (respelled if same else changed).append((entry, digest))
    if not respelled:
        return plan
    return replace(
        plan,
        changed=tuple(changed),
        unchanged=plan.unchanged + len(respelled),
        respelled=tuple(respelled),
    )


def plan_poll(
    source: Source,
    state: SourceState,
    fetched: FetchResult,
    now: datetime,
    *,
    max_interval: int,
    parsed: ParsedFeed | None = None,
    parse_error: str | None = None,
    entries: EntriesPlan | None = None,
    warning: str | None = None,
) -> PollPlan:
    """The plan of one poll: `fetched` is what the server answered; `parsed` and `entries`
    what its body gave (both None when no body was read), or `parse_error`; `warning` what
    else went wrong without failing the poll (articles not extracted)."""
    failing = state.status == SourceStatus.ERROR
    if fetched.error:
        return _failed(source, state, fetched, fetched.error, now, max_interval)
    if fetched.not_modified or fetched.body is None:
        if fetched.status == 304 and failing:
            # A failing source asks without validators (poller.py): a 304 confirms nothing.
            # Said as such, beside the failure it confirms nothing about.
            return _failed(source, state, fetched, _unasked(state.error), now, max_interval)
        if failing:
            return _failed(source, state, fetched, state.error or NO_FEED_READ, now, max_interval)
        if fetched.status == 304 and not (state.http.etag or state.http.last_modified):
            return _failed(source, state, fetched, NOTHING_ASKED, now, max_interval)
        kept = _succeeded(source, state, fetched, now, max_interval)
        if state.status == SourceStatus.WARNING:  # the same body: its warning still holds
            kept = replace(kept, status=SourceStatus.WARNING, error=state.error)
        result = PollResult(source.name, PollStatus.NOT_MODIFIED, http_status=fetched.status)
        return PollPlan(kept, result, moved=fetched.permanent_redirect)
    if parse_error is not None or parsed is None or entries is None:
        error = parse_error or NO_FEED_READ
        return _failed(source, state, fetched, error, now, max_interval)
    new_state = replace(
        _succeeded(source, state, fetched, now, max_interval, parsed.ttl),
        title=parsed.title or state.title,
        link=parsed.link or state.link,
        status=SourceStatus.WARNING if parsed.error or warning else SourceStatus.OK,
        error=parsed.error or warning,
    )
    if entries.new:
        status = PollStatus.NEW
    elif entries.changed:
        status = PollStatus.CHANGED
    else:
        status = PollStatus.UNCHANGED
    result = PollResult(
        source.name,
        status,
        new=len(entries.new),
        changed=len(entries.changed),
        error=parsed.error or warning,
        http_status=fetched.status,
    )
    return PollPlan(new_state, result, entries, moved=fetched.permanent_redirect)


def _unasked(before: str | None) -> str:
    if not before or before.startswith(NOTHING_ASKED):
        return before or NOTHING_ASKED
    return f"{NOTHING_ASKED}; before that: {before}"


def _succeeded(
    source: Source,
    state: SourceState,
    fetched: FetchResult,
    now: datetime,
    max_interval: int,
    ttl: int | None = None,
) -> SourceState:
    ttl = ttl if ttl is not None else state.ttl
    delay = next_delay(source.interval, max_interval=max_interval, ttl=ttl, max_age=fetched.max_age)
    return replace(
        state,
        url=source.url,
        current_url=fetched.permanent_redirect or state.current_url,
        http=fetched.http,
        status=SourceStatus.OK,
        http_status=fetched.status,
        error=None,
        consecutive_errors=0,
        last_fetch=now,
        last_success=now,
        next_poll=now + timedelta(seconds=delay),
        ttl=ttl,
    )


def _failed(
    source: Source,
    state: SourceState,
    fetched: FetchResult,
    error: str,
    now: datetime,
    max_interval: int,
) -> PollPlan:
    errors = state.consecutive_errors + 1
    delay = next_delay(
        source.interval,
        max_interval=max_interval,
        retry_after=fetched.retry_after,
        consecutive_errors=errors,
    )
    gone = fetched.status == 410
    # Nothing of a failed poll is kept for the next: not its validators or body hash
    # (they would confirm what was never read), not a move to a URL that did not work.
    failed = replace(
        state,
        status=SourceStatus.GONE if gone else SourceStatus.ERROR,
        http_status=fetched.status,
        error=error,
        consecutive_errors=errors,
        last_fetch=now,
        next_poll=None if gone else now + timedelta(seconds=delay),
    )
    result = PollResult(source.name, PollStatus.ERROR, error=error, http_status=fetched.status)
    return PollPlan(failed, result)
