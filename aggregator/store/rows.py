"""Rows as the steps see them: the plain types the store hands out, and the conversions
between them and SQLite's text columns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aggregator.models import Entry, HttpState, SourceStatus, StoredEntry


@dataclass(frozen=True)
class SourceState:
    """A source's row: HTTP validators plus what the user sees in `sources` and `/status`."""

    name: str
    url: str
    current_url: str | None = None
    title: str | None = None
    link: str | None = None
    http: HttpState = field(default_factory=HttpState)
    status: SourceStatus = SourceStatus.NEW
    http_status: int | None = None
    error: str | None = None
    consecutive_errors: int = 0
    last_fetch: datetime | None = None
    last_success: datetime | None = None
    next_poll: datetime | None = None
    ttl: int | None = None
    entries: int = 0


@dataclass(frozen=True)
class KnownEntry:
    """Just enough of a stored entry to decide whether a fetched one is new or changed."""

    id: int
    content_hash: str


# Query parameters that say where a click came from, not which page: two links that differ
# only in these are one article.
TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "igshid")

ENTRY_SELECT = (
    "SELECT e.*, s.title AS source_title, coalesce(s.current_url, s.url) AS source_url "
    "FROM entries e LEFT JOIN sources s ON s.name = e.source"
)


def newest_entries_query(sources: Sequence[str], limit: int) -> tuple[str, list[Any]]:
    """The newest `limit` entries of some sources (one category, or one source), one per
    article among them, so that a group feed never loses an article to an outside source
    that carries it too: the statement and its parameters."""
    if len(sources) == 1:
        # One source's feed: no other source can carry its articles, and asking each row
        # (a subquery per entry) made this 2.7x slower, ~1.6 ms a feed.
        where, parameters = "e.source = ?", [*sources, limit]
    else:
        marks = ", ".join("?" for _ in sources)
        where = (
            f"e.source IN ({marks}) AND (e.article IS NULL OR NOT EXISTS (SELECT 1 FROM "
            "entries o WHERE o.article = e.article AND o.source < e.source "
            f"AND o.source IN ({marks})))"
        )
        parameters = [*sources, *sources, limit]
    return f"{ENTRY_SELECT} WHERE {where} ORDER BY e.date DESC, e.id DESC LIMIT ?", parameters


def entries_by_id_query(ids: Sequence[int]) -> tuple[str, list[int]]:
    """The entries `ids` (those still stored), in the order of their ids."""
    marks = ", ".join("?" for _ in ids)
    return f"{ENTRY_SELECT} WHERE e.id IN ({marks}) ORDER BY e.id", list(ids)


# What a document owed needs known before it is written: whether another source's entry of
# the same article comes first, and the stamp of its row in `documents_pending` (migration
# 11; NULL when it is not owed, or was owed before that migration). The entry itself is read
# where its document is written.
OWED_SELECT = (
    "SELECT e.id, e.source, e.document, e.article, e.article IS NOT NULL AND EXISTS ("
    "SELECT 1 FROM entries o WHERE o.article = e.article AND o.source < e.source) "
    "AS superseded, p.stamp FROM entries e LEFT JOIN documents_pending p ON p.id = e.id"
)


class OwedDocument(NamedTuple):
    """An entry whose document is to be written."""

    id: int
    source: str
    document: str


class Listed(NamedTuple):
    """An entry whose document was listed as owed, and the stamp its owing had then: the
    document is settled only if the entry was not owed anew since (`Store.mark_documents`)."""

    id: int
    stamp: int | None


@dataclass(frozen=True)
class DocumentsOwed:
    """Documents to write and to remove for some entries, and the entries that are settled
    once both are done."""

    write: list[OwedDocument]
    remove: list[tuple[int, str]]  # (the entry owing the removal, document name)
    done: list[Listed]


def canonical_link(link: str | None) -> str | None:
    """The link two sources would share for one article: no fragment, no tracking query,
    either scheme. None for a site's home page, which many entries link to and which is
    no article."""
    if not link:
        return None
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return None
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(TRACKING)
    ]
    path = parts.path.rstrip("/") or "/"
    if path == "/" and not query:
        return None
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query), "")
    ).replace("https://", "http://", 1)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    if len(text) == 27 and text[-1] == "Z":
        # What `iso` writes; fromisoformat is ~30x faster than strptime, and reading the
        # newest 1,000 entries for the merged feed parses four dates per entry.
        return datetime.fromisoformat(text)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def source_state(row: dict[str, Any]) -> SourceState:
    return SourceState(
        name=row["name"],
        url=row["url"],
        current_url=row["current_url"],
        title=row["title"],
        link=row["link"],
        http=HttpState(row["etag"], row["last_modified"], row["body_hash"]),
        status=SourceStatus(row["status"]),
        http_status=row["http_status"],
        error=row["error"],
        consecutive_errors=row["consecutive_errors"],
        last_fetch=parse_iso(row["last_fetch"]),
        last_success=parse_iso(row["last_success"]),
        next_poll=parse_iso(row["next_poll"]),
        ttl=row["ttl"],
        entries=row["n"],
    )


def stored_entry(row: dict[str, Any]) -> StoredEntry:
    entry = Entry(
        source=row["source"],
        identity=row["identity"],
        link=row["link"],
        title=row["title"],
        author=row["author"],
        published=parse_iso(row["published"]),
        updated=parse_iso(row["updated"]),
        content=row.get("full_text") or row["content"],  # the article, when one was fetched
        image=row["image"],
        categories=tuple(json.loads(row["categories"])),
    )
    return StoredEntry(
        id=row["id"],
        entry=entry,
        date=parse_iso(row["date"]) or datetime.now(UTC),
        first_seen=parse_iso(row["first_seen"]) or datetime.now(UTC),
        document=row["document"],
        source_title=row["source_title"],
        source_url=row["source_url"],
        version=row["version"],
    )
