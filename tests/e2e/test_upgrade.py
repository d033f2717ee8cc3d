"""Upgrading in place: a database and a documents folder written by release 0.1 keep working.

`tests/data/legacy-0.1/` was written by release 0.1's own `aggregator update` (commit
4b9a549) on four feeds of `tests/data/real/` served at http://127.0.0.1:48765/feeds/: a
podcast whose guids are not URLs, Reddit's Atom with `t3_...` ids, a newspaper and a mirror
carrying three of its articles. That release stored a non-URL id resolved against the feed's
URL (`http://127.0.0.1:48765/feeds/t3_42qkd5`) and wrote two documents for an article two
sources carried. Here the same feeds are served again, the podcast and Reddit from a new
address that the old one 301s to, and this release's `aggregator update` runs twice on the
old files: not one entry is added, every entry keeps its identity (so its item id and its
document name), and each article is left with exactly one document.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from invariants import check_outputs, front_matter
from pytest_httpserver import HTTPServer
from werkzeug import Response

from aggregator.config.settings import load_config
from aggregator.outputs.feeds import item_id
from aggregator.store.schema import SCHEMA_VERSION

DATA = Path(__file__).parent.parent / "data"
LEGACY = DATA / "legacy-0.1"
OLD_ORIGIN = "http://127.0.0.1:48765"
MOVED = {"podcast.rss", "reddit.atom"}


def rows(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute(sql).fetchall()


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("upgrade")
    shutil.copytree(LEGACY / "documents", folder / "documents")
    database = folder / "legacy.db"
    shutil.copy(LEGACY / "aggregator.db", database)
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    origin = server.url_for("").rstrip("/")
    for path in sorted((DATA / "real").iterdir()):
        if path.suffix == ".json":
            continue
        # Regenerated since 0.1 read it, as a live feed is: a body hashing the same as the
        # last one read would not be parsed at all.
        body = path.read_bytes() + b"\n<!-- regenerated -->\n"
        if path.name in MOVED:
            location = f"{origin}/moved/{path.name}"
            server.expect_request(f"/feeds/{path.name}").respond_with_response(
                Response(status=301, headers={"Location": location})
            )
            server.expect_request(f"/moved/{path.name}").respond_with_data(
                body, content_type="application/xml"
            )
        else:
            server.expect_request(f"/feeds/{path.name}").respond_with_data(
                body, content_type="application/xml"
            )
    # The same files as if 0.1 had run against this server's port: every address moves by
    # the port alone, as it would have been written then.
    with sqlite3.connect(database) as db:
        for table, column in (("entries", "identity"), ("entries", "link"), ("sources", "url")):
            db.execute(
                f"UPDATE {table} SET {column} = replace({column}, ?, ?)", [OLD_ORIGIN, origin]
            )
    config = yaml.safe_load((LEGACY / "config.yaml").read_text(encoding="utf-8"))
    for source in config["sources"]:
        source["url"] = source["url"].replace(OLD_ORIGIN, origin)
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    before = {
        "entries": rows(database, "SELECT source, identity, document FROM entries ORDER BY id"),
        "documents": sorted(p.name for p in (folder / "documents").iterdir()),
    }
    runs = [run_cli("update", "--config", str(folder / "config.yaml")) for _ in range(2)]
    server.stop()
    return {"folder": folder, "database": database, "before": before, "runs": runs}


def test_both_passes_succeed(upgraded: dict) -> None:
    for run in upgraded["runs"]:
        assert run.returncode == 0, run.stderr
    assert "moved permanently" in upgraded["runs"][0].stderr


def test_the_schema_is_migrated(upgraded: dict) -> None:
    (version,) = rows(upgraded["database"], "SELECT max(version) FROM schema_version")[0]
    assert version == SCHEMA_VERSION


def test_not_one_entry_is_added_and_none_changes_identity(upgraded: dict) -> None:
    after = rows(upgraded["database"], "SELECT source, identity, document FROM entries ORDER BY id")
    assert after == upgraded["before"]["entries"]
    # Entries keep their identities, so their ids in published feeds stay as they were.
    legacy_ids = {item_id(source, identity) for source, identity, _ in after}
    feed = (upgraded["folder"] / "public" / "feed.xml").read_text(encoding="utf-8")
    published = set(feed.split('<guid isPermaLink="false">')[1:])
    assert published and {text.split("<")[0] for text in published} <= legacy_ids


def test_each_article_keeps_exactly_one_document(upgraded: dict) -> None:
    folder = upgraded["folder"]
    documents = sorted(p.name for p in (folder / "documents").iterdir())
    before = upgraded["before"]["documents"]
    assert set(documents) <= set(before)  # nothing new, no renamed document
    # The three articles the newspaper shares with the mirror were two documents each.
    assert len(before) - len(documents) == 3
    titles = [
        front_matter((folder / "documents" / n).read_text("utf-8"))["title"] for n in documents
    ]
    assert len(titles) == len(set(titles))
    check_outputs(load_config(folder / "config.yaml"))


def test_the_moved_sources_are_polled_at_their_new_address(upgraded: dict) -> None:
    moved = rows(
        upgraded["database"],
        "SELECT name, current_url, status FROM sources WHERE name IN ('podcast', 'reddit')",
    )
    for name, current_url, status in moved:
        assert current_url and current_url.split("/")[-2] == "moved", name
        assert status == "ok", name


def test_no_entry_is_taken_for_changed_by_todays_sanitiser(upgraded: dict) -> None:
    """0.1 stored some HTML in another spelling (`<br/>`, `&#39;`) than today's normal form;
    the same entry fetched again is not a change: no new version, document or item."""
    versions = rows(upgraded["database"], "SELECT version, count(*) FROM entries GROUP BY 1")
    assert versions == [(1, len(upgraded["before"]["entries"]))]
    for run in upgraded["runs"]:
        assert " changed" in run.stdout and "0 changed" in run.stdout.splitlines()[-1]
