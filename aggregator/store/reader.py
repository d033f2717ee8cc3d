"""Entries read by another process: the parser processes read the entries of the group feeds
they build from the database themselves, instead of being handed them.

Handing them over cost the process that fetches and stores, the busiest of a cold pass,
reading ~28,000 entries into objects and pickling them (~0.9 s at 1,000 sources), and each
worker unpickling its share (~0.3 s in all): read where they are used, they cost only the
reading. The database is in WAL mode, so a reader in another process sees the last
committed state and holds no writer up. Only the standard library and `rows` are imported
here, so that the workers stay small (poll/workers.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from aggregator.models import StoredEntry
from aggregator.store.rows import newest_entries_query, stored_entry

BUSY_SECONDS = 30  # as the store's own connection waits


def open_reader(database: Path) -> sqlite3.Connection:
    """A read-only connection to `database`."""
    return sqlite3.connect(
        f"{database.absolute().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS
    )


def newest_entries_of(
    connection: sqlite3.Connection, sources: Sequence[str], limit: int
) -> list[StoredEntry]:
    """A group feed's entries (`newest_entries_query`), as `Store.newest_entries_of` reads
    them."""
    if not sources:
        return []
    cursor = connection.execute(*newest_entries_query(sources, limit))
    columns = [column[0] for column in cursor.description]
    return [stored_entry(dict(zip(columns, row, strict=True))) for row in cursor]
