"""Storage: schema, dedupe per (source, identity), changes, and refusing foreign files."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import StoreError
from aggregator.models import Entry
from aggregator.store.database import Store
from aggregator.store.reader import newest_entries_of, open_reader
from aggregator.store.rows import SourceState, canonical_link
from aggregator.store.schema import MIGRATIONS, entry_text, link_key, statements, url_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def entry(identity: str, title: str = "T", link: str | None = None, source: str = "a") -> Entry:
    return Entry(source, identity, link, title, None, None, None, "<p>c</p>", None)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "db.sqlite")
    store.sync_sources([("a", "http://x.test/a"), ("b", "http://x.test/b")])
    yield store
    store.close()


def test_schema_is_versioned_and_wal(store: Store) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("SELECT max(version) FROM schema_version").fetchone()[0] >= 1
    assert store.integrity_check() == "ok"


def test_reopening_migrates_nothing_twice(tmp_path: Path) -> None:
    Store(tmp_path / "db.sqlite").close()
    again = Store(tmp_path / "db.sqlite")
    versions = [r[0] for r in again.db.execute("SELECT version FROM schema_version")]
    assert versions == sorted(set(versions))
    again.close()


def test_entry_is_stored_once_per_source_and_identity(store: Store) -> None:
    state = SourceState("a", "http://x.test/a")
    store.save_poll(state, [(entry("1"), "h1", "d1.md")], [], NOW)
    store.save_poll(state, [(entry("1"), "h1", "d1.md")], [], NOW)  # a replay changes nothing
    assert store.count_entries() == 1
    assert store.known_entries("a", ["1", "2"]).keys() == {"1"}
    assert store.known_entries("b", ["1"]) == {}


def test_changed_entry_updates_row_and_keeps_first_seen(store: Store) -> None:
    state = SourceState("a", "http://x.test/a")
    store.save_poll(state, [(entry("1"), "h1", "d1.md")], [], NOW)
    store.mark_documents(store.owed_documents().done)
    assert store.owed_documents().write == []
    later = datetime(2026, 2, 1, tzinfo=UTC)
    store.save_poll(state, [], [(entry("1", title="New"), "h2")], later)
    (owed,) = store.owed_documents().write
    (pending,) = store.entries_by_id([owed.id])
    assert pending.entry.title == "New"
    assert pending.first_seen == NOW
    assert pending.document == "d1.md"
    row = store.db.execute("SELECT version, last_changed FROM entries").fetchone()
    assert row[0] == 2 and row[1].startswith("2026-02-01")


def test_entry_without_date_keeps_its_first_fetch_time(store: Store) -> None:
    state = SourceState("a", "http://x.test/a")
    store.save_poll(state, [(entry("1"), "h1", "d1.md")], [], NOW)
    store.save_poll(state, [], [(entry("1", title="x"), "h2")], datetime(2027, 1, 1, tzinfo=UTC))
    (stored,) = store.newest_entries(10)
    assert stored.date == NOW


def test_same_article_from_two_sources_is_one_item_in_the_merged_feed(store: Store) -> None:
    store.save_poll(
        SourceState("a", "u"),
        [(entry("1", link="https://news.example/story?utm_source=x#top"), "h", "a.md")],
        [],
        NOW,
    )
    store.save_poll(
        SourceState("b", "u"),
        [(entry("9", link="https://NEWS.example/story/", source="b"), "h", "b.md")],
        [],
        NOW,
    )
    newest = store.newest_entries(10)
    assert [s.entry.source for s in newest] == ["a"]
    assert store.count_entries() == 2
    # A group's feed keeps the article once, from the first source carrying it; each
    # source's own feed keeps it whatever other sources carry.
    # (Read as the parser processes read them, beside the store's own connection.)
    with contextlib.closing(open_reader(store.path)) as reader:
        assert [s.entry.identity for s in newest_entries_of(reader, ["a", "b"], 10)] == ["1"]
        assert [s.entry.identity for s in newest_entries_of(reader, ["b"], 10)] == ["9"]
        assert [s.entry.identity for s in newest_entries_of(reader, ["a"], 10)] == ["1"]


def test_an_entry_changed_while_its_document_is_written_stays_owed(store: Store) -> None:
    """The daemon writes documents while it polls: a change stored between the listing of
    what is owed and the marking of it written is owed again, not lost."""
    state = SourceState("a", "http://x.test/a")
    store.save_poll(state, [(entry("1"), "h1", "d1.md"), (entry("2"), "h2", "d2.md")], [], NOW)
    listed = store.owed_documents()
    store.save_poll(state, [], [(entry("1", title="New"), "h3")], NOW)
    store.mark_documents(listed.done)
    (owed,) = store.owed_documents().write
    assert owed.document == "d1.md"
    # Written from the new text, it is settled.
    store.mark_documents(store.owed_documents().done)
    assert store.owed_documents().done == []


def test_an_article_whose_first_entry_goes_while_documents_are_written_keeps_one(
    store: Store,
) -> None:
    """The listing says b's document of an article goes, a's comes first; a's entry is
    pruned before the marking. b's entry is owed its document again, and stays so."""
    link = "https://news.example/story"
    store.save_poll(SourceState("a", "u"), [(entry("1", link=link), "h", "a.md")], [], NOW)
    store.save_poll(
        SourceState("b", "u"), [(entry("9", link=link, source="b"), "h", "b.md")], [], NOW
    )
    listed = store.owed_documents()
    assert [owed.document for owed in listed.write] == ["a.md"]
    assert {name for _, name in listed.remove} == {"b.md"}
    assert store.prune_source("a", 0) == ["a.md"]
    store.mark_documents(listed.done)
    assert [owed.document for owed in store.owed_documents().write] == ["b.md"]


