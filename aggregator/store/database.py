"""The Store: one connection to one database file, and every query of the program."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from aggregator.errors import StoreError
from aggregator.models import Entry, ImageOutcome, SourceStatus, StoredEntry
from aggregator.outputs.atomic import write_atomic
from aggregator.store import reader
from aggregator.store.rows import (
    ENTRY_SELECT,
    OWED_SELECT,
    DocumentsOwed,
    KnownEntry,
    Listed,
    OwedDocument,
    SourceState,
    canonical_link,
    iso,
    parse_iso,
    source_state,
    stored_entry,
)
from aggregator.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    entry_text,
    link_key,
    statements,
    url_key,
)

SEARCH_BATCH = 500
WAL_CHECKPOINT_PAGES = 10_000
WAL_SIZE_LIMIT = 64 * 1024 * 1024
CLEAN_CLOSE = ".closed"  # beside the database: how it was left at the last clean close


class Store:
    """One database file. Thread-safe: a lock serialises every use of the connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = path.exists() and path.stat().st_size > 0
            # Before connecting: reading a WAL database makes its log file.
            unchanged = existed and self._closed_cleanly()
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.create_function("entry_text", 1, entry_text, deterministic=True)
            conn.create_function("link_key", 1, link_key, deterministic=True)
            conn.create_function("url_key", 1, url_key, deterministic=True)
            self.db = sqlite_utils.Database(conn)
            self._check_foreign(existed)
            if existed and not unchanged:
                self._check_intact()
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            # Checkpoints (WAL into the database file, then fsync) every ~40 MB instead of
            # every 4 MB: each one waits on the disk with the store locked, and a cold poll
            # of 50 entries writes ~0.3 MB. The file is cut back to 64 MB when larger.
            self.db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            self.db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            self.db.execute("PRAGMA foreign_keys = ON")
            # Statement journals in memory: inserting a poll's entries (one statement, with
            # triggers) spilled them to files in /var/tmp, ~600,000 writes in a cold pass of
            # 1,000 feeds, a third of the store's system time. Each holds one statement's
            # pages, a poll's at most.
            self.db.execute("PRAGMA temp_store = MEMORY")
            self._migrate()
        except sqlite3.OperationalError as exc:  # I/O, full, read-only, locked: not the file
            raise StoreError(database_problem(path, exc)) from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{path}: not a usable SQLite database ({exc}); not touching it"
            ) from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the database ({exc})") from None

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()
            self._stamp_clean_close()

    # -- schema -------------------------------------------------------------------------

    def _check_foreign(self, existed: bool) -> None:
        if not existed:
            return
        tables = set(self.db.table_names())
        if tables and "schema_version" not in tables:
            raise StoreError(
                f"{self.path}: this SQLite file belongs to something else "
                f"(tables: {', '.join(sorted(tables))}); refusing to use it"
            )

    def _check_intact(self) -> None:
        """Refuse a damaged file before anything writes to it (writing could spread the
        damage). A full read of the file, 1.7-3.7 s for 10,000 sources' 2.3 GB, so it is
        skipped for a file nothing touched since this program last closed it whole."""
        verdict = self.db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            details = [line for line in verdict.splitlines() if not line.startswith("***")]
            raise StoreError(
                f"{self.path}: the database is damaged ({(details or [verdict])[0]}); not "
                "touching it (restore a backup, or move it away to start afresh)"
            )

    def _beside(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def _file_stamp(self) -> str | None:
        """The database file's identity, size and time of change, when no write-ahead log
        is beside it (a log means another connection is open, or one was cut off)."""
        if self._beside("-wal").exists():
            return None
        stat = self.path.stat()
        return f"{stat.st_dev} {stat.st_ino} {stat.st_size} {stat.st_mtime_ns}\n"

    def _stamp_clean_close(self) -> None:
        """After the last connection closed (SQLite then folds the log into the file and
        removes it), note the file as it is: the next open need not read it all again."""
        with suppress(OSError):
            if (stamp := self._file_stamp()) is not None:
                write_atomic(self._beside(CLEAN_CLOSE), stamp.encode(), only_if_changed=False)

    def _closed_cleanly(self) -> bool:
        """True when the file is as this program left it at a clean close. The note is
        used once: removed before anything writes, so a crash from here on leaves none."""
        try:
            noted = self._beside(CLEAN_CLOSE).read_text(encoding="ascii")
            self._beside(CLEAN_CLOSE).unlink()
            return noted == self._file_stamp()
        except (OSError, UnicodeError):
            return False

    def _migrate(self) -> None:
        with self.transaction():
            self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self.db.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer aggregator (schema {current}, "
                    f"this one knows {SCHEMA_VERSION}); upgrade aggregator"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in statements(MIGRATIONS[version]):
                    self.db.execute(statement)
                self.db.execute("INSERT INTO schema_version (version) VALUES (?)", [version])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error. SQLite's own errors (disk
        full, read-only, locked) come out as one StoreError that says which."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(database_problem(self.path, exc)) from exc
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException as exc:
                with suppress(sqlite3.Error):  # SQLite may have rolled back already (full)
                    self.db.execute("ROLLBACK")
                # The file or the disk, not a bug (a broken constraint stays an IntegrityError).
                if isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError:
                    raise StoreError(database_problem(self.path, exc)) from exc
                raise

    def integrity_check(self) -> str:
        """SQLite's verdict on the whole file: "ok", or what is wrong (damage that SQLite
        meets before it can check comes back as its error, not raised)."""
        with self._lock:
            try:
                return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])
            except sqlite3.DatabaseError as exc:
                return str(exc)

    # -- sources --------------------------------------------------------------------------

    def sync_sources(self, configured: Iterable[tuple[str, str]]) -> None:
        """Make a row for every configured (name, url); a changed url resets its HTTP state."""
        with self.transaction():
            for name, url in configured:
                row = self.db.execute("SELECT url FROM sources WHERE name = ?", [name]).fetchone()
                if row is None:
                    self.db.execute("INSERT INTO sources (name, url) VALUES (?, ?)", [name, url])
                elif row[0] != url:
                    self.db.execute(
                        "UPDATE sources SET url = ?, current_url = NULL, etag = NULL, "
                        "last_modified = NULL, body_hash = NULL WHERE name = ?",
                        [url, name],
                    )

    def source_state(self, name: str) -> SourceState | None:
        states = self.source_states([name])
        return states[0] if states else None

    def source_states(self, names: Sequence[str] | None = None) -> list[SourceState]:
        sql = (
            "SELECT s.*, (SELECT count(*) FROM entries e WHERE e.source = s.name) AS n "
            "FROM sources s"
        )
        params: list[Any] = []
        if names is not None:
            sql += f" WHERE s.name IN ({', '.join('?' for _ in names)})"
            params = list(names)
        with self._lock:
            rows = list(self.db.query(sql + " ORDER BY s.name", params))
        return [source_state(row) for row in rows]

    # -- when sources are polled (the daemon's job store, aggregator/service/source_jobs.py) --

    def due_polls(self, now: datetime, wanted: Callable[[str], bool]) -> list[tuple[str, datetime]]:
        """(name, next poll) of every source due at `now` that `wanted` accepts, the longest
        overdue first. The scheduler asks this at every wakeup while thousands of due
        sources wait for a worker: those it skips cost a row read, not a parsed date."""
        with self._lock:
            rows = self.db.execute(
                "SELECT name, next_poll FROM sources WHERE next_poll <= ? ORDER BY next_poll",
                [iso(now)],
            ).fetchall()
        return [(name, _moment(text)) for name, text in rows if wanted(name)]

    def earliest_poll(self, wanted: Callable[[str], bool]) -> datetime | None:
        """The first next poll, in time, of a source `wanted` accepts; None: there is none.
        Rows are read in order until one is accepted, so sources skipped are cheap."""
        with self._lock:
            cursor = self.db.execute(
                "SELECT name, next_poll FROM sources WHERE next_poll IS NOT NULL ORDER BY next_poll"
            )
            try:
                for name, text in cursor:
                    if wanted(name):
                        return _moment(text)
            finally:
                cursor.close()
        return None

    def scheduled_polls(self, names: Sequence[str] | None = None) -> dict[str, datetime]:
        """Each source's next poll (of those `names`, or all), in time order; sources that
        will not be polled again (gone) are left out."""
        sql = "SELECT name, next_poll FROM sources WHERE next_poll IS NOT NULL"
        found: list[tuple[str, str]] = []
        with self._lock:
            if names is None:
                found = self.db.execute(sql + " ORDER BY next_poll").fetchall()
            else:
                for chunk, marks in in_chunks(names):
                    found += self.db.execute(f"{sql} AND name IN ({marks})", chunk).fetchall()
                found.sort(key=lambda row: row[1])
        return {name: _moment(text) for name, text in found}

    def schedule_polls(self, times: Mapping[str, datetime | None]) -> None:
        """Set several sources' next poll in one transaction (None: not polled again)."""
        if not times:
            return
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE sources SET next_poll = ? WHERE name = ?",
                [(iso(when), name) for name, when in times.items()],
            )

    def note_poll_failure(self, name: str, error: str, when: datetime) -> None:
        """A poll failed on our side (database, disk, a bug), not the source's: show why on
        the source and poll it again at `when`."""
        with self.transaction():
            self.db.execute(
                "UPDATE sources SET status = ?, error = ?, next_poll = ? WHERE name = ?",
                [SourceStatus.ERROR, error, iso(when), name],
            )

    # -- entries --------------------------------------------------------------------------

    def full_text_of(self, link: str | None) -> str | None:
        """The article fetched for any entry with this canonical link (any source's)."""
        if link is None:
            return None
        with self._lock:
            row = self.db.execute(
                "SELECT full_text FROM entries WHERE canonical_link = ? "
                "AND full_text IS NOT NULL LIMIT 1",
                [link],
            ).fetchone()
        return row[0] if row else None

    def known_entries(self, source: str, identities: Sequence[str]) -> dict[str, KnownEntry]:
        """The stored hash of each identity of `source` that is already stored."""
        known: dict[str, KnownEntry] = {}
        with self._lock:
            for chunk, marks in in_chunks(identities):
                rows = self.db.execute(
                    f"SELECT identity, id, content_hash FROM entries "
                    f"WHERE source = ? AND identity IN ({marks})",
                    [source, *chunk],
                ).fetchall()
                for identity, row_id, content_hash in rows:
                    known[identity] = KnownEntry(row_id, content_hash)
        return known

    def save_poll(
        self,
        state: SourceState,
        new: Sequence[tuple[Entry, str, str]],
        changed: Sequence[tuple[Entry, str]],
        now: datetime,
        *,
        respelled: Sequence[tuple[Entry, str]] = (),
        full_texts: Mapping[str, str] | None = None,
    ) -> None:
        """Store one poll in one transaction: new entries (entry, hash, document name),
        changed ones (entry, hash), the new hashes of entries only spelled differently
        (entry, hash), the articles fetched for new entries (by identity), and the source's
        new state."""
        full_texts = full_texts or {}
        stamp = iso(now)
        rows = []
        for entry, content_hash, document in new:
            date = entry.published or entry.updated or now
            rows.append(
                (
                    entry.source,
                    entry.identity,
                    entry.link,
                    canonical_link(entry.link),
                    entry.title,
                    entry.author,
                    iso(entry.published),
                    iso(entry.updated),
                    iso(date),
                    entry.content,
                    entry.image,
                    json.dumps(list(entry.categories), ensure_ascii=False),
                    content_hash,
                    stamp,
                    document,
                    full_texts.get(entry.identity),
                )
            )
        with self.transaction():
            # An article link is one the source has once (migration 6): decided here for the
            # new rows, so that they are written once, not inserted and then updated.
            links = Counter(row[3] for row in rows if row[3])
            stored = self._link_counts(state.name, list(links))
            rows = [
                (*row, row[3] if links[row[3]] == 1 and not stored.get(row[3]) else None)
                for row in rows
            ]
            # One statement for all new rows (sqlite3's executemany): a cold feed has 50.
            self.db.conn.executemany(
                "INSERT INTO entries (source, identity, link, canonical_link, title, author, "
                "published, updated, date, content, image, categories, content_hash, "
                "first_seen, document, full_text, article) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (source, identity) DO NOTHING",
                rows,
            )
            for entry, content_hash in changed:
                # The date an entry was first published under stays; first_seen never moves.
                link = canonical_link(entry.link)
                self.db.execute(
                    "UPDATE entries SET link = ?, canonical_link = ?, title = ?, author = ?, "
                    "updated = ?, content = ?, image = ?, categories = ?, content_hash = ?, "
                    "last_changed = ?, version = version + 1, "
                    "article = CASE WHEN canonical_link IS ? THEN article END "
                    "WHERE source = ? AND identity = ?",
                    [
                        entry.link,
                        link,
                        entry.title,
                        entry.author,
                        iso(entry.updated),
                        entry.content,
                        entry.image,
                        json.dumps(list(entry.categories), ensure_ascii=False),
                        content_hash,
                        stamp,
                        link,
                        entry.source,
                        entry.identity,
                    ],
                )
            self.db.conn.executemany(
                "UPDATE entries SET content_hash = ? WHERE source = ? AND identity = ?",
                [(digest, entry.source, entry.identity) for entry, digest in respelled],
            )
            # Links now shared with entries stored before, and the changed entries' links.
            moved = set(stored) | {canonical_link(e.link) for e, _ in changed}
            self._mark_articles(state.name, sorted(filter(None, moved)))
            self._write_state(state)

    def _link_counts(self, source: str, links: Sequence[str]) -> dict[str, int]:
        """How many stored entries of `source` have each of these canonical links."""
        counts: dict[str, int] = {}
        for chunk, marks in in_chunks(links):
            counts.update(
                self.db.execute(
                    f"SELECT canonical_link, count(*) FROM entries WHERE canonical_link "
                    f"IN ({marks}) AND +source = ? GROUP BY canonical_link",
                    [*chunk, source],
                ).fetchall()
            )
        return counts

    def _mark_articles(self, source: str, links: Sequence[str]) -> None:
        """Set `article` on the entries of `source` with these canonical links: the link
        when it is theirs alone in that source, else nothing (see migration 6). Only rows
        whose value moves are written, so that an unchanged poll owes no document."""
        # `+source`: look rows up by link (a few each), not by source (all of its entries).
        decided = (
            "CASE WHEN (SELECT count(*) FROM entries o WHERE o.canonical_link = "
            "entries.canonical_link AND +o.source = entries.source) = 1 THEN canonical_link END"
        )
        for chunk, marks in in_chunks(links):
            self.db.execute(
                f"UPDATE entries SET article = {decided} WHERE +source = ? "
                f"AND canonical_link IN ({marks}) AND article IS NOT {decided}",
                [source, *chunk],
            )

    def entry_texts(self, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """The stored title and content of these entries (ids)."""
        texts: dict[int, tuple[str, str]] = {}
        with self._lock:
            for chunk, marks in in_chunks(ids):
                for row_id, title, content in self.db.execute(
                    f"SELECT id, title, content FROM entries WHERE id IN ({marks})", chunk
                ):
                    texts[row_id] = (title, content)
        return texts

    def save_state(self, state: SourceState) -> None:
        with self.transaction():
            self._write_state(state)

    def save_states(self, states: Iterable[SourceState]) -> None:
        """Several sources' states in one transaction: a pass of 304s commits once per
        batch instead of once per source."""
        with self.transaction():
            for state in states:
                self._write_state(state)

    def _write_state(self, state: SourceState) -> None:
        self.db.execute(
            "UPDATE sources SET current_url = ?, title = ?, link = ?, etag = ?, "
            "last_modified = ?, body_hash = ?, status = ?, http_status = ?, error = ?, "
            "consecutive_errors = ?, last_fetch = ?, last_success = ?, next_poll = ?, ttl = ? "
            "WHERE name = ?",
            [
                state.current_url,
                state.title,
                state.link,
                state.http.etag,
                state.http.last_modified,
                state.http.body_hash,
                state.status,
                state.http_status,
                state.error,
                state.consecutive_errors,
                iso(state.last_fetch),
                iso(state.last_success),
                iso(state.next_poll),
                state.ttl,
                state.name,
            ],
        )

    def owed_documents(self, limit: int = 1000, after: int = 0) -> DocumentsOwed:
        """What documents the entries stored or changed since their last writing owe (those
        with ids above `after`): their own, unless another source's entry of the same
        article comes first (see migration 6); then theirs is removed, and the first one's
        removes the others'."""
        with self._lock:
            rows = list(
                self.db.query(
                    f"{OWED_SELECT} WHERE e.id IN (SELECT id FROM documents_pending "
                    "WHERE id > ? ORDER BY id LIMIT ?) ORDER BY e.id",
                    [after, limit],
                )
            )
            return self._owed(rows)

    def note_document_failures(self, failed: Sequence[tuple[int, str]]) -> None:
        """Entries (ids) whose documents could not be written, with why: still owed."""
        if not failed:
            return
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE documents_pending SET error = ? WHERE id = ?",
                [(error, entry_id) for entry_id, error in failed],
            )

    def document_failures(self) -> tuple[int, str | None]:
        """How many documents are owed after failing, and one reason."""
        with self._lock:
            count, error = self.db.execute(
                "SELECT count(*), min(error) FROM documents_pending WHERE error IS NOT NULL"
            ).fetchone()
        return int(count), error

    def all_documents(self, batch: int = 1000) -> Iterator[DocumentsOwed]:
        """Every entry's document, in batches, for `render --all`."""
        last = 0
        while True:
            with self._lock:
                rows = list(
                    self.db.query(
                        f"{OWED_SELECT} WHERE e.id > ? ORDER BY e.id LIMIT ?", [last, batch]
                    )
                )
                if not rows:
                    return
                owed = self._owed(rows)
            yield owed
            last = rows[-1]["id"]

    def _owed(self, rows: Sequence[dict[str, Any]]) -> DocumentsOwed:
        write = [
            OwedDocument(row["id"], row["source"], row["document"])
            for row in rows
            if not row["superseded"]
        ]
        remove = [(row["id"], row["document"]) for row in rows if row["superseded"]]
        firsts = {
            row["article"]: row["id"] for row in rows if row["article"] and not row["superseded"]
        }
        for chunk, marks in in_chunks(list(firsts)):
            # The others of each article (one query for the batch, not one per entry).
            remove += [
                (firsts[article], name)
                for article, entry_id, name in self.db.execute(
                    f"SELECT article, id, document FROM entries WHERE article IN ({marks})", chunk
                )
                if entry_id != firsts[article]
            ]
        return DocumentsOwed(write, remove, [Listed(row["id"], row["stamp"]) for row in rows])

    def mark_documents(self, written: Sequence[Listed]) -> None:
        """Entries whose documents are now safely on disk, as they were listed: one owed
        anew since (changed while its document was written) stays owed."""
        if not written:
            return
        with self.transaction():
            self.db.conn.executemany(
                "DELETE FROM documents_pending WHERE id = ? AND stamp IS ?", written
            )

    def newest_entries(self, limit: int) -> list[StoredEntry]:
        """The newest `limit` entries over all sources, one per article: of the sources
        carrying an article, the one whose name sorts first (see migration 6)."""
        with self._lock:
            rows = list(
                self.db.query(
                    f"{ENTRY_SELECT} WHERE e.article IS NULL OR NOT EXISTS ("
                    "SELECT 1 FROM entries o WHERE o.article = e.article "
                    "AND o.source < e.source) ORDER BY e.date DESC, e.id DESC LIMIT ?",
                    [limit],
                )
            )
        return [stored_entry(row) for row in rows]

    def entries_by_id(self, ids: Sequence[int]) -> list[StoredEntry]:
        """The entries `ids` that are still stored, in the order of their ids."""
        with self._lock:
            return reader.entries_by_id(self.db.conn, ids)

    def count_entries(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def entries_signatures(self) -> dict[str, tuple[Any, ...]]:
        """What each source's entries look like in a group feed, cheaply: when its entries
        last moved (see migration 4) and the title and address their items show."""
        with self._lock:
            rows = self.db.execute(
                "SELECT name, entries_moved, title, coalesce(current_url, url) FROM sources"
            ).fetchall()
        return {row[0]: tuple(row[1:]) for row in rows}

    def entries_clock(self) -> int:
        """A number that moves whenever any entry is stored, changed or deleted (migration 4)."""
        with self._lock:
            return int(self.db.execute("SELECT value FROM entries_clock").fetchone()[0])

    def update_search_index(self, limit: int | None = None) -> int:
        """Index entries stored or changed since the last call, SEARCH_BATCH per transaction
        (so a writer waits at most one batch), at most `limit` of them; return how many."""
        done = 0
        while limit is None or done < limit:
            batch = SEARCH_BATCH if limit is None else min(SEARCH_BATCH, limit - done)
            with self.transaction():
                ids = [
                    row[0]
                    for row in self.db.execute(
                        "SELECT id FROM search_pending ORDER BY id LIMIT ?", [batch]
                    )
                ]
                if not ids:
                    break
                marks = ", ".join("?" for _ in ids)
                self.db.execute(f"DELETE FROM entries_search WHERE rowid IN ({marks})", ids)
                self.db.execute(
                    "INSERT INTO entries_search (rowid, title, body) "
                    f"SELECT id, title, entry_text(content) FROM entries WHERE id IN ({marks})",
                    ids,
                )
                self.db.execute(f"DELETE FROM search_pending WHERE id IN ({marks})", ids)
            done += len(ids)
        return done

    def search_entries(self, text: str, limit: int = 20) -> list[StoredEntry]:
        """Entries whose title or text contains every word of `text`, newest first.

        Words of three characters or more use the trigram index; shorter ones (a two-character
        Chinese word) cannot, so they fall back to LIKE over the indexed text. Entries not yet
        indexed are indexed first, so a search always sees everything stored."""
        self.update_search_index()
        conditions: list[str] = []
        params: list[Any] = []
        long_words = [word for word in text.split() if len(word) >= 3]
        if long_words:
            conditions.append(
                "e.id IN (SELECT rowid FROM entries_search WHERE entries_search MATCH ?)"
            )
            params.append(" AND ".join('"' + word.replace('"', '""') + '"' for word in long_words))
        for word in (word for word in text.split() if len(word) < 3):
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"
            conditions.append(
                "e.id IN (SELECT rowid FROM entries_search WHERE title LIKE ? ESCAPE '\\' "
                "OR body LIKE ? ESCAPE '\\')"
            )
            params += [pattern, pattern]
        if not conditions:
            return []
        with self._lock:
            rows = list(
                self.db.query(
                    f"{ENTRY_SELECT} WHERE {' AND '.join(conditions)} "
                    "ORDER BY e.date DESC, e.id DESC LIMIT ?",
                    [*params, limit],
                )
            )
        return [stored_entry(row) for row in rows]

    def prune_source(self, source: str, keep: int) -> list[str]:
        """Delete all but the newest `keep` entries of `source` (by date, then arrival);
        return the document names of the deleted ones so their files can go too."""
        with self.transaction():
            rows = self.db.execute(
                "SELECT id, document FROM entries WHERE source = ? "
                "ORDER BY date DESC, id DESC LIMIT -1 OFFSET ?",
                [source, keep],
            ).fetchall()
            self.db.conn.executemany(
                "DELETE FROM entries WHERE id = ?", [(row_id,) for row_id, _ in rows]
            )
        return [document for _, document in rows]

    def orphaned_documents(self) -> list[str]:
        """The documents of deleted entries not yet known removed (see migration 12); a
        name an entry stored since owns again is no orphan, and is dropped from the list."""
        with self._lock:
            if self.db.execute("SELECT 1 FROM documents_orphaned LIMIT 1").fetchone() is None:
                return []
            with self.transaction():
                self.db.execute(
                    "DELETE FROM documents_orphaned WHERE name IN (SELECT document FROM entries)"
                )
                return [name for (name,) in self.db.execute("SELECT name FROM documents_orphaned")]

    def forget_orphans(self, names: Sequence[str]) -> None:
        """Documents of deleted entries now removed from disk."""
        if names:
            with self.transaction():
                self.db.conn.executemany(
                    "DELETE FROM documents_orphaned WHERE name = ?", [(name,) for name in names]
                )

    def delete_source(self, name: str) -> list[str]:
        """Forget a source and every entry it brought; return their document names."""
        with self.transaction():
            rows = self.db.execute(
                "SELECT document FROM entries WHERE source = ?", [name]
            ).fetchall()
            self.db.execute("DELETE FROM entries WHERE source = ?", [name])
            self.db.execute("DELETE FROM sources WHERE name = ?", [name])
        return [document for (document,) in rows]

    # -- mirrored images (aggregator/outputs/images.py) --------------------------------------------

    def image_outcomes(self, urls: Sequence[str]) -> dict[str, ImageOutcome]:
        """What the last try to mirror each of these image URLs gave, for those tried."""
        found: dict[str, ImageOutcome] = {}
        with self._lock:
            for chunk, marks in in_chunks(urls):
                rows = self.db.execute(
                    f"SELECT url, name, error, checked FROM images WHERE url IN ({marks})", chunk
                ).fetchall()
                for url, name, error, checked in rows:
                    found[url] = ImageOutcome(url, name, error, parse_iso(checked))
        return found

    def save_image_outcomes(self, outcomes: Sequence[ImageOutcome]) -> None:
        """Remember how these image URLs went (replacing what an earlier try gave)."""
        if not outcomes:
            return
        with self.transaction():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO images (url, name, error, checked) VALUES (?, ?, ?, ?)",
                [(o.url, o.name, o.error, iso(o.checked)) for o in outcomes],
            )


def _moment(text: str) -> datetime:
    moment = parse_iso(text)
    assert moment is not None  # only called on columns known not to be NULL
    return moment


def in_chunks(values: Sequence[Any], size: int = 500) -> Iterator[tuple[list[Any], str]]:
    """`values` in lists of at most `size`, each with its `?, ?, …` for an IN clause:
    SQLite caps the parameters of one statement."""
    for start in range(0, len(values), size):
        chunk = list(values[start : start + size])
        yield chunk, ", ".join("?" for _ in chunk)


def database_problem(path: Path, exc: sqlite3.Error) -> str:
    """One line for a user out of SQLite's error code."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    if code.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        return f"{path}: cannot write the database ({exc}); is the disk full?"
    if code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return f"{path}: cannot write the database ({exc}); check the folder's permissions"
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"{path}: the database is locked by another process ({exc})"
    if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return f"{path}: the database is damaged ({exc}); not touching it"
    return f"{path}: database error ({exc})"
