"""One feed per category and per source, beside the merged feed, each in RSS, Atom and JSON.

Layout under the feed folder, stable so that readers can subscribe to it:

    feed.xml, atom.xml, feed.json                 the merged feed (names of the first two
                                                  configurable)
    category/<slug>/feed.xml, atom.xml, feed.json one per category configured on any source
    source/<name>/feed.xml, atom.xml, feed.json   one per configured source

A category's slug is its name lowercased with runs of anything but letters and digits turned
into `-` (Chinese names stay readable); names that give the same slug share one feed. An
entry's categories are its source's configured categories. Folders of categories or sources
no longer configured are removed, so a stale group feed never lingers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aggregator import __version__
from aggregator.errors import OutputError
from aggregator.models import FEED_FILES, JSON_FEED_NAME, MediaType, Source, StoredEntry
from aggregator.outputs.atomic import write_atomic
from aggregator.outputs.feeds import FeedInfo, build_feeds
from aggregator.outputs.jsonfeed import build_json_feed
from aggregator.store.reader import newest_entries_of, open_reader
from aggregator.text import slugify

if TYPE_CHECKING:  # not imported at run time: parser processes build group feeds too
    from aggregator.config.settings import Config

log = logging.getLogger(__name__)

GROUP_FILES = tuple(name for name, _, _ in FEED_FILES)
MERGED = ""  # the merged feeds' key among what feeds were built from (no group's folder)
KINDS = ("category", "source")


@dataclass(frozen=True)
class FeedGroup:
    """A category or a source, and the configured sources whose entries its feed shows."""

    kind: str  # "category" or "source"
    slug: str  # its folder under `kind/`
    title: str  # the category's name, or the source's title
    sources: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.kind}/{self.slug}"

    @property
    def url_path(self) -> str:
        """The folder as it appears in a URL (percent-encoded), with a trailing slash."""
        return quote(self.folder) + "/"


@dataclass(frozen=True)
class FeedLink:
    """One published feed file, for the index page's links and the server's routes."""

    title: str
    path: str  # file path relative to the feed folder, e.g. "category/tech/atom.xml"
    url_path: str  # the same, percent-encoded for a URL
    media_type: str


def feed_groups(
    sources: Sequence[Source], *, categories: bool = True, each_source: bool = True
) -> list[FeedGroup]:
    """Every category group (in order of first appearance) then every source group, of
    the kinds switched on (`feed.category_feeds`, `feed.source_feeds`)."""
    by_slug: dict[str, tuple[str, list[str]]] = {}
    for source in sources if categories else ():
        for category in source.categories:
            slug = category_slug(category)
            _, members = by_slug.setdefault(slug, (category, []))
            if source.name not in members:
                members.append(source.name)
    groups = [
        FeedGroup("category", slug, title, tuple(members))
        for slug, (title, members) in by_slug.items()
    ]
    groups += [
        FeedGroup("source", source.name, source.title or source.name, (source.name,))
        for source in (sources if each_source else ())
    ]
    return groups


def configured_groups(config: Config) -> list[FeedGroup]:
    """The groups `config` asks for."""
    feed = config.feed
    return feed_groups(
        config.sources, categories=feed.category_feeds, each_source=feed.source_feeds
    )


def category_slug(name: str) -> str:
    """A folder name for a category; never empty, never `.` or `..`, at most 100 bytes."""
    return slugify(name, 100, "category")


def group_info(merged: FeedInfo, group: FeedGroup) -> FeedInfo:
    """How a group's feed presents itself: named after the group, its own self links, no
    WebSub hub (only the merged feed is announced)."""
    kind = "Category" if group.kind == "category" else "Source"
    return replace(
        merged,
        title=f"{merged.title}: {group.title}",
        description=f"{kind} {group.title}: {merged.description}",
        rss_name=group.url_path + GROUP_FILES[0],
        atom_name=group.url_path + GROUP_FILES[1],
        json_name=group.url_path + JSON_FEED_NAME,
        hub=None,
    )


def publish_json_feed(
    folder: Path, info: FeedInfo, entries: Sequence[StoredEntry], sources: Mapping[str, Source]
) -> bool:
    """Write the merged JSON Feed as `feed.json`; True when it changed."""
    data = build_json_feed(replace(info, json_name=JSON_FEED_NAME), entries, sources)
    return _write(folder, {JSON_FEED_NAME: data})


def publish_group(
    public: Path,
    merged: FeedInfo,
    group: FeedGroup,
    entries: Sequence[StoredEntry],
    sources: Mapping[str, Source],
) -> bool:
    """Write one group's RSS, Atom and JSON Feed; True when any of them changed."""
    info = group_info(merged, group)
    rss, atom = build_feeds(info, entries, sources)
    data = build_json_feed(info, entries, sources)
    files = dict(zip(GROUP_FILES, (rss, atom, data), strict=True))
    return _write(public / group.kind / group.slug, files)


