"""One poll of one source: the I/O around a pure decision.

fetch (conditional) -> parse (in a parser process) -> bounds, filters -> look up what is
stored -> `decide.plan_poll` -> store the plan in one transaction. Nothing is decided here:
what a 304, a 410 or a broken feed means is decide.py's; this module only does what the
plan says, so a crash at any point leaves the source's row and its entries as they were.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import requests

from aggregator.config.settings import Config
from aggregator.errors import ParseError
from aggregator.models import Entry, HttpState, PollResult, PollStatus, Source, SourceStatus
from aggregator.poll import memory
from aggregator.poll.articles import ArticleFetcher
from aggregator.poll.decide import (
    EntriesPlan,
    PollPlan,
    plan_poll,
    sort_entries,
    without_respellings,
)
from aggregator.poll.fetch_process import Fetched, FetchOrder, fetch_ordered
from aggregator.poll.processes import ParserProcesses
from aggregator.sources.entry_limits import limit_feed
from aggregator.sources.fetch import FetchLimits
from aggregator.sources.filters import select_entries
from aggregator.sources.legacy_ids import legacy_identities
from aggregator.sources.reach import reach_for
from aggregator.store.database import Store
from aggregator.store.rows import KnownEntry, SourceState

log = logging.getLogger(__name__)

RELEASE_EVERY = 100  # polls


class Poller:
    """Polls sources with one HTTP session and one set of parser processes."""

    def __init__(
        self,
        config: Config,
        store: Store,
        session: requests.Session,
        limits: FetchLimits,
        parsers: ParserProcesses,
    ) -> None:
        self.config = config
        self.store = store
        self.session = session
        self.limits = limits
        self.parsers = parsers
        self.articles = ArticleFetcher(store, session, limits, parsers)
        self._polls = itertools.count(1)

    def order(self, source: Source, state: SourceState | None) -> FetchOrder:
        """What `poll` asks of HTTP for `source`, wherever the fetch is made."""
        state = state or SourceState(source.name, source.url)
        # A source in error asks without validators: a 304 (or the same body hash) can only
        # confirm content that was read, and nothing was read since the failure began.
        failing = state.status == SourceStatus.ERROR
        return FetchOrder(
            # What the fetch may connect to follows the configured URL, not one a redirect left.
            url=state.current_url or source.url,
            http=HttpState() if failing else state.http,
            reach=reach_for(source.url, source.allow_private),
        )

    def poll(
        self,
        source: Source,
        state: SourceState | None,
        unchanged_states: list[SourceState] | None = None,
        fetch: Fetched | None = None,
    ) -> PollResult:
        """One poll; never raises for the source's own faults. With `unchanged_states`, the
        state of a not-modified source is appended there for the caller to store in a batch,
        not committed alone (losing it in a crash only means that source is polled again).
        `fetch` is that of `order(source, state)` when another process made it."""
        started = time.monotonic()
        now = datetime.now(UTC)
        state = state or SourceState(source.name, source.url)
        order = self.order(source, state)
        made = fetch or fetch_ordered(self.session, order, self.limits)
        fetched = made.result
        parsed = parse_error = entries = warning = None
        if not fetched.error and not fetched.not_modified and fetched.body is not None:
            try:
                parsed = self.parsers.parse(fetched.body, source, fetched.url, fetched.headers, now)
            except ParseError as exc:
                parse_error = str(exc)
            else:
                parsed = limit_feed(parsed, self.config.limits)
                selected, _ = select_entries(parsed.entries, source, now)  # include/exclude, keep
                # A source with nothing stored has no entry an old release stored either.
                bases = (fetched.url, state.current_url, source.url) if state.entries else ()
                entries = self._sorted(source, selected, bases, now)
                if source.full_text and entries.new:
                    entries, warning = self._with_articles(source, entries)
        plan = plan_poll(
            source,
            state,
            fetched,
            now,
            max_interval=self.config.max_interval,
            parsed=parsed,
            parse_error=parse_error,
            entries=entries,
            warning=warning,
        )
        if plan.moved:
            log.warning(
                "source=%s moved permanently: %s -> %s; polling the new URL from now on",
                source.name, order.url, plan.moved,
            )  # fmt: skip
        self._apply(plan, now, unchanged_states)
        result = replace(
            plan.result,
            duration=time.monotonic() - started + (made.seconds if fetch else 0.0),
            fetch_duration=made.seconds,
            next_poll=plan.state.next_poll,
        )
        _log_poll(result)
        if next(self._polls) % RELEASE_EVERY == 0:  # itertools.count: atomic under the GIL
            # The bodies, entries and pickles of the last polls leave free memory all over
            # the heap, which would otherwise add up to a peak.
            memory.release()
        return result

    def _apply(
        self, plan: PollPlan, now: datetime, unchanged_states: list[SourceState] | None
    ) -> None:
        if plan.entries is not None:
            entries = plan.entries
            self.store.save_poll(
                plan.state,
                entries.new,
                entries.changed,
                now,
                respelled=entries.respelled,
                full_texts=entries.full_texts,
            )
        elif plan.state_only and unchanged_states is not None:
            unchanged_states.append(plan.state)
        else:
            self.store.save_state(plan.state)

    def _with_articles(self, source: Source, plan: EntriesPlan) -> tuple[EntriesPlan, str | None]:
        """`plan` with the articles of its new entries, and an entry's image taken from its
        article when the feed gave none; the warning when some gave no article."""
        found = self.articles.full_texts(source, [entry for entry, _, _ in plan.new])
        new = tuple(
            (replace(entry, image=entry.image or found.images.get(entry.identity)), digest, name)
            for entry, digest, name in plan.new
        )
        return replace(plan, new=new, full_texts=found.html), found.warning(len(plan.new))

    def _sorted(
        self, source: Source, entries: Sequence[Entry], bases: Iterable[str | None], now: datetime
    ) -> EntriesPlan:
        entries, known = self._known(source, entries, bases)
        plan = sort_entries(entries, known, now)
        if not plan.changed:
            return plan
        ids = {entry.identity: known[entry.identity].id for entry, _ in plan.changed}
        texts = self.store.entry_texts(list(ids.values()))
        return without_respellings(plan, {identity: texts[i] for identity, i in ids.items()})

    def _known(
        self, source: Source, entries: Sequence[Entry], bases: Iterable[str | None]
    ) -> tuple[list[Entry], dict[str, KnownEntry]]:
        """The entries as stored, with what is known of each. An entry that an earlier
        release stored under its id resolved against the feed's URL keeps that identity
        (and so its document and its item id in every published feed). No `bases`: look
        for none."""
        known = self.store.known_entries(source.name, [e.identity for e in entries])
        aliases = {
            old: entry.identity
            for entry in entries
            if entry.identity not in known
            for old in legacy_identities(entry.identity, bases)
        }
        if not aliases:
            return list(entries), known
        found = self.store.known_entries(source.name, list(aliases))
        stored_as = {aliases[old]: old for old in found}
        known.update(found)
        return [
            replace(e, identity=stored_as[e.identity]) if e.identity in stored_as else e
            for e in entries
        ], known


def _log_poll(result: PollResult) -> None:
    level = logging.WARNING if result.status == PollStatus.ERROR else logging.INFO
    log.log(
        level,
        "source=%s status=%s http=%s new=%d changed=%d duration=%.2fs%s",
        result.source,
        result.status,
        result.http_status if result.http_status is not None else "-",
        result.new,
        result.changed,
        result.duration,
        f" error={result.error!r}" if result.error else "",
    )
