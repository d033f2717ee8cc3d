"""Full-text search over stored entries (FTS5, trigram): Chinese words inside Chinese text,
short words through LIKE, the index kept in step by triggers, and migrating old databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import FeedServer, run_cli
from feedworld import rsshub_feed, rsshub_item

from aggregator.models import Entry
from aggregator.store.database import Store
from aggregator.store.rows import SourceState
from aggregator.store.schema import MIGRATIONS, SCHEMA_VERSION

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def entry(identity: str, title: str, content: str, days: int = 0, source: str = "a") -> Entry:
    day = NOW - timedelta(days=days)
    return Entry(source, identity, None, title, None, day, None, content, None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "db.sqlite")
    store.sync_sources([("a", "http://x.test/a")])
    entries = [
        entry("old", "俄罗斯集结部队", "<p>美国总统拜登强调果断回应</p>", days=3),
        entry("mid", "Python 3.13 released", "<p>The <b>free-threaded</b> build…</p>", days=2),
        entry("new", "安理会将召开会议", "<p>乌克兰问题 <img src='http://x/a.jpg'></p>", days=1),
        entry("odd", "100% sure_thing", '<p>say "quoted" words</p>', days=4),
    ]
    rows = [(e, e.identity, f"{e.identity}.md") for e in entries]
    store.save_poll(SourceState("a", "http://x.test/a"), rows, [], NOW)
    yield store
    store.close()


def found(store: Store, text: str) -> list[str]:
    return [stored.entry.identity for stored in store.search_entries(text)]


def test_chinese_word_is_found_inside_chinese_text(store: Store) -> None:
    assert found(store, "集结部") == ["old"]  # in a title, no spaces around it
    assert found(store, "果断回应") == ["old"]  # in the content's text
    assert found(store, "乌克兰") == ["new"]


def test_words_shorter_than_three_characters_fall_back_to_like(store: Store) -> None:
    assert found(store, "拜登") == ["old"]
    assert found(store, "会议 安理") == ["new"]  # a trigram word and a short one together


def test_results_are_newest_first_and_every_word_must_match(store: Store) -> None:
    assert found(store, "e") == ["mid", "odd"]
    assert found(store, "python released") == ["mid"]
    assert found(store, "python 乌克兰") == []


def test_search_is_over_text_not_markup(store: Store) -> None:
    assert found(store, "free-threaded") == ["mid"]
    assert found(store, "img") == []
    assert found(store, "x/a.jpg") == []


def test_search_is_case_insensitive_for_latin_letters(store: Store) -> None:
    assert found(store, "PYTHON") == ["mid"]


def test_query_syntax_characters_are_taken_literally(store: Store) -> None:
    assert found(store, '"quoted"') == ["odd"]
    assert found(store, "100%") == ["odd"]
    assert found(store, "%") == ["odd"]
    assert found(store, "3_") == []  # `_` is not a LIKE wildcard here ("3." is in mid)
    assert found(store, "_t") == ["odd"]
    assert found(store, "AND") == []
    assert found(store, "   ") == []


def test_index_follows_changes_and_deletions(store: Store) -> None:
    changed = entry("mid", "Rust 1.80 released", "<p>cargo</p>", days=2)
    store.save_poll(SourceState("a", "http://x.test/a"), [], [(changed, "h2")], NOW)
    assert found(store, "python") == []
    assert found(store, "cargo") == ["mid"]
    store.prune_source("a", keep=2)  # leaves "new" and "mid"
    assert found(store, "集结部") == []
    assert found(store, "released") == ["mid"]
    store.delete_source("a")
    assert found(store, "released") == []
    assert store.db.execute("SELECT count(*) FROM entries_search").fetchone()[0] == 0


def test_a_schema_1_database_is_migrated_and_its_entries_indexed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[1].split(";"):
        conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO sources (name, url) VALUES ('a', 'http://x.test/a')")
    conn.execute(
        "INSERT INTO entries (source, identity, title, date, content, content_hash, "
        "first_seen, document) VALUES ('a', '1', '旧标题', '2022-01-01T00:00:00.000000Z', "
        "'<p>数据库迁移以后也能找到</p>', 'h', '2022-01-01T00:00:00.000000Z', '1.md')"
    )
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        assert found(store, "迁移以后") == ["1"]
        versions = [row[0] for row in store.db.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        # Its document was never marked written, so it is still owed (migration 5).
        owed = [item.id for item in store.owed_documents().write]
        assert [stored.entry.identity for stored in store.entries_by_id(owed)] == ["1"]
    finally:
        store.close()


def test_other_sqlite_clients_can_still_delete_entries(store: Store) -> None:
    """Deleting must not need our SQL function, which only our connections define."""
    store.close()
    conn = sqlite3.connect(store.path)
    conn.execute("DELETE FROM entries WHERE identity = 'old'")
    conn.execute("UPDATE entries SET document_hash = 'x'")
    conn.commit()
    conn.close()
    again = Store(store.path)
    try:
        assert found(again, "集结部") == []
        assert found(again, "乌克兰") == ["new"]
    finally:
        again.close()


def test_search_command(tmp_path: Path, feed_server: FeedServer) -> None:
    items = [
        rsshub_item(1, title="安理会将于31日召开会议"),
        rsshub_item(2, title="Python 新版本发布", body="<p>free-threaded build</p>"),
    ]
    feed_server.serve("/news", rsshub_feed(items))
    config = tmp_path / "config.yaml"
    config.write_text(f"sources:\n  - name: news\n    url: {feed_server.url('/news')}\n")
    assert run_cli("update", "--config", str(config)).returncode == 0

    result = run_cli("search", "--config", str(config), "召开会议")
    assert result.returncode == 0, result.stderr
    assert "安理会将于31日召开会议" in result.stdout
    assert "Python" not in result.stdout
    assert "https://chinese.aljazeera.net/news/political/2022/1/28/story-1" in result.stdout

    result = run_cli("search", "--config", str(config), "新版")  # two characters: LIKE
    assert "Python 新版本发布" in result.stdout
    assert "安理会" not in result.stdout

    result = run_cli("search", "--config", str(config), "nothing-like-this")
    assert result.returncode == 1
    assert "no entries match" in result.stdout


def pending_search(store: Store) -> int:
    """How many entries wait to be (re)indexed for search."""
    return int(store.db.execute("SELECT count(*) FROM search_pending").fetchone()[0])


def test_storing_only_queues_entries_for_indexing(tmp_path: Path) -> None:
    """Indexing is not part of a poll's transaction: it waits for update_search_index."""
    store = Store(tmp_path / "db.sqlite")
    try:
        store.sync_sources([("a", "http://x.test/a")])
        new = [
            (entry(str(i), f"标题 {i}", "<p>内容</p>", days=i), "h", f"{i}.md") for i in range(7)
        ]
        store.save_poll(SourceState("a", "http://x.test/a"), new, [], NOW)
        assert pending_search(store) == 7
        assert store.db.execute("SELECT count(*) FROM entries_search").fetchone()[0] == 0
        assert store.update_search_index(limit=5) == 5
        assert pending_search(store) == 2
        assert len(found(store, "标题")) == 7  # a search indexes the rest first
        assert pending_search(store) == 0
        changed = entry("3", "改过的标题", "<p>新内容</p>", days=3)
        store.save_poll(SourceState("a", "http://x.test/a"), [], [(changed, "h2")], NOW)
        assert pending_search(store) == 1
        assert found(store, "改过的") == ["3"]
        assert store.db.execute("SELECT count(*) FROM entries_search").fetchone()[0] == 7
    finally:
        store.close()
