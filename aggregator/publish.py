"""The merged feed: RSS 2.0 and Atom 1.0 of the newest entries over all sources (feedgen).

Readers deduplicate on item id + feed URL, so both must never change once published: item
ids are derived from (source, identity) only, and the feed's URLs come from configuration.
Output is byte-identical when nothing changed (feedgen's "now" defaults are overridden), so
the served ETag stays put and conditional GETs from readers keep getting 304.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import quoteattr

from feedgen.feed import FeedGenerator

from . import __version__
from .atomic import write_atomic
from .errors import OutputError
from .models import Source, StoredEntry

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedInfo:
    """How the merged feed presents itself; `link` is the public base URL it is served at."""

    title: str
    link: str
    description: str
    rss_name: str = "feed.xml"
    atom_name: str = "atom.xml"
    json_name: str = "feed.json"
    hub: str | None = None  # WebSub hub, advertised in both formats when set


@functools.lru_cache(maxsize=1 << 12)
def item_id(source: str, identity: str) -> str:
    """A permanent id for an entry in the merged feed. Cached for the merged feed, whose
    newest `max_items` are the same entries publish after publish; kept small, since every
    process (the parser processes build group feeds) holds its own copy."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:{source}:{identity}").urn


def build_feeds(
    info: FeedInfo, entries: Sequence[StoredEntry], sources: Mapping[str, Source]
) -> tuple[bytes, bytes]:
    """(RSS bytes, Atom bytes) for `entries`, newest first as given."""
    generator = FeedGenerator()
    generator.load_extension("dc", atom=False, rss=True)
    rss_url = info.link + info.rss_name
    atom_url = info.link + info.atom_name
    generator.id(atom_url)
    generator.title(info.title)
    generator.subtitle(info.description)
    generator.generator("aggregator", __version__)
    # RFC 4287 wants an author on the feed when some entries have none.
    generator.author(name=info.title)
    # feedgen's RSS <link> is whichever alternate link was added last, so add it last.
    generator.link(href=atom_url, rel="self", type="application/atom+xml")
    if info.hub:
        generator.link(href=info.hub, rel="hub")
    generator.link(href=info.link, rel="alternate")
    newest = max((item.date for item in entries), default=EPOCH)
    newest = max([newest, *(item.first_seen for item in entries)], default=EPOCH)
    generator.updated(newest)
    generator.lastBuildDate(newest)
    # feedgen prepends each entry, so add oldest first to come out newest first.
    for stored in reversed(entries):
        _add_entry(generator, stored, sources.get(stored.entry.source), info)
    # Not pretty-printed: indenting 3 MB of XML was a third of building it, and no reader
    # needs the whitespace.
    rss = generator.rss_str(pretty=False)
    # The RSS self link must point at the RSS file; feedgen shares links between formats.
    rss = rss.replace(
        f'<atom:link href="{atom_url}" rel="self" type="application/atom+xml"/>'.encode(),
        f'<atom:link href="{rss_url}" rel="self" type="application/rss+xml"/>'.encode(),
        1,
    )
    if info.hub:
        # feedgen writes only the self atom:link into RSS; WebSub wants the hub there too.
        self_link = f'<atom:link href="{rss_url}" rel="self" type="application/rss+xml"/>'
        hub_link = f'<atom:link href={quoteattr(info.hub)} rel="hub"/>'
        rss = rss.replace(self_link.encode(), f"{self_link}{hub_link}".encode(), 1)
    return rss, generator.atom_str(pretty=False)


def _add_entry(
    generator: FeedGenerator, stored: StoredEntry, source: Source | None, info: FeedInfo
) -> None:
    entry = stored.entry
    item = generator.add_entry()
    identifier = item_id(entry.source, entry.identity)
    item.id(identifier)
    item.guid(identifier, permalink=False)
    item.title(entry.title or "(untitled)")
    item.link(href=entry.link or stored.source_url or info.link)
    item.published(stored.date)
    item.updated(entry.updated or stored.date)
    if entry.author:
        item.author(name=entry.author)
        item.dc.dc_creator(entry.author)
    for category in entry.categories:
        item.category(term=category)
    label = (source.title if source else None) or stored.source_title or entry.source
    origin = stored.source_url or (source.url if source else None)
    if origin:
        item.source(url=origin, title=label)
    if entry.content:
        item.content(entry.content, type="html")
    else:
        item.description(entry.title or "(untitled)")


def publish_feeds(
    folder: Path, info: FeedInfo, entries: Sequence[StoredEntry], sources: Mapping[str, Source]
) -> bool:
    """Write both merged feeds atomically; return True when either file changed."""
    rss, atom = build_feeds(info, entries, sources)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        changed = write_atomic(folder / info.rss_name, rss)
        return write_atomic(folder / info.atom_name, atom) or changed
    except OSError as exc:
        raise OutputError(f"cannot write the merged feed in {folder}: {exc}") from exc
