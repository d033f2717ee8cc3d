"""Every output, written one way by `update` and by the daemon: the documents owed, the
merged feeds (RSS, Atom, JSON Feed), each category's and source's feeds, a ping to the
WebSub hub, and the removals that `keep` asks for.

What is owed lives in the database (documents owed are marked in the same transaction that
stores their entries), so a crash between storing and writing loses nothing: the next
writing finds them. One lock keeps two writings from interleaving. The CPU-heavy parts
(creating many files, building thousands of group feeds) are handed to `run_jobs`, which
runs them in the parser processes when there are any; outputs do not know about processes.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from aggregator.config.settings import Config
from aggregator.models import JSON_FEED_NAME, Paths, Published, Source
from aggregator.outputs.atomic import remove_stale_temps
from aggregator.outputs.document_formats import renderer_for
from aggregator.outputs.documents import (
    Failures,
    remove_documents,
    write_documents,
    write_documents_of,
)
from aggregator.outputs.feed_groups import (
    MERGED,
    FeedGroup,
    configured_groups,
    group_folders,
    group_settings,
    group_signature,
    merged_settings,
    publish_groups,
    publish_json_feed,
    read_groups_built,
    remove_stale_groups,
    write_groups_built,
)
from aggregator.outputs.feeds import FeedInfo, Fragments, publish_feeds
from aggregator.outputs.images import ImageMirror
from aggregator.outputs.websub import ping_hub
from aggregator.sources.fetch import FetchLimits
from aggregator.store.database import Store
from aggregator.store.rows import DocumentsOwed, OwedDocument

log = logging.getLogger(__name__)

T = TypeVar("T")

DOCUMENT_CHUNK = 100  # documents per job handed to `run_jobs`
GROUPS_IN_WORKERS = 8  # fewer stale group feeds than this are built here
GROUP_BATCH = 25  # group feeds per job handed to `run_jobs`: one database connection each

# `function(*job)` for each job, in order; `worth_it` False: here, in this thread.
RunJobs = Callable[[Callable[..., Any], Iterable[tuple], bool], Iterator[Any]]


def run_here(
    function: Callable[..., Any], jobs: Iterable[tuple], worth_it: bool = True
) -> Iterator[Any]:
    """`RunJobs` without processes."""
    return (function(*job) for job in jobs)


@dataclass
class _Round:
    """One publish: the entries' signatures, the sources that moved since the publisher's
    last one, what each feed was made from before and now (`built`), whether it is the
    publisher's first."""

    signatures: Mapping[str, Any]
    moved: set[str]
    before: Mapping[str, list]
    first: bool
    built: dict[str, list] = field(default_factory=dict)