def test_a_rewrite_of_every_document_does_not_settle_one_owed_since(store: Store) -> None:
    """`render --all` lists entries that owe nothing; one that changes before the marking
    stays owed."""
    state = SourceState("a", "http://x.test/a")
    store.save_poll(state, [(entry("1"), "h1", "d1.md")], [], NOW)
    store.mark_documents(store.owed_documents().done)
    (listed,) = store.all_documents()
    assert [done.stamp for done in listed.done] == [None]
    store.save_poll(state, [], [(entry("1", title="New"), "h2")], NOW)
    store.mark_documents(listed.done)
    assert [owed.document for owed in store.owed_documents().write] == ["d1.md"]


def test_canonical_link() -> None:
    assert canonical_link("https://E.org/a/?utm_medium=x&id=3#frag") == "http://e.org/a?id=3"
    assert canonical_link(None) is None


def test_a_transaction_that_fails_leaves_nothing(store: Store) -> None:
    state = SourceState("a", "http://x.test/a")
    with pytest.raises(sqlite3.IntegrityError):
        # Two new entries claiming one document name: the second insert fails.
        store.save_poll(
            state, [(entry("1"), "h", "same.md"), (entry("2"), "h", "same.md")], [], NOW
        )
    assert store.count_entries() == 0


def test_foreign_and_corrupt_files_are_refused_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="belongs to something else"):
        Store(foreign)
    assert foreign.read_bytes() == before

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database at all" * 100)
    before = corrupt.read_bytes()
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store(corrupt)
    assert corrupt.read_bytes() == before


def database_at(path: Path, version: int) -> sqlite3.Connection:
    """A database as a release at schema `version` left it, with source "a"."""
    conn = sqlite3.connect(path)
    for name, function in (
        ("entry_text", entry_text),
        ("link_key", link_key),
        ("url_key", url_key),
    ):
        conn.create_function(name, 1, function)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for step in range(1, version + 1):
        for statement in statements(MIGRATIONS[step]):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?)", [step])
    conn.execute("INSERT INTO sources (name, url) VALUES ('a', 'http://x.test/a')")
    return conn


def test_a_schema_4_database_keeps_which_documents_are_owed(tmp_path: Path) -> None:
    """Migration 5 moves "document not written yet" from `entries.document_hash` to its
    own table: what was owed stays owed, what was written is not written again."""
    path = tmp_path / "v4.db"
    conn = database_at(path, 4)
    for identity, written in (("done", "abc"), ("owed", None)):
        conn.execute(
            "INSERT INTO entries (source, identity, title, date, content, content_hash, "
            "first_seen, document, document_hash) VALUES ('a', ?, 'T', "
            "'2022-01-01T00:00:00.000000Z', '<p>x</p>', 'h', '2022-01-01T00:00:00.000000Z', "
            "?, ?)",
            [identity, f"{identity}.md", written],
        )
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        assert [owed.document for owed in store.owed_documents().write] == ["owed.md"]
        store.mark_documents(store.owed_documents().done)
        assert store.owed_documents().write == []
        changed = [(entry("done", "New"), "h2")]
        store.save_poll(SourceState("a", "http://x.test/a"), [], changed, NOW)
        (owed,) = store.owed_documents().write
        assert [stored.entry.title for stored in store.entries_by_id([owed.id])] == ["New"]
    finally:
        store.close()


