"""Entries read where they are used: the parser processes read the entries of the documents
and group feeds they write from the database themselves, instead of being handed them.

Handing them over cost the process that fetches and stores, the busiest of a cold pass,
reading ~28,000 entries into objects and pickling them, once for the documents and once for
the feeds (~0.9 s each at 1,000 sources), and the workers unpickling them (~0.3 s each):
read where they are used, they cost only the reading. The database is in WAL mode, so a
reader in another process sees the last committed state and holds no writer up. Only the
standard library and `rows` are imported here, so that the workers stay small
(poll/workers.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from aggregator.models import StoredEntry
from aggregator.store.rows import entries_by_id_query, newest_entries_query, stored_entry

BUSY_SECONDS = 30  # as the store's own connection waits


def open_reader(database: Path) -> sqlite3.Connection:
    """A read-only connection to `database`."""
    return sqlite3.connect(
        f"{database.absolute().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS
    )


def newest_entries_of(
    connection: sqlite3.Connection, sources: Sequence[str], limit: int
) -> list[StoredEntry]:
    """A group feed's entries (`newest_entries_query`)."""
    if not sources:
        return []
    return _stored_entries(connection, *newest_entries_query(sources, limit))


def entries_by_id(connection: sqlite3.Connection, ids: Sequence[int]) -> list[StoredEntry]:
    """The entries `ids` that are still stored, in the order of their ids."""
    if not ids:
        return []
    return _stored_entries(connection, *entries_by_id_query(ids))


def _stored_entries(
    connection: sqlite3.Connection, query: str, parameters: Sequence[object]
) -> list[StoredEntry]:
    cursor = connection.execute(query, parameters)
    columns = [column[0] for column in cursor.description]
    return [stored_entry(dict(zip(columns, row, strict=True))) for row in cursor]
