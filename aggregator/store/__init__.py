"""SQLite storage through sqlite-utils: the schema, its migrations, and every query.

This is the only module with SQL. All writes of one poll happen in one transaction, so a
crash leaves either the whole poll or none of it. An entry is kept once per
(source, identity); its document file name is fixed when it is first seen, and it is listed
in `documents_pending` (by triggers, in the transaction that stored or changed it) until its
document is on disk, so documents that a crash left unwritten are written on the next run.
"""

from ._rows import DocumentsOwed, KnownEntry, SourceState, canonical_link
from ._schema import MIGRATIONS, SCHEMA_VERSION
from ._store import SEARCH_BATCH, Store, database_problem

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SEARCH_BATCH",
    "DocumentsOwed",
    "KnownEntry",
    "SourceState",
    "Store",
    "canonical_link",
    "database_problem",
]
