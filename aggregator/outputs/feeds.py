"""The merged feed: RSS 2.0 and Atom 1.0 of the newest entries over all sources.

feedgen writes each feed's head; each entry is written out here as feedgen writes it
(tests/invariants.py builds the whole feed with feedgen and compares the bytes), since
feedgen's per-entry objects were most of a cold pass's publishing.

Readers deduplicate on item id + feed URL, so both must never change once published: item
ids are derived from (source, identity) only, and the feed's URLs come from configuration.
Output is byte-identical when nothing changed (feedgen's "now" defaults are overridden), so
the served ETag stays put and conditional GETs from readers keep getting 304.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from aggregator import __version__
from aggregator.errors import OutputError
from aggregator.models import (
    ATOM_FEED_NAME,
    JSON_FEED_NAME,
    RSS_FEED_NAME,
    MediaType,
    Source,
    StoredEntry,
)
from aggregator.outputs.atomic import write_atomic
from aggregator.outputs.redact import public_url
from aggregator.text import XML_INVALID

if TYPE_CHECKING:
    from feedgen.feed import FeedGenerator

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedInfo:
    """How the merged feed presents itself; `link` is the public base URL it is served at."""

    title: str
    link: str
    description: str
    rss_name: str = RSS_FEED_NAME
    atom_name: str = ATOM_FEED_NAME
    json_name: str = JSON_FEED_NAME
    hub: str | None = None  # WebSub hub, advertised in both formats when set


@functools.lru_cache(maxsize=1 << 12)
def item_id(source: str, identity: str) -> str:
    """A permanent id for an entry in the merged feed. Cached for the merged feed, whose
    newest `max_items` are the same entries publish after publish; kept small, since every
    process (the parser processes build group feeds) holds its own copy."""
    name = f"aggregator:{source}:{identity}".encode("utf-8", "surrogatepass")
    digest = bytearray(hashlib.sha1(_URL_NAMESPACE + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = digest.hex()
    # `uuid.uuid5(NAMESPACE_URL, name).urn`, without the UUID object (a third of the cost).
    return f"urn:uuid:{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


FragmentKey = tuple[object, ...]


class Fragments:
    """Each entry's RSS <item> and Atom <entry> as feedgen would write them, kept from one
    publish to the next.

    Writing both costs ~25 µs an entry (feedgen took ~80), 25 ms for a merged feed of 1,000
    entries, while the newest 1,000 gain a handful of entries between two publishes. An
    entry's fragments are reused only while everything they are built from is the same: its
    row (id, version, first sight, date) and its source's label and address."""

    def __init__(self) -> None:
        self._known: dict[FragmentKey, tuple[bytes, bytes]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def of(
        self, entries: Sequence[StoredEntry], sources: Mapping[str, Source], info: FeedInfo
    ) -> list[tuple[bytes, bytes]]:
        """(RSS, Atom) fragments of `entries`, built where not kept; afterwards exactly
        these are kept."""
        keyed = [(_fragment_key(stored, sources, info), stored) for stored in entries]
        missing = [(key, stored) for key, stored in keyed if key not in self._known]
        built = dict(zip((key for key, _ in missing), _render(missing, sources, info), strict=True))
        self._known = {key: self._known.get(key) or built[key] for key, _ in keyed}
        return [self._known[key] for key, _ in keyed]


def build_feeds(
    info: FeedInfo,
    entries: Sequence[StoredEntry],
    sources: Mapping[str, Source],
    fragments: Fragments | None = None,
) -> tuple[bytes, bytes]:
    """(RSS bytes, Atom bytes) for `entries`, newest first as given: the bytes feedgen
    writes for the whole feed (its head, and each entry's part from `fragments`)."""
    parts = (fragments if fragments is not None else Fragments()).of(entries, sources, info)
    head = _feed_generator(info, entries)
    return (
        _insert(_rss_bytes(head, info), b"</channel>", (rss for rss, _ in parts)),
        _insert(head.atom_str(pretty=False), b"</feed>", (atom for _, atom in parts)),
    )


def _feed_generator(info: FeedInfo, entries: Sequence[StoredEntry]) -> FeedGenerator:
    """The feed's own elements, without entries."""
    # Imported here: feedgen (with lxml and dateutil) is a tenth of the start of an
    # `update` whose feeds all turn out unchanged, and such a pass builds none.
    from feedgen.feed import FeedGenerator

    generator = FeedGenerator()
    generator.load_extension("dc", atom=False, rss=True)
    generator.id(info.link + info.atom_name)
    generator.title(info.title)
    generator.subtitle(info.description)
    generator.generator("aggregator", __version__)
    # RFC 4287 wants an author on the feed when some entries have none.
    generator.author(name=info.title)
    # feedgen's RSS <link> is whichever alternate link was added last, so add it last.
    generator.link(href=info.link + info.atom_name, rel="self", type=MediaType.ATOM.value)
    if info.hub:
        generator.link(href=info.hub, rel="hub")
    generator.link(href=info.link, rel="alternate")
    newest = max((item.date for item in entries), default=EPOCH)
    newest = max([newest, *(item.first_seen for item in entries)], default=EPOCH)
    generator.updated(newest)
    generator.lastBuildDate(newest)
    return generator


def _rss_bytes(generator: FeedGenerator, info: FeedInfo) -> bytes:
    # Not pretty-printed: indenting 3 MB of XML was a third of building it, and no reader
    # needs the whitespace.
    rss = generator.rss_str(pretty=False)
    # The RSS self link must point at the RSS file; feedgen shares links between formats.
    atom_self = f'<atom:link href="{info.link + info.atom_name}" rel="self" '
    rss_self = f'<atom:link href="{info.link + info.rss_name}" rel="self" '
    rss = rss.replace(
        f'{atom_self}type="{MediaType.ATOM}"/>'.encode(),
        f'{rss_self}type="{MediaType.RSS}"/>'.encode(),
        1,
    )
    if info.hub:
        # feedgen writes only the self atom:link into RSS; WebSub wants the hub there too.
        self_link = f'{rss_self}type="{MediaType.RSS}"/>'
        hub_link = f'<atom:link href={quoteattr(info.hub)} rel="hub"/>'
        rss = rss.replace(self_link.encode(), f"{self_link}{hub_link}".encode(), 1)
    return rss


def _fragment_key(
    stored: StoredEntry, sources: Mapping[str, Source], info: FeedInfo
) -> FragmentKey:
    """Everything an entry's fragments are built from beside its row, whose id and version
    stand for its content; first_seen tells apart a new row that reused a deleted row's id."""
    source = sources.get(stored.entry.source)
    return (
        stored.id,
        stored.version,
        stored.first_seen,
        stored.date,
        source.title if source else None,
        source.url if source else None,
        stored.source_title,
        stored.source_url,
        info.link,
    )


def _render(
    missing: Sequence[tuple[FragmentKey, StoredEntry]],
    sources: Mapping[str, Source],
    info: FeedInfo,
) -> list[tuple[bytes, bytes]]:
    """(RSS <item>, Atom <entry>) bytes of each entry, as feedgen writes them inside the
    whole feed (tests/invariants.py holds the two to the same bytes).

    Written out directly: feedgen's per-entry objects cost ~80 µs an entry, and lxml
    alone still ~60, most of it checking each character of the content twice; a feed per
    source makes a cold pass publish every entry it stored."""
    return [_entry_xml(stored, sources.get(stored.entry.source), info) for _, stored in missing]


def _entry_xml(stored: StoredEntry, source: Source | None, info: FeedInfo) -> tuple[bytes, bytes]:
    """feedgen's elements for what `feedgen_entry` in tests/invariants.py gives it, in its
    order, escaped as libxml2 escapes them."""
    entry = stored.entry
    identifier = item_id(entry.source, entry.identity)
    title = _text(entry.title or "(untitled)")
    public = source is not None and source.public_url
    origin = public_url(stored.source_url or (source.url if source else None), public)
    link = entry.link or origin or info.link
    body = _text(entry.content) if entry.content else title
    author = _text(entry.author) if entry.author else ""
    label = _text((source.title if source else None) or stored.source_title or entry.source)
    # RSS: title, link, description, guid, categories, pubDate, source, then dc:creator.
    rss = [f"<item><title>{title}</title>"]
    if link:
        rss.append(f"<link>{_text(link)}</link>")
    rss.append(f'<description>{body}</description><guid isPermaLink="false">{identifier}</guid>')
    rss += [f"<category>{_text(name)}</category>" for name in entry.categories]
    rss.append(f"<pubDate>{_rfc2822(stored.date)}</pubDate>")
    if origin:
        rss.append(f'<source url="{_attribute(origin)}">{label}</source>')
    if author:
        rss.append(f"<dc:creator>{author}</dc:creator>")
    rss.append("</item>")
    # Atom: id, title, updated, author, content, link, categories, published, source
    # (feedgen's link loop never writes `rel`: the element shadows the dictionary).
    updated = (entry.updated or stored.date).isoformat()
    atom = [f"<entry><id>{identifier}</id><title>{title}</title><updated>{updated}</updated>"]
    if author:
        atom.append(f"<author><name>{author}</name></author>")
    kind = ' type="html"' if entry.content else ""
    atom.append(f'<content{kind}>{body}</content><link href="{_attribute(link)}"/>')
    atom += [f'<category term="{_attribute(name)}"/>' for name in entry.categories]
    atom.append(f"<published>{stored.date.isoformat()}</published>")
    if origin:
        atom.append(f'<source><title>{label}</title><link href="{_attribute(origin)}"/></source>')
    atom.append("</entry>")
    return "".join(rss).encode(), "".join(atom).encode()


def _text(value: str) -> str:
    """Element text as libxml2 writes it; characters XML cannot hold are left out (lxml,
    and so feedgen, would refuse the whole feed for one)."""
    if XML_INVALID.search(value):
        value = XML_INVALID.sub("", value)
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _attribute(value: str) -> str:
    """An attribute value (in double quotes) as libxml2 writes it."""
    return _text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _rfc2822(moment: datetime) -> str:
    """feedgen's `formatRFC2822` (strftime in the C locale) without switching the
    process's locale twice per date."""
    day, month = _DAYS[moment.weekday()], _MONTHS[moment.month - 1]
    return moment.strftime(f"{day}, %d {month} %Y %H:%M:%S %z")


def _insert(document: bytes, closing: bytes, parts: Iterable[bytes]) -> bytes:
    """`document` with `parts` placed before its last `closing` tag, where feedgen appends
    entries."""
    at = document.rindex(closing)
    return b"".join([document[:at], *parts, document[at:]])


def publish_feeds(
    folder: Path,
    info: FeedInfo,
    entries: Sequence[StoredEntry],
    sources: Mapping[str, Source],
    fragments: Fragments | None = None,
) -> bool:
    """Write both merged feeds atomically; return True when either file changed."""
    rss, atom = build_feeds(info, entries, sources, fragments)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        changed = write_atomic(folder / info.rss_name, rss)
        return write_atomic(folder / info.atom_name, atom) or changed
    except OSError as exc:
        raise OutputError(f"cannot write the merged feed in {folder}: {exc}") from exc
