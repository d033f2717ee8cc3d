"""The database's schema: each version's migration, applied in order and recorded in
`schema_version` (a file from a newer aggregator is refused, never downgraded)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from aggregator.sources.sanitize import plain_text, valid_url
from aggregator.store.rows import canonical_link

SCHEMA_VERSION = 12
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE sources (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        current_url TEXT,
        title TEXT,
        link TEXT,
        etag TEXT,
        last_modified TEXT,
        body_hash TEXT,
        status TEXT NOT NULL DEFAULT 'new',
        http_status INTEGER,
        error TEXT,
        consecutive_errors INTEGER NOT NULL DEFAULT 0,
        last_fetch TEXT,
        last_success TEXT,
        next_poll TEXT,
        ttl INTEGER
    );
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        identity TEXT NOT NULL,
        link TEXT,
        canonical_link TEXT,
        title TEXT NOT NULL,
        author TEXT,
        published TEXT,
        updated TEXT,
        date TEXT NOT NULL,
        content TEXT NOT NULL,
        image TEXT,
        categories TEXT NOT NULL DEFAULT '[]',
        content_hash TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_changed TEXT,
        version INTEGER NOT NULL DEFAULT 1,
        document TEXT NOT NULL UNIQUE,
        document_hash TEXT,
        UNIQUE (source, identity)
    );
    CREATE INDEX entries_by_date ON entries (date DESC, id DESC);
    CREATE INDEX entries_by_link ON entries (canonical_link, id);
    CREATE INDEX entries_pending ON entries (id) WHERE document_hash IS NULL;
    """,
    # Full-text search: title + plain text of the content, trigram-tokenised so that a word
    # is found inside Chinese text (which has no spaces). Triggers keep it in step with
    # `entries`; deleting needs no SQL function, so any SQLite client may delete entries.
    2: """
    CREATE VIRTUAL TABLE entries_search USING fts5 (title, body, tokenize = 'trigram');
    CREATE TRIGGER entries_search_insert AFTER INSERT ON entries BEGIN
        INSERT INTO entries_search (rowid, title, body)
        VALUES (new.id, new.title, entry_text(new.content));
    END;
    CREATE TRIGGER entries_search_update AFTER UPDATE OF title, content ON entries BEGIN
        DELETE FROM entries_search WHERE rowid = old.id;
        INSERT INTO entries_search (rowid, title, body)
        VALUES (new.id, new.title, entry_text(new.content));
    END;
    CREATE TRIGGER entries_search_delete AFTER DELETE ON entries BEGIN
        DELETE FROM entries_search WHERE rowid = old.id;
    END;
    INSERT INTO entries_search (rowid, title, body)
        SELECT id, title, entry_text(content) FROM entries;
    CREATE INDEX entries_by_source ON entries (source, date DESC, id DESC);
    """,
    # Indexing Chinese text by trigrams costs more than parsing the feed, and doing it inside
    # the one writer's transaction made storing the bottleneck of a poll. Triggers now only
    # note which entries need (re)indexing; `update_search_index` does it in batches, from
    # the daemon when a republish is done and from `search` before it looks (as lemon24's
    # reader keeps `update_search` apart from `update_feeds`).
    3: """
    CREATE TABLE search_pending (id INTEGER PRIMARY KEY);
    DROP TRIGGER entries_search_insert;
    DROP TRIGGER entries_search_update;
    DROP TRIGGER entries_search_delete;
    CREATE TRIGGER entries_search_insert AFTER INSERT ON entries BEGIN
        INSERT OR IGNORE INTO search_pending (id) VALUES (new.id);
    END;
    CREATE TRIGGER entries_search_update AFTER UPDATE OF title, content ON entries BEGIN
        INSERT OR IGNORE INTO search_pending (id) VALUES (new.id);
    END;
    CREATE TRIGGER entries_search_delete AFTER DELETE ON entries BEGIN
        DELETE FROM entries_search WHERE rowid = old.id;
        DELETE FROM search_pending WHERE id = old.id;
    END;
    """,
    # A group feed is rebuilt when its sources' entries moved. Finding out by counting every
    # source's entries took 0.1 s of each publish at 50,000 entries (a second at 500,000);
    # instead each source carries the time, on a clock that only goes forward, of the last
    # insert, change or delete among its entries, kept by triggers whoever writes.
    4: """
    CREATE TABLE entries_clock (value INTEGER NOT NULL);
    INSERT INTO entries_clock (value) VALUES (0);
    ALTER TABLE sources ADD COLUMN entries_moved INTEGER NOT NULL DEFAULT 0;
    CREATE TRIGGER entries_moved_insert AFTER INSERT ON entries BEGIN
        UPDATE entries_clock SET value = value + 1;
        UPDATE sources SET entries_moved = (SELECT value FROM entries_clock)
        WHERE name = new.source;
    END;
    CREATE TRIGGER entries_moved_update
    AFTER UPDATE OF source, link, title, author, published, updated, date, content, image,
        categories ON entries BEGIN
        UPDATE entries_clock SET value = value + 1;
        UPDATE sources SET entries_moved = (SELECT value FROM entries_clock)
        WHERE name IN (old.source, new.source);
    END;
    CREATE TRIGGER entries_moved_delete AFTER DELETE ON entries BEGIN
        UPDATE entries_clock SET value = value + 1;
        UPDATE sources SET entries_moved = (SELECT value FROM entries_clock)
        WHERE name = old.source;
    END;
    """,
    # Documents still to write are listed in a table of their own: marking one written by
    # setting `entries.document_hash` rewrote the whole row (~4 KB of content, overflow
    # pages and all), doubling what a cold pass wrote to the database.
    5: """
    CREATE TABLE documents_pending (id INTEGER PRIMARY KEY);
    INSERT INTO documents_pending (id) SELECT id FROM entries WHERE document_hash IS NULL;
    DROP INDEX entries_pending;
    CREATE TRIGGER documents_pending_insert AFTER INSERT ON entries BEGIN
        INSERT OR IGNORE INTO documents_pending (id) VALUES (new.id);
    END;
    CREATE TRIGGER documents_pending_update
    AFTER UPDATE OF link, title, author, published, updated, date, content, image, categories
    ON entries BEGIN
        INSERT OR IGNORE INTO documents_pending (id) VALUES (new.id);
    END;
    CREATE TRIGGER documents_pending_delete AFTER DELETE ON entries BEGIN
        DELETE FROM documents_pending WHERE id = old.id;
    END;
    """,
    # One article, one document and one item. An entry's `article` is its canonical link
    # when that link names one article: not a site's home page, and carried by no other
    # entry of the same source (a podcast whose episodes all link to the show's page). Of
    # the entries of several sources that share an article, the one whose source name sorts
    # first has the document and the item (see `Store.owed_documents`); when it goes
    # (purged, pruned) or leaves the article, the others are owed their documents again.
    # Stored links and images are made valid URLs first (a space is published as %20).
    6: """
    UPDATE entries SET link = url_key(link) WHERE link IS NOT url_key(link);
    UPDATE entries SET image = url_key(image) WHERE image IS NOT url_key(image);
    UPDATE entries SET canonical_link = link_key(link)
    WHERE canonical_link IS NOT link_key(link);
    ALTER TABLE entries ADD COLUMN article TEXT;
    UPDATE entries SET article = canonical_link WHERE canonical_link IS NOT NULL AND (
        SELECT count(*) FROM entries o
        WHERE o.canonical_link = entries.canonical_link AND +o.source = entries.source) = 1;
    CREATE INDEX entries_by_article ON entries (article, source);
    CREATE TRIGGER documents_pending_article_delete AFTER DELETE ON entries
    WHEN old.article IS NOT NULL BEGIN
        INSERT OR IGNORE INTO documents_pending (id)
        SELECT id FROM entries WHERE article = old.article;
    END;
    CREATE TRIGGER documents_pending_article_update AFTER UPDATE OF article ON entries BEGIN
        INSERT OR IGNORE INTO documents_pending (id) VALUES (new.id);
        INSERT OR IGNORE INTO documents_pending (id)
        SELECT id FROM entries WHERE article IN (old.article, new.article);
    END;
    INSERT OR IGNORE INTO documents_pending (id)
    SELECT id FROM entries WHERE article IN (
        SELECT article FROM entries WHERE article IS NOT NULL
        GROUP BY article HAVING count(*) > 1);
    """,
    # Entries' images mirrored into the site (config.yaml's `images`, aggregator/outputs/images.py):
    # what the last try for each URL gave, a file named by the hash of its bytes or an
    # error, so that an image is fetched once and a failure is tried again only later.
    7: """
    CREATE TABLE images (
        url TEXT PRIMARY KEY,
        name TEXT,
        error TEXT,
        checked TEXT NOT NULL
    );
    """,
    # A document that cannot be written (a directory at its path, a name the file system
    # refuses) stays owed with its reason, for /status and `update`, while the others and
    # the feeds are written.
    8: """
    ALTER TABLE documents_pending ADD COLUMN error TEXT;
    """,
    # The daemon's scheduler reads its jobs from `sources` (aggregator/service/source_jobs.py):
    # every time it wakes it asks which sources are due and when the next one is, which
    # without an index is a scan of every source. `next_poll` is written by `iso`, one
    # fixed-width UTC format, so its text sorts as its time does.
    9: """
    CREATE INDEX sources_by_next_poll ON sources (next_poll);
    """,
    # The article of an entry of a `full_text: true` source, fetched from its link at first
    # sight (aggregator/poll/articles.py). `content` stays the feed's own text, so that a
    # change is still told by the feed; documents and feeds show `full_text` when there is
    # one. Found again by canonical link, so that two sources never fetch one page twice.
    10: """
    ALTER TABLE entries ADD COLUMN full_text TEXT;
    """,
    # A document owed is owed again when its entry changes while it is being written (the
    # daemon's writing trails its polls): each time a row is owed anew it gets a new random
    # `stamp`, and marking a document written deletes the row only if its stamp is the one
    # listed with it (`Store.mark_documents`). Before, the marking deleted the row whatever
    # happened since, and the document kept the older text until the entry changed again.
    # Random rather than counted: an id SQLite reuses (the newest entry deleted, another
    # stored) starts a new row, which a count would start at the same value again.
    11: """
    ALTER TABLE documents_pending ADD COLUMN stamp INTEGER;
    DROP TRIGGER documents_pending_insert;
    DROP TRIGGER documents_pending_update;
    DROP TRIGGER documents_pending_article_delete;
    DROP TRIGGER documents_pending_article_update;
    CREATE TRIGGER documents_pending_insert AFTER INSERT ON entries BEGIN
        INSERT INTO documents_pending (id, stamp) VALUES (new.id, random())
        ON CONFLICT (id) DO UPDATE SET stamp = random();
    END;
    CREATE TRIGGER documents_pending_update
    AFTER UPDATE OF link, title, author, published, updated, date, content, image, categories
    ON entries BEGIN
        INSERT INTO documents_pending (id, stamp) VALUES (new.id, random())
        ON CONFLICT (id) DO UPDATE SET stamp = random();
    END;
    CREATE TRIGGER documents_pending_article_delete AFTER DELETE ON entries
    WHEN old.article IS NOT NULL BEGIN
        INSERT INTO documents_pending (id, stamp)
        SELECT id, random() FROM entries WHERE article = old.article
        ON CONFLICT (id) DO UPDATE SET stamp = random();
    END;
    CREATE TRIGGER documents_pending_article_update AFTER UPDATE OF article ON entries BEGIN
        INSERT INTO documents_pending (id, stamp) VALUES (new.id, random())
        ON CONFLICT (id) DO UPDATE SET stamp = random();
        INSERT INTO documents_pending (id, stamp)
        SELECT id, random() FROM entries WHERE article IN (old.article, new.article)
        ON CONFLICT (id) DO UPDATE SET stamp = random();
    END;
    """,
    # The documents of deleted entries (pruned by `keep`, purged), recorded in the deleting
    # transaction and forgotten once their files are gone (`Publisher.remove_orphans`): a
    # run stopped between the two left the files for good, documents of no entry.
    12: """
    CREATE TABLE documents_orphaned (name TEXT PRIMARY KEY);
    CREATE TRIGGER documents_orphaned_delete AFTER DELETE ON entries BEGIN
        INSERT OR IGNORE INTO documents_orphaned (name) VALUES (old.document);
    END;
    """,
}


def entry_text(content: Any) -> str:
    """What search sees of an entry's HTML: its text. SQLite calls this from the triggers."""
    return plain_text(content) if isinstance(content, str) else ""


def link_key(link: Any) -> str | None:
    """`canonical_link`, for migration 6 (SQLite calls it)."""
    return canonical_link(link) if isinstance(link, str) else None


def url_key(url: Any) -> Any:
    """`valid_url`, for migration 6: links and images stored before it may hold spaces."""
    return valid_url(url) if isinstance(url, str) else url


def statements(script: str) -> Iterator[str]:
    """The statements of a migration script; a trigger body's `;` does not end one."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
    if pending.strip(" \n;"):
        yield pending