class Publisher:
    """Writes what the store says is owed; knows nothing of polls."""

    def __init__(
        self,
        config: Config,
        store: Store,
        session: requests.Session,
        limits: FetchLimits,
        run_jobs: RunJobs = run_here,
    ) -> None:
        self.config = config
        self.store = store
        self.session = session  # images are mirrored and the hub pinged with it
        self.run_jobs = run_jobs
        self.sources = {source.name: source for source in config.sources}
        self.images = ImageMirror(config.images, store, session, limits) if config.images else None
        self._lock = threading.Lock()
        self._built: dict[str, list] | None = None  # what each feed was made from: see publish
        self._signatures: Mapping[str, Any] = {}  # the entries' signatures at the last publish
        self._published = False  # a publish has succeeded
        self._fragments = Fragments()  # the merged feed's entries, as last published
        # What writing changed since `take_published`, for the hooks; kept only when there
        # are hooks: a cold pass writes 50,000 documents, whose names nobody else needs.
        self._tracking = bool(config.hooks)
        self._written: set[str] = set()
        self._removed: set[str] = set()
        self._feeds_changed = False

    def take_published(self) -> Published:
        """What writing changed since the last call: documents written and removed, feeds
        (nothing without hooks configured)."""
        with self._lock:
            published = Published(
                frozenset(self._written), frozenset(self._removed), self._feeds_changed
            )
            self._written, self._removed, self._feeds_changed = set(), set(), False
        return published

    def _note(self, written: Iterable[str] = (), removed: Iterable[str] = ()) -> None:
        """Remember documents written and removed (call with the lock held): a document
        removed after it was written is removed, and the reverse."""
        if not self._tracking:
            return
        for name in written:
            self._removed.discard(name)
            self._written.add(name)
        for name in removed:
            self._written.discard(name)
            self._removed.add(name)

    def write_documents(self) -> int:
        """Write every pending document; return how many were written or confirmed. The
        documents of deleted entries that a stopped run left are removed first."""
        render = renderer_for(self.config.documents_format, self.config.document_options)
        total, after = 0, 0
        with self._lock:
            self._remove_orphans()
            while (owed := self.store.owed_documents(limit=500, after=after)).done:
                failed = self._write(owed.write, render, pending=True)
                total += len(owed.write) - self._settle(owed, failed)
                after = owed.done[-1].id
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
        self.store.mark_documents([done for done in owed.done if done.id not in failing])
        self.store.note_document_failures(failed)
        unremoved = {name for name, _ in not_removed}
        self._note(
            (item.document for item in owed.write if item.id not in failing),
            (name for _, name in owed.remove if name not in unremoved),
        )
        return len(failing)

    def _write(
        self, owed: Sequence[OwedDocument], render: Callable[..., str], *, pending: bool
    ) -> Failures:
        """Write the documents `owed`. Pending ones (of new or changed entries) are split
        over the parser processes when there are any: creating 50 files is as much of a cold
        poll's CPU as parsing it (most of it in the kernel), and this process is already the
        busiest (it fetches and stores); they are written without reading the file first,
        since they almost never exist with the same text. Each job reads its entries from the
        database where it runs (store/reader.py), unless `images` is configured: then they
        are read here, where their images are mirrored into the site and pointed at (the
        store, and so every published feed, keeps the original URLs), and handed over."""
        folder, only_if_changed = self.config.paths.documents, not pending
        jobs: list[tuple[Any, ...]]
        if self.images is None:
            function: Callable[..., tuple[list[int], Failures]] = write_documents_of
            jobs = [
                (
                    self.store.path,
                    folder,
                    [item.id for item in part],
                    self._sources_named(item.source for item in part),
                    render,
                    only_if_changed,
                )
                for part in _chunks(owed, DOCUMENT_CHUNK)
            ]
        else:
            function = write_documents
            entries = self.store.entries_by_id([item.id for item in owed])
            localised = self.images.localise_all(entries, self.sources)
            jobs = [
                (
                    folder,
                    part,
                    self._sources_named(item.entry.source for item in part),
                    render,
                    only_if_changed,
                )
                for part in _chunks(localised, DOCUMENT_CHUNK)
            ]
        failed: Failures = []
        for _, failures in self.run_jobs(function, jobs, pending and len(owed) >= DOCUMENT_CHUNK):
            failed += failures
        return failed

    def _sources_named(self, names: Iterable[str]) -> dict[str, Source]:
        """The configured sources of these names: all a worker needs of the config."""
        return {name: self.sources[name] for name in set(names) if name in self.sources}

    def render_all(self) -> int:
        """Rewrite every document from the database, in the configured format (after
        `documents_format` changed); return how many."""
        render = renderer_for(self.config.documents_format, self.config.document_options)
        total = 0
        with self._lock:
            for owed in self.store.all_documents(batch=500):
                failed = self._write(owed.write, render, pending=False)
                total += len(owed.write) - self._settle(owed, failed)
        return total

    def prune(self, source: Source) -> int:
        """Apply a source's `keep` cap: delete its oldest entries, then their documents.
        A crash in between leaves the documents recorded as orphans (migration 12), which
        the next writing of documents removes."""
        if source.keep is None:
            return 0
        with self._lock:
            names = self.store.prune_source(source.name, source.keep)
            self._remove_orphans()
        if names:
            log.info("source=%s pruned=%d keep=%d", source.name, len(names), source.keep)
        return len(names)

    def remove_orphans(self) -> tuple[int, list[tuple[str, str]]]:
        """Remove the documents of deleted entries (after a purge); see `_remove_orphans`."""
        with self._lock:
            return self._remove_orphans()

    def _remove_orphans(self) -> tuple[int, list[tuple[str, str]]]:
        """Remove the documents of the entries deleted since the last time (call with the
        lock held). Return how many were removed, and those that could not be, with why:
        they stay recorded, and are tried again next time."""
        names = self.store.orphaned_documents()
        if not names:
            return 0, []
        removed, failed = remove_documents(self.config.paths.documents, names)
        unremoved = {name for name, _ in failed}
        self.store.forget_orphans([name for name in names if name not in unremoved])
        self._note(removed=(name for name in names if name not in unremoved))
        for name, error in failed:
            log.error("document %s of a deleted entry not removed: %s", name, error)
        return removed, failed

    def publish(self) -> bool:
        """Rewrite the merged feeds (RSS, Atom, JSON Feed) and each category's and source's
        feeds from the newest stored entries; when the merged feeds changed, announce them
        to the WebSub hub. True when any file changed.

        What each feed was built from is kept beside the database, so that a fresh process
        (`aggregator update` from a timer) rebuilds none that nothing moved for: at 1,000
        sources the group feeds were 9 s of a 10 s all-304 pass, and the merged feeds (with
        the imports building them needs) a tenth of what is left. The daemon publishes
        after every burst of polls: there a pass looks only at the groups of sources whose
        entries moved since the one before (at 10,000 sources, looking at every group and
        folder each time held the daemon's process for half a second a pass)."""
        with self._lock:
            if self._built is None:
                self._built = read_groups_built(self._groups_built_path())
            before, first = self._built, not self._published
            signatures = self.store.entries_signatures()
            # Sources whose entries, title or address moved since this publisher's last
            # publish (all of them the first time): only their feeds are looked at again.
            moved = {
                name
                for name in signatures.keys() | self._signatures.keys()
                if first or signatures.get(name) != self._signatures.get(name)
            }
            round_ = _Round(signatures, moved, before, first)
            merged = self._publish_merged(round_)
            changed = self._publish_groups(round_) or merged
            self._signatures, self._published, self._built = signatures, True, round_.built
            if round_.built != before:
                write_groups_built(self._groups_built_path(), round_.built)
            self._feeds_changed = self._feeds_changed or (changed and self._tracking)
        hub = self.config.feed.hub
        if merged and hub:
            info = self._info
            urls = [info.link + name for name in (info.rss_name, info.atom_name, JSON_FEED_NAME)]
            ping_hub(self.session, hub, urls)
        return changed

    def _publish_merged(self, round_: _Round) -> bool:
        """Rebuild the merged feeds unless what they are made from is what they were last
        made from (and the files are there); record it in the round's `built`."""
        info, public, max_items = self._info, self.config.paths.public, self.config.feed.max_items
        last = round_.before.get(MERGED)
        if round_.first or round_.moved or last is None:  # every title, address and entries
            sources = group_signature(round_.signatures, sorted(round_.signatures))
        else:  # none of them moved since this publisher made `last`
            sources = last[2]
        # The clock moves with every entry stored, changed or deleted, also one of a source
        # no longer in the table.
        made_from = [self._merged_settings, self.store.entries_clock(), sources]
        round_.built[MERGED] = made_from
        names = (info.rss_name, info.atom_name, JSON_FEED_NAME)
        if last == made_from and all((public / n).is_file() for n in names):
            return False
        entries = self.store.newest_entries(max_items)
        merged = publish_feeds(public, info, entries, self.sources, self._fragments)
        return publish_json_feed(public, info, entries, self.sources) or merged

    def _publish_groups(self, round_: _Round) -> bool:
        """Rebuild the group feeds whose entries or settings moved since they were last
        built; record them in the round's `built`. The first time, also each group whose
        folder is missing, and remove the folders of groups no longer configured."""
        public, info, max_items = self.config.paths.public, self._info, self.config.feed.max_items
        stale: list[FeedGroup] = []
        present = group_folders(public) if round_.first else set()
        for group, settings in self._groups:
            last = round_.before.get(group.folder)
            if last is None or not round_.moved.isdisjoint(group.sources):
                made_from = [settings, group_signature(round_.signatures, group.sources)]
            else:
                made_from = last
            round_.built[group.folder] = made_from
            if last != made_from or (round_.first and group.folder not in present):
                stale.append(group)

        # A cold start builds a feed for every source: split over the parser processes,
        # which read the groups' entries themselves (store/reader.py).
        jobs = [
            (
                self.store.path,
                public,
                info,
                max_items,
                [(g, self._sources_named(g.sources)) for g in batch],
            )
            for batch in _chunks(stale, GROUP_BATCH)
        ]
        changed = any(list(self.run_jobs(publish_groups, jobs, len(stale) >= GROUPS_IN_WORKERS)))
        if round_.first:
            remove_stale_groups(public, present, [group for group, _ in self._groups])
        return changed

    @functools.cached_property
    def _info(self) -> FeedInfo:
        feed = self.config.feed
        return FeedInfo(
            feed.title, feed.link, feed.description, feed.rss_name, feed.atom_name, hub=feed.hub
        )

    @functools.cached_property
    def _merged_settings(self) -> str:
        return merged_settings(self._info, self.sources, self.config.feed.max_items)

    @functools.cached_property
    def _groups(self) -> list[tuple[FeedGroup, str]]:
        """The configured groups, each with the digest of its settings (a config's, so a
        publisher's, for life: a reload makes a new publisher)."""
        max_items = self.config.feed.max_items
        return [
            (group, group_settings(self._info, group, self.sources, max_items))
            for group in configured_groups(self.config)
        ]

    def _groups_built_path(self) -> Path:
        database = self.config.paths.database
        return database.with_name(database.name + ".groups.json")


def remove_interrupted_writes(paths: Paths) -> int:
    """Delete the temp files a run stopped mid-write (SIGKILL, a power cut) left among the
    outputs: documents, merged and group feeds, and the files kept beside the database.
    Return how many. Hidden, they harm no site; they would only pile up."""
    groups = [paths.public / folder for folder in group_folders(paths.public)]
    folders = [paths.documents, paths.public, *groups]
    beside = remove_stale_temps(paths.database.parent, prefix=paths.database.name)
    return beside + sum(remove_stale_temps(folder) for folder in folders)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
