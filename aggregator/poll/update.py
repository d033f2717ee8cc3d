"""One poll of one source, start to end, and one pass over all sources; the only orchestrator.

A poll: fetch (conditional) -> parse -> decide new / changed / unchanged -> store in one
transaction. After polls: write the documents still pending (in the database, so a crash
between storing and writing loses nothing), then republish the merged feed.

Where the time goes (bench/README.md has the figures): parsing and sanitising are most of a
cold poll and are pure CPU, so they run in a small pool of worker processes while threads
fetch; storing stays in this process (SQLite has one writer anyway). A pass keeps a bounded
number of polls in flight, so memory does not grow with the number of sources.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from aggregator.config.settings import Config
from aggregator.errors import ParseError
from aggregator.models import (
    JSON_FEED_NAME,
    Entry,
    FetchResult,
    HttpState,
    ParsedFeed,
    PollResult,
    PollStatus,
    Source,
    SourceStatus,
    StoredEntry,
)
from aggregator.outputs.document_formats import renderer_for
from aggregator.outputs.documents import Failures, document_name, remove_documents, write_documents
from aggregator.outputs.feed_groups import (
    FeedGroup,
    configured_groups,
    group_settings,
    group_signature,
    publish_group,
    publish_json_feed,
    read_groups_built,
    remove_stale_groups,
    write_groups_built,
)
from aggregator.outputs.feeds import FeedInfo, Fragments, publish_feeds
from aggregator.outputs.images import ImageMirror
from aggregator.outputs.websub import ping_hub
from aggregator.poll import memory
from aggregator.poll.schedule import next_delay
from aggregator.poll.workers import run_task, start_worker
from aggregator.sources.entry_limits import limit_feed
from aggregator.sources.fetch import FetchLimits, fetch_source, make_session
from aggregator.sources.filters import select_entries
from aggregator.sources.parse import XML_INVALID, legacy_identities, parse_feed
from aggregator.sources.reach import reach_for
from aggregator.sources.sanitize import sanitize_html
from aggregator.store.database import Store
from aggregator.store.rows import DocumentsOwed, KnownEntry, SourceState

log = logging.getLogger(__name__)

# Two cores parse ~2x faster than one; beyond four the single writer is the limit anyway.
PARSE_PROCESSES = max(1, min(4, os.cpu_count() or 1))
# Documents are written in this many entries at a time while the pass goes on, so that
# rendering overlaps with parsing in the workers instead of waiting for the last poll.
DOCUMENT_BATCH = 500
DOCUMENT_CHUNK = 100  # documents per task sent to a parser process
STATE_CHUNK = 500
RELEASE_EVERY = 100  # polls
GROUPS_IN_WORKERS = 8  # fewer stale group feeds than this are built here


def content_hash(entry: Entry) -> str:
    """What makes an entry 'changed': its title or its content."""
    return hashlib.sha256(f"{entry.title}\0{entry.content}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Decision:
    """What storing one parsed feed must do, computed before anything is written."""

    new: tuple[tuple[Entry, str, str], ...]  # entry, hash, document name
    changed: tuple[tuple[Entry, str], ...]
    unchanged: int
    # Stored in another spelling of the same HTML (an older sanitiser's): new hash only.
    respelled: tuple[tuple[Entry, str], ...] = ()


def decide(entries: Sequence[Entry], known: dict, now: datetime) -> Decision:
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
    return Decision(tuple(new), tuple(changed), unchanged)


def fetch_limits(config: Config) -> FetchLimits:
    """The configured limits of one fetch."""
    return FetchLimits(
        user_agent=config.user_agent,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        total_timeout=config.total_timeout,
        max_body=config.max_body,
        max_redirects=config.max_redirects,
    )


class Pipeline:
    """Everything a pass needs, opened once: the config, the store, the HTTP session and
    (started on first use) the parser processes.

    `parse_processes=0` parses in the calling thread: the plain path, used by tests that
    compare the two and by the step-by-step profile."""

    def __init__(self, config: Config, store: Store, *, parse_processes: int | None = None) -> None:
        self.config = config
        self.store = store
        self.limits = fetch_limits(config)
        self.session = make_session(self.limits, pool_size=max(10, config.workers))
        self.images = (
            ImageMirror(config.images, store, self.session, self.limits) if config.images else None
        )
        self.sources = {source.name: source for source in config.sources}
        memory.limit_arenas()  # before the pass starts its threads
        self._output_lock = threading.Lock()
        self._groups_built: dict[str, list] | None = None  # see _publish_groups
        self._fragments = Fragments()  # the merged feed's entries, as last published
        self.parse_processes = PARSE_PROCESSES if parse_processes is None else parse_processes
        self._parser: ProcessPoolExecutor | None = None
        self._parser_lock = threading.Lock()
        self._parsed_by_pool = 0
        self._polls = itertools.count(1)
        store.sync_sources((s.name, s.url) for s in config.sources)

    def close(self) -> None:
        self.session.close()
        with self._parser_lock:
            parser, self._parser = self._parser, None
        if parser is not None:
            parser.shutdown(wait=True, cancel_futures=True)

    # -- parsing, in worker processes -------------------------------------------------------

    def _parser_pool(self) -> ProcessPoolExecutor:
        with self._parser_lock:
            if self._parser is None:
                # spawn, not fork: the daemon has threads (scheduler, server), and a forked
                # child of a threaded process can inherit a held lock and hang. (So a script
                # that runs a Pipeline needs the usual `if __name__ == "__main__":` guard;
                # without it the workers cannot start and parsing falls back to in-process.)
                self._parsed_by_pool = 0
                self._parser = ProcessPoolExecutor(
                    max_workers=self.parse_processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=start_worker,
                    initargs=(os.getpid(),),
                )
            return self._parser

    def _parse(
        self, body: bytes, source: Source, url: str, headers: Mapping[str, str], now: datetime
    ) -> ParsedFeed:
        """`parse_feed`, in a worker process when there are any; the same result either way
        (tests/test_parse_parallel.py checks this)."""
        if self.parse_processes <= 0:
            return parse_feed(body, source, url, headers, now)
        pool = self._parser_pool()
        try:
            future = pool.submit(run_task, parse_feed, body, source, url, dict(headers), now)
            parsed = future.result()
        except BrokenProcessPool:
            # A worker died (killed, or crashed on this body): start fresh ones next time.
            with self._parser_lock:
                if self._parser is pool:
                    self._parser = None
                never_worked = self._parsed_by_pool == 0
                if never_worked:
                    self.parse_processes = 0
            pool.shutdown(wait=False, cancel_futures=True)
            if never_worked:
                log.warning("parser processes cannot start; parsing in this process instead")
                return parse_feed(body, source, url, headers, now)
            raise ParseError("the parser process died while parsing this feed") from None
        self._parsed_by_pool += 1
        return parsed

    # -- one poll -------------------------------------------------------------------------

    def poll(self, source: Source) -> PollResult:
        """Fetch, parse and store one source; never raises for the source's own faults."""
        return self._poll(source, self.store.source_state(source.name))

    def _poll(
        self,
        source: Source,
        state: SourceState | None,
        unchanged_states: list[SourceState] | None = None,
    ) -> PollResult:
        """One poll. With `unchanged_states`, the state of a not-modified source is appended
        there for the caller to store in a batch, not committed alone (losing it in a crash
        only means that source is polled again)."""
        started = time.monotonic()
        now = datetime.now(UTC)
        state = state or SourceState(source.name, source.url)
        url = state.current_url or source.url
        # A source in error asks without validators: a 304 (or the same body hash) can only
        # confirm content that was read, and nothing was read since the failure began.
        failing = state.status == SourceStatus.ERROR
        # What the fetch may connect to follows the configured URL, not one a redirect left.
        fetched = fetch_source(
            self.session,
            url,
            HttpState() if failing else state.http,
            self.limits,
            reach=reach_for(source.url, source.allow_private),
        )
        if fetched.error:
            result = self._record_error(source, state, fetched, fetched.error, now)
        elif failing and (fetched.not_modified or fetched.body is None):
            # A server that answers 304 to an unconditional GET confirms nothing either.
            result = self._record_error(source, state, fetched, state.error or "no feed read", now)
        elif fetched.not_modified or fetched.body is None:
            unchanged = self._success_state(source, state, fetched, now)
            # The same body, so the same warning still holds.
            if state.status == SourceStatus.WARNING:
                unchanged = replace(unchanged, status=SourceStatus.WARNING, error=state.error)
            if unchanged_states is None:
                self.store.save_state(unchanged)
            else:
                unchanged_states.append(unchanged)
            result = PollResult(source.name, PollStatus.NOT_MODIFIED, http_status=fetched.status)
        else:
            result = self._store_body(source, state, fetched, now)
        result = replace(result, duration=time.monotonic() - started)
        _log_poll(result)
        self._count_poll()
        return result

    def _count_poll(self) -> None:
        """Hand freed heap memory back every RELEASE_EVERY polls, whoever runs them (a pass,
        the daemon's scheduler): the bodies, entries and pickles of the last polls leave
        free memory all over the heap, which would otherwise add up to a peak."""
        if next(self._polls) % RELEASE_EVERY == 0:  # itertools.count: atomic under the GIL
            memory.release()

    def _store_body(
        self, source: Source, state: SourceState, fetched: FetchResult, now: datetime
    ) -> PollResult:
        assert fetched.body is not None
        try:
            parsed = self._parse(fetched.body, source, fetched.url, fetched.headers, now)
        except ParseError as exc:
            return self._record_error(source, state, fetched, str(exc), now)
        parsed = limit_feed(parsed, self.config.limits)
        entries, _ = select_entries(parsed.entries, source, now)  # include/exclude, keep
        bases = (fetched.url, state.current_url, source.url)
        entries, known = self._known(source, entries, bases)
        decision = decide(entries, known, now)
        if decision.changed:
            decision = self._real_changes(decision, known)
        new_state = self._success_state(source, state, fetched, now, parsed.ttl)
        new_state = replace(
            new_state,
            title=parsed.title or state.title,
            link=parsed.link or state.link,
            status=SourceStatus.WARNING if parsed.error else SourceStatus.OK,
            error=parsed.error,
        )
        self.store.save_poll(
            new_state, decision.new, decision.changed, now, respelled=decision.respelled
        )
        if source.keep is not None and decision.new:
            self.prune(source)
        if decision.new:
            status = PollStatus.NEW
        elif decision.changed:
            status = PollStatus.CHANGED
        else:
            status = PollStatus.UNCHANGED
        return PollResult(
            source.name,
            status,
            new=len(decision.new),
            changed=len(decision.changed),
            error=parsed.error,
            http_status=fetched.status,
        )

    def _real_changes(self, decision: Decision, known: Mapping[str, KnownEntry]) -> Decision:
        """`decision` without the changes that are only the sanitiser's spelling: an entry
        stored by an earlier release reads the same once its stored HTML is written in
        today's normal form, and is not a change (no new version, document or item)."""
        stored = self.store.entry_texts([known[e.identity].id for e, _ in decision.changed])
        changed, respelled = [], []
        for entry, digest in decision.changed:
            title, content = stored[known[entry.identity].id]
            normal = XML_INVALID.sub("", sanitize_html(content, entry.link))
            same = content_hash(replace(entry, title=title, content=normal)) == digest
            (respelled if same else changed).append((entry, digest))
        if not respelled:
            return decision
        return replace(
            decision,
            changed=tuple(changed),
            unchanged=decision.unchanged + len(respelled),
            respelled=tuple(respelled),
        )

    def _known(
        self, source: Source, entries: Sequence[Entry], bases: Iterable[str | None]
    ) -> tuple[list[Entry], dict[str, KnownEntry]]:
        """The entries as stored, with what is known of each. An entry that an earlier
        release stored under its id resolved against the feed's URL keeps that identity
        (and so its document and its item id in every published feed)."""
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

    def _success_state(
        self,
        source: Source,
        state: SourceState,
        fetched: FetchResult,
        now: datetime,
        ttl: int | None = None,
    ) -> SourceState:
        ttl = ttl if ttl is not None else state.ttl
        delay = next_delay(
            source.interval,
            max_interval=self.config.max_interval,
            ttl=ttl,
            max_age=fetched.max_age,
        )
        if fetched.permanent_redirect:
            log.warning(
                "source=%s moved permanently: %s -> %s; polling the new URL from now on",
                source.name, state.current_url or source.url, fetched.permanent_redirect,
            )  # fmt: skip
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

    def _record_error(
        self,
        source: Source,
        state: SourceState,
        fetched: FetchResult,
        error: str,
        now: datetime,
    ) -> PollResult:
        errors = state.consecutive_errors + 1
        delay = next_delay(
            source.interval,
            max_interval=self.config.max_interval,
            retry_after=fetched.retry_after,
            consecutive_errors=errors,
        )
        gone = fetched.status == 410
        # Nothing of a failed poll is kept for the next: not its validators or body hash
        # (they would confirm what was never read), not a move to a URL that did not work.
        self.store.save_state(
            replace(
                state,
                status=SourceStatus.GONE if gone else SourceStatus.ERROR,
                http_status=fetched.status,
                error=error,
                consecutive_errors=errors,
                last_fetch=now,
                next_poll=None if gone else now + timedelta(seconds=delay),
            )
        )
        return PollResult(source.name, PollStatus.ERROR, error=error, http_status=fetched.status)

    # -- outputs --------------------------------------------------------------------------

    def write_documents(self) -> int:
        """Write every pending document; return how many were written or confirmed."""
        render = renderer_for(self.config.documents_format, self.config.document_options)
        total, after = 0, 0
        with self._output_lock:
            while (owed := self.store.owed_documents(limit=500, after=after)).done:
                failed = self._write_pending(self._localised(owed.write), render)
                total += len(owed.write) - self._settle(owed, failed)
                after = owed.done[-1]
        return total

    def _settle(self, owed: DocumentsOwed, failed: Failures) -> int:
        """Remove what `owed` removes, then mark done what fully succeeded and note what
        did not: a failed document stays owed (retried by the next writing), and never
        holds the others or the feeds back. Return how many failed."""
        folder = self.config.paths.documents
        _, not_removed = remove_documents(folder, [name for _, name in owed.remove])
        owners = {name: entry_id for entry_id, name in owed.remove}
        failed = failed + [(owners[name], error) for name, error in not_removed]
        for entry_id, error in failed:
            log.error("document of entry %d not written: %s; retried later", entry_id, error)
        failing = {entry_id for entry_id, _ in failed}
        self.store.mark_documents([i for i in owed.done if i not in failing])
        self.store.note_document_failures(failed)
        return len(failing)

    def _write_pending(
        self, pending: Sequence[StoredEntry], render: Callable[..., str]
    ) -> Failures:
        """`write_documents`, split over the parser processes when there are any: creating
        50 files is as much of a cold poll's CPU as parsing it (most of it in the kernel),
        and this process is already the busiest (it fetches and stores). Pending documents
        are of new or changed entries, so they are written without reading the file first."""
        folder = self.config.paths.documents
        chunks = [
            pending[start : start + DOCUMENT_CHUNK]
            for start in range(0, len(pending), DOCUMENT_CHUNK)
        ]
        jobs = [(folder, chunk, self._sources_of(chunk), render, False) for chunk in chunks]
        failed: Failures = []
        for _, failures in self._in_workers(write_documents, jobs, len(pending) >= DOCUMENT_CHUNK):
            failed += failures
        return failed

    def _localised(self, entries: Sequence[StoredEntry]) -> Sequence[StoredEntry]:
        """The entries as documents show them: with `images` configured, their images
        mirrored into the site and pointing at the copies (the store, and so every
        published feed, keeps the original URLs). Done here, before the rendering."""
        if self.images is None:
            return entries
        return self.images.localise_all(entries, self.sources)

    def _sources_of(self, entries: Iterable[StoredEntry]) -> dict[str, Source]:
        """The configured sources of `entries`: all a worker needs of the config for them."""
        names = {item.entry.source for item in entries}
        return {name: self.sources[name] for name in names if name in self.sources}

    def _in_workers(
        self, function: Callable[..., Any], jobs: Iterable[tuple], worth_it: bool = True
    ) -> Iterator[Any]:
        """`function(*job)` for each job, in order, in the parser processes when there are
        any and `worth_it`, else here. At most a few jobs wait in the pool at a time, so
        their arguments (entries) never pile up in memory. Outputs are not hostile input's
        playground: if a worker dies, the rest is simply done here."""
        if self.parse_processes <= 0 or not worth_it:
            yield from (function(*job) for job in jobs)
            return
        pool = self._parser_pool()
        waiting: deque[tuple[Future, tuple]] = deque()
        remaining = iter(jobs)
        unsent: tuple | None = None  # a job whose submission failed: done here too
        try:
            for unsent in remaining:
                waiting.append((pool.submit(run_task, function, *unsent), unsent))
                unsent = None
                while len(waiting) >= 2 * self.parse_processes:
                    result = waiting[0][0].result()
                    waiting.popleft()
                    yield result
            while waiting:
                result = waiting[0][0].result()
                waiting.popleft()
                yield result
        except BrokenProcessPool:
            with self._parser_lock:
                if self._parser is pool:
                    self._parser = None
            pool.shutdown(wait=False, cancel_futures=True)
            for _, job in waiting:
                yield function(*job)
            if unsent is not None:
                yield function(*unsent)
            yield from (function(*job) for job in remaining)

    def render_all(self) -> int:
        """Rewrite every document from the database, in the configured format (after
        `documents_format` changed); return how many."""
        render = renderer_for(self.config.documents_format, self.config.document_options)
        folder = self.config.paths.documents
        total = 0
        with self._output_lock:
            for owed in self.store.all_documents(batch=500):
                localised = self._localised(owed.write)
                _, failed = write_documents(folder, localised, self.sources, render)
                total += len(owed.write) - self._settle(owed, failed)
        return total

    def prune(self, source: Source) -> int:
        """Apply a source's `keep` cap: delete its oldest entries, then their documents.
        A crash in between leaves documents without entries, never the reverse."""
        if source.keep is None:
            return 0
        with self._output_lock:
            names = self.store.prune_source(source.name, source.keep)
            _, failed = remove_documents(self.config.paths.documents, names)
        for name, error in failed:
            log.error("source=%s pruned document %s not removed: %s", source.name, name, error)
        if names:
            log.info("source=%s pruned=%d keep=%d", source.name, len(names), source.keep)
        return len(names)

    def publish(self) -> bool:
        """Rewrite the merged feeds (RSS, Atom, JSON Feed) and each category's and source's
        feeds from the newest stored entries; when the merged feeds changed, announce them
        to the WebSub hub. True when any file changed."""
        feed = self.config.feed
        info = FeedInfo(
            feed.title,
            feed.link,
            feed.description,
            feed.rss_name,
            feed.atom_name,
            hub=feed.hub,
        )
        public = self.config.paths.public
        with self._output_lock:
            entries = self.store.newest_entries(feed.max_items)
            merged = publish_feeds(public, info, entries, self.sources, self._fragments)
            merged = publish_json_feed(public, info, entries, self.sources) or merged
            changed = self._publish_groups(info) or merged
        if merged and feed.hub:
            urls = [info.link + name for name in (info.rss_name, info.atom_name, JSON_FEED_NAME)]
            ping_hub(self.session, feed.hub, urls)
        return changed

    def _publish_groups(self, info: FeedInfo) -> bool:
        """Rebuild the group feeds whose entries or settings moved since they were last
        built, and drop those of groups no longer configured.

        What each group feed was built from is kept beside the database, so that a fresh
        process (`aggregator update` from a timer) does not rebuild thousands of unchanged
        feeds: at 1,000 sources that was 9 s of a 10 s all-304 pass."""
        groups = configured_groups(self.config)
        public = self.config.paths.public
        if self._groups_built is None:
            self._groups_built = read_groups_built(self._groups_built_path())
        built = {
            g.folder: self._groups_built[g.folder] for g in groups if g.folder in self._groups_built
        }
        signatures = self.store.entries_signatures() if groups else {}
        stale: list[tuple[FeedGroup, list]] = []
        for group in groups:
            made_from = [
                group_settings(info, group, self.sources, self.config.feed.max_items),
                group_signature(signatures, group.sources),
            ]
            if built.get(group.folder) != made_from or not (public / group.folder).is_dir():
                stale.append((group, made_from))
        max_items = self.config.feed.max_items

        def job(group: FeedGroup) -> tuple:
            chosen = self.store.newest_entries_of(group.sources, max_items)
            return public, info, group, chosen, self._sources_of(chosen)

        # A cold start builds a feed for every source: split over the parser processes.
        jobs = (job(group) for group, _ in stale)
        changed = any(list(self._in_workers(publish_group, jobs, len(stale) >= GROUPS_IN_WORKERS)))
        built.update({group.folder: made_from for group, made_from in stale})
        moved = bool(stale) or len(built) != len(self._groups_built)
        remove_stale_groups(public, groups)
        self._groups_built = built
        if moved:
            write_groups_built(self._groups_built_path(), built)
        return changed

    def _groups_built_path(self) -> Path:
        database = self.config.paths.database
        return database.with_name(database.name + ".groups.json")

    # -- one pass -------------------------------------------------------------------------

    def update_all(
        self,
        sources: Iterable[Source] | None = None,
        progress: Callable[[PollResult], None] | None = None,
        *,
        write_outputs: bool = True,
    ) -> list[PollResult]:
        """Poll every enabled source once (concurrently), then write documents and publish.

        Results come in the order of `sources`. At most twice `workers` polls are in flight,
        so memory stays flat however many sources there are; documents are written while the
        pass goes on. `write_outputs=False` only fetches, parses and stores (the benchmark
        compares that part with other feed readers)."""
        chosen = [s for s in (sources or self.config.sources) if s.enabled]
        results: list[PollResult | None] = [None] * len(chosen)
        window = max(2, 2 * self.config.workers)
        running: dict[Future[PollResult], int] = {}
        unwritten = 0
        unchanged: list[SourceState] = []  # appended to by the poll threads
        # Each poll puts itself here when it ends: cheaper than `wait()` over the whole
        # window once per poll, which was a tenth of an all-304 pass.
        finished: SimpleQueue[Future[PollResult]] = SimpleQueue()
        # Documents are written by a thread of their own while polls go on: waiting for a
        # batch here would leave the window empty and the parser processes idle meanwhile.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents")
        writing: Future[int] | None = None

        def save_unchanged() -> None:
            batch = unchanged[:]
            del unchanged[: len(batch)]
            if batch:
                self.store.save_states(batch)

        def collect() -> None:
            """Take the polls that finished (waiting for one if none has)."""
            nonlocal unwritten, writing
            done = [finished.get()]
            while not finished.empty():
                done.append(finished.get())
            for future in done:
                result = future.result()
                results[running.pop(future)] = result
                unwritten += result.new + result.changed
                if progress:
                    progress(result)
            if len(unchanged) >= STATE_CHUNK:
                save_unchanged()
            idle = writing is None or writing.done()
            if write_outputs and unwritten >= DOCUMENT_BATCH and idle:
                if writing is not None:
                    writing.result()  # a failure to write (disk full) ends the pass
                unwritten = 0
                writing = writer.submit(self.write_documents)

        with writer, ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            for start in range(0, len(chosen), STATE_CHUNK):
                chunk = chosen[start : start + STATE_CHUNK]
                # One query for a chunk's states instead of one per poll.
                states = {s.name: s for s in self.store.source_states([s.name for s in chunk])}
                for index, source in enumerate(chunk, start):
                    while len(running) >= window:
                        collect()
                    future = pool.submit(self._poll, source, states.get(source.name), unchanged)
                    running[future] = index
                    future.add_done_callback(finished.put)
            while running:
                collect()
            if writing is not None:
                writing.result()
        save_unchanged()
        if write_outputs:
            self.write_documents()
            self.publish()
        memory.release()
        return [result for result in results if result is not None]


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
