"""Rows as the steps see them: the plain types the store hands out, and the conversions
between them and SQLite's text columns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..models import Entry, HttpState, StoredEntry


@dataclass(frozen=True)
class SourceState:
    """A source's row: HTTP validators plus what the user sees in `sources` and `/status`."""

    name: str
    url: str
    current_url: str | None = None
    title: str | None = None
    link: str | None = None
    http: HttpState = field(default_factory=HttpState)
    status: str = "new"
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


ENTRY_SELECT = (
    "SELECT e.*, s.title AS source_title, coalesce(s.current_url, s.url) AS source_url "
    "FROM entries e LEFT JOIN sources s ON s.name = e.source"
)


def canonical_link(link: str | None) -> str | None:
    """The link two sources would share for one article: no fragment, no tracking query."""
    if not link:
        return None
    parts = urlsplit(link.strip())
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(("utm_", "fbclid", "gclid"))
    ]
    path = parts.path.rstrip("/") or "/"
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
        status=row["status"],
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
        content=row["content"],
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