def test_a_schema_10_database_keeps_its_owed_documents_and_stamps_them_from_then_on(
    tmp_path: Path,
) -> None:
    """Migration 11 stamps rows owed anew; the rows owed before it have none, and are
    settled by their marking as before."""
    path = tmp_path / "v10.db"
    conn = database_at(path, 10)
    for identity in ("1", "2"):
        conn.execute(
            "INSERT INTO entries (source, identity, title, date, content, content_hash, "
            "first_seen, document) VALUES ('a', ?, 'T', '2022-01-01T00:00:00.000000Z', "
            "'<p>x</p>', 'h', '2022-01-01T00:00:00.000000Z', ?)",
            [identity, f"d{identity}.md"],
        )
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        listed = store.owed_documents()
        assert [
            (owed.document, done.stamp)
            for owed, done in zip(listed.write, listed.done, strict=True)
        ] == [
            ("d1.md", None),
            ("d2.md", None),
        ]
        store.save_poll(SourceState("a", "http://x.test/a"), [], [(entry("2", "New"), "h2")], NOW)
        store.mark_documents(listed.done)
        (owed,) = store.owed_documents().write
        assert owed.document == "d2.md"
        store.mark_documents(store.owed_documents().done)
        assert store.owed_documents().done == []
    finally:
        store.close()


def test_the_documents_of_deleted_entries_are_recorded_until_removed(tmp_path: Path) -> None:
    """Pruning (and purging) records the deleted entries' documents in the same
    transaction (migration 12, here from a schema-11 database): a run stopped before the
    files went leaves the next one the list. A name stored again since is no orphan."""
    path = tmp_path / "v11.db"
    conn = database_at(path, 11)
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        state = SourceState("a", "http://x.test/a")
        new = [(entry(str(n)), f"h{n}", f"d{n}.md") for n in range(4)]
        store.save_poll(state, new, [], NOW)
        assert store.orphaned_documents() == []
        assert sorted(store.prune_source("a", 1)) == ["d0.md", "d1.md", "d2.md"]
        assert sorted(store.orphaned_documents()) == ["d0.md", "d1.md", "d2.md"]
        store.save_poll(state, [(entry("1"), "h1", "d1.md")], [], NOW)  # back in the feed
        assert sorted(store.orphaned_documents()) == ["d0.md", "d2.md"]
        store.forget_orphans(["d0.md", "d2.md"])
        assert store.orphaned_documents() == []
    finally:
        store.close()


def closed_store(path: Path) -> Path:
    """A database of 200 entries of 3 KB, closed cleanly; returns the note of that close."""
    store = Store(path)
    store.sync_sources([("a", "http://x.test/a")])
    state = store.source_state("a")
    assert state is not None
    content = "<p>" + "正文" * 1500 + "</p>"
    new = [
        (Entry("a", str(n), None, "T", None, None, None, content, None), f"h{n}", f"d{n}.md")
        for n in range(200)
    ]
    store.save_poll(state, new, [], NOW)
    store.close()
    note = path.with_name(path.name + ".closed")
    assert note.exists() and not path.with_name(path.name + "-wal").exists()
    return note


def damage_a_middle_page(path: Path, keep_time: bool) -> None:
    """A page of entries' content overwritten in place (same file, same size)."""
    before = path.stat()
    with path.open("r+b") as file:
        file.seek(before.st_size // 2 // 4096 * 4096)
        file.write(b"\xff" * 4096)
    later = before.st_mtime_ns + (0 if keep_time else 1_000_000_000)
    os.utime(path, ns=(before.st_atime_ns, later))


def test_a_file_changed_since_its_clean_close_is_read_whole_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    note = closed_store(path)
    damage_a_middle_page(path, keep_time=False)
    with pytest.raises(StoreError, match="the database is damaged"):
        Store(path)
    assert not note.exists()  # used once: the next open checks again
    with pytest.raises(StoreError, match="the database is damaged"):
        Store(path)


def test_a_file_as_left_at_its_clean_close_is_not_read_whole_again(tmp_path: Path) -> None:
    """PRAGMA quick_check reads the whole file (1.7-3.7 s for 10,000 sources' 2.3 GB) at
    every command. After a clean close the file's identity, size and time are noted, and an
    open that finds them unchanged skips it: damage that keeps all three (nothing but the
    disk itself does that) is then left for SQLite to report when it reads the page."""
    path = tmp_path / "db.sqlite"
    note = closed_store(path)
    damage_a_middle_page(path, keep_time=True)
    store = Store(path)  # not read whole: the damage is not seen here
    assert not note.exists()  # consumed before anything writes
    assert store.integrity_check() != "ok"
    store.db.conn.close()  # not Store.close(): a cut-off run leaves no note
    with pytest.raises(StoreError, match="the database is damaged"):
        Store(path)