def publish_groups(
    database: Path,
    public: Path,
    merged: FeedInfo,
    max_items: int,
    groups: Sequence[tuple[FeedGroup, Mapping[str, Source]]],
) -> bool:
    """`publish_group` for each of `groups` (with its configured sources), its newest
    `max_items` entries read from `database` here, in whichever process this runs (see
    store/reader.py); True when any file changed."""
    changed = False
    with contextlib.closing(open_reader(database)) as connection:
        for group, sources in groups:
            entries = newest_entries_of(connection, group.sources, max_items)
            changed = publish_group(public, merged, group, entries, sources) or changed
    return changed


def group_settings(
    info: FeedInfo, group: FeedGroup, sources: Mapping[str, Source], max_items: int
) -> str:
    """A digest of everything but the entries that a group feed is made from."""
    chosen = [sources.get(name) for name in group.sources]
    return _digest((info, group, chosen, max_items, __version__))


def merged_settings(info: FeedInfo, sources: Mapping[str, Source], max_items: int) -> str:
    """A digest of everything but the entries that the merged feeds are made from."""
    return _digest((info, sorted(sources.items()), max_items, __version__))


def group_signature(signatures: Mapping[str, Sequence[Any]], sources: Iterable[str]) -> str:
    """A digest of `Store.entries_signatures` over a group's sources: it moves whenever
    any of their entries, titles or addresses moved, also when a source was deleted and
    made again (its clock starts again at 0, which it had only while it had no entries)."""
    return _digest([(name, signatures.get(name)) for name in sources])


def _digest(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def read_groups_built(path: Path) -> dict[str, list]:
    """What `write_groups_built` left; anything unreadable means "build everything"."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_groups_built(path: Path, built: Mapping[str, list]) -> None:
    try:
        write_atomic(path, json.dumps(built, ensure_ascii=False, sort_keys=True).encode())
    except OSError as exc:  # only costs a rebuild next time; not worth failing a publish
        log.warning("cannot record the group feeds built in %s: %s", path, exc)


def remove_stale_groups(
    public: Path, present: Iterable[str], groups: Sequence[FeedGroup]
) -> list[str]:
    """Delete the folders among `present` (`group_folders`) of groups no longer configured;
    return their relative paths.

    Only folders holding nothing but our three files (and leftover temp files) are removed;
    anything else a user put there is left alone."""
    removed: list[str] = []
    for relative in sorted(set(present) - {group.folder for group in groups}):
        folder = public / relative
        names = {path.name for path in folder.iterdir()}
        if all(name in GROUP_FILES or name.startswith(".") for name in names):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(relative)
    return removed


def group_folders(public: Path) -> set[str]:
    """The group folders under `public` ("kind/slug"), from one listing of each kind's
    folder: a fresh process's publish looks for every group's (1,000 `stat`s took ~0.01 s)."""
    found: set[str] = set()
    for kind in KINDS:
        with contextlib.suppress(OSError), os.scandir(public / kind) as entries:
            found.update(f"{kind}/{entry.name}" for entry in entries if entry.is_dir())
    return found


def published_feeds(merged: FeedInfo, groups: Sequence[FeedGroup]) -> list[FeedLink]:
    """Every feed file this program publishes: merged first, then each group's."""
    links = [
        FeedLink(f"{merged.title} (RSS)", merged.rss_name, quote(merged.rss_name), MediaType.RSS),
        FeedLink(
            f"{merged.title} (Atom)", merged.atom_name, quote(merged.atom_name), MediaType.ATOM
        ),
        FeedLink(
            f"{merged.title} (JSON Feed)", JSON_FEED_NAME, JSON_FEED_NAME, MediaType.JSON_FEED
        ),
    ]
    for group in groups:
        title = group_info(merged, group).title
        for name, kind, media_type in FEED_FILES:
            links.append(
                FeedLink(
                    f"{title} ({kind})",
                    f"{group.folder}/{name}",
                    group.url_path + name,
                    media_type,
                )
            )
    return links


def _write(folder: Path, files: Mapping[str, bytes]) -> bool:
    changed = False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            changed = write_atomic(folder / name, data) or changed
    except OSError as exc:
        raise OutputError(f"cannot write feeds in {folder}: {exc}") from exc
    return changed
