"""`aggregator run` in a subprocess, against a local server of feeds, as systemd would run it.

Every wait polls a condition against a deadline (daemonworld.wait_for); nothing sleeps for a
fixed long time.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path

import feedparser
from conftest import FeedServer, run_cli
from daemonworld import Response, RunningDaemon, local, wait_for, write_config
from feedworld import rsshub_feed, rsshub_item
from werkzeug import Request
from werkzeug import Response as WerkzeugResponse


class NotifySocket:
    """What systemd's $NOTIFY_SOCKET would receive: every datagram, in order."""

    def __init__(self) -> None:
        # A short path: AF_UNIX addresses are limited to 108 bytes, pytest's tmp_path is long.
        self._folder = tempfile.TemporaryDirectory(prefix="agg-notify-")
        self.path = os.path.join(self._folder.name, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._open = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while self._open:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def lines(self) -> list[str]:
        return [line for message in list(self.messages) for line in message.splitlines()]

    def close(self) -> None:
        self._open = False
        self._thread.join(2)
        self.sock.close()
        self._folder.cleanup()


def when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def documents(folder: Path) -> list[Path]:
    return sorted((folder / "site/_posts").glob("*.md"))


def test_polls_republishes_and_serves_the_merged_feed(
    feed_server: FeedServer, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    feed_server.serve("/news", rsshub_feed([rsshub_item(1), rsshub_item(2)]))
    feed_server.serve("/broken", b"<html>oops</html>", status=500, etag=False)
    config = write_config(
        tmp_path,
        [
            {
                "name": "news",
                "url": local(feed_server, "/news"),
                "title": "News",
                "categories": ["新闻"],
            },
            {"name": "broken", "url": local(feed_server, "/broken")},
        ],
    )
    notify = NotifySocket()
    try:
        daemon = start_daemon(config, {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
        wait_for(lambda: len(documents(tmp_path)) == 2, "the first two documents")

        def served_entries(count: int) -> Response | None:
            answer = daemon.request("/feed.xml")
            parsed = feedparser.parse(answer.body)
            return answer if len(parsed.entries) == count else None

        feed = wait_for(lambda: served_entries(2), "the served feed to hold two entries")
        assert feed.status == 200
        assert feed.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
        etag = feed.headers["ETag"]
        assert not feedparser.parse(feed.body).bozo

        # A reader's conditional GETs, by either validator, get 304 and no body.
        again = daemon.request("/feed.xml", If_None_Match=etag)
        assert (again.status, again.body) == (304, b"")
        assert again.headers["ETag"] == etag
        # Last-Modified is the mtime rounded up once its second has passed (until then a
        # rewrite in the same second could not be told apart): a date then validates.
        written = os.stat(tmp_path / "public/feed.xml").st_mtime
        wait_for(lambda: time.time() >= math.ceil(written), "the feed's second to pass")
        modified = daemon.request("/feed.xml").headers["Last-Modified"]
        again = daemon.request("/feed.xml", If_Modified_Since=modified)
        assert (again.status, again.body) == (304, b"")
        head = daemon.request("/feed.xml", method="HEAD")
        assert head.status == 200 and head.body == b""
        assert int(head.headers["Content-Length"]) == len(feed.body)
        zipped = daemon.request("/feed.xml", Accept_Encoding="gzip, deflate")
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(zipped.body) == feed.body
        assert zipped.headers["ETag"] != etag
        rezipped = daemon.request(
            "/feed.xml", If_None_Match=zipped.headers["ETag"], Accept_Encoding="gzip"
        )
        assert rezipped.status == 304
        atom = daemon.request("/atom.xml")
        assert atom.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
        assert len(feedparser.parse(atom.body).entries) == 2
        index = daemon.request("/").body.decode()
        head = index.split("</head>")[0]
        assert 'rel="alternate" type="application/rss+xml"' in head
        assert 'href="feed.xml"' in head and 'href="atom.xml"' in head
        # The merged RSS, Atom and JSON Feed, and the same for the one category; no
        # source's feed (those are linked in the body only).
        assert head.count("<link ") == 6
        assert "source/" not in head
        # Every other feed publish() writes is served too, and linked from the index.
        json_feed = daemon.request("/feed.json")
        assert json_feed.headers["Content-Type"] == "application/feed+json; charset=utf-8"
        assert len(json.loads(json_feed.body)["items"]) == 2
        category = "/category/%E6%96%B0%E9%97%BB/feed.xml"  # 新闻
        assert category.lstrip("/") in index
        assert len(feedparser.parse(daemon.request(category).body).entries) == 2
        assert (
            daemon.request("/source/news/atom.xml")
            .headers["Content-Type"]
            .startswith("application/atom+xml")
        )
        assert daemon.request("/healthz").status == 200
        assert daemon.request("/nothing-here").status == 404

        # A failing source stays visible: its error, its HTTP status, its next retry.
        broken = wait_for(
            lambda: (s := daemon.status("broken"))["consecutive_errors"] >= 1 and s,
            "/status to show the broken source",
        )
        assert broken["status"] == "error" and broken["http_status"] == 500
        assert "500" in broken["error"] and broken["next_poll"] is not None
        assert daemon.status("news")["status"] == "ok"
        assert daemon.status("news")["entries"] == 2

        # A new item in the source reaches the documents and the served feed on its own.
        feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
        wait_for(lambda: len(documents(tmp_path)) == 3, "the third document")
        newer = wait_for(lambda: served_entries(3), "the served feed to hold three entries")
        assert newer.headers["ETag"] != etag
        assert daemon.request("/feed.xml", If_None_Match=etag).status == 200

        # Search indexing is off the polls' path: the daemon does it after republishing.
        def indexed() -> bool:
            with closing(sqlite3.connect(tmp_path / "state/agg.db", timeout=10)) as db:
                pending = db.execute("SELECT count(*) FROM search_pending").fetchone()[0]
                return (
                    pending == 0
                    and db.execute("SELECT count(*) FROM entries_search").fetchone()[0] == 3
                )

        wait_for(indexed, "the daemon to index the three entries for search")

        code, took = daemon.stop()
        assert code == 0, daemon.text()
        assert took < 5, f"SIGTERM took {took:.1f} s"
        log = daemon.text()
        assert "source=news status=new" in log and "source=broken status=error" in log
        assert "Traceback" not in log
        lines = wait_for(lambda: "STOPPING=1" in notify.lines() and notify.lines(), "STOPPING=1")
        assert lines.index("READY=1") < lines.index("STOPPING=1")
        assert "WATCHDOG=1" in lines
    finally:
        notify.close()


def test_reload_by_sighup_and_by_config_change(
    feed_server: FeedServer, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    first = feed_server.serve("/first", rsshub_feed([rsshub_item(1)]))
    feed_server.serve("/second", rsshub_feed([rsshub_item(i, guid=f"s{i}") for i in (7, 8)]))
    one = {"name": "first", "url": local(feed_server, "/first")}
    two = {"name": "second", "url": local(feed_server, "/second")}
    config = write_config(tmp_path, [one])
    daemon = start_daemon(config)
    wait_for(lambda: len(documents(tmp_path)) == 1, "the first source's document")

    # SIGHUP: an added source starts.
    write_config(tmp_path, [one, two])
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: len(documents(tmp_path)) == 3, "the added source's documents")
    assert "config reloaded (SIGHUP received)" in daemon.text()
    assert daemon.status("second")["status"] == "ok"

    # A broken config file is rejected, found by its mtime alone; the old config runs on.
    config.write_text("sources:\n  - name: Not A Valid Name\n", encoding="utf-8")
    wait_for(lambda: "rejected, the running config stays" in daemon.text(), "the rejection")
    polled = first.requests
    wait_for(lambda: first.requests > polled, "the first source to be polled again")
    assert daemon.request("/healthz").status == 200

    # A removed source stops; a changed interval applies.
    write_config(tmp_path, [{**two, "interval": "1h"}], max_interval="1d")
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "stopped=first" in daemon.text(), "the removal")
    assert "retimed=second" in daemon.text()
    wait_for(
        lambda: (
            (s := daemon.status("second"))["next_poll"]
            and when(s["next_poll"]) - when(s["last_poll"]) > 3000
        ),
        "the next poll of 'second' to be an hour after its last",
    )
    before = first.requests
    time.sleep(2.5)  # a few of the old 1 s intervals
    assert first.requests == before
    assert [s["name"] for s in daemon.request("/status").json()["sources"]] == ["second"]
    code, _ = daemon.stop()
    assert code == 0


def test_one_instance_gone_and_moved_sources(
    feed_server: FeedServer, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    gone = feed_server.serve("/gone", b"", status=410, etag=False)
    new_home = local(feed_server, "/new-home")
    feed_server.serve("/old-home", b"", status=301, etag=False, headers={"Location": new_home})
    moved = feed_server.serve("/new-home", rsshub_feed([rsshub_item(3)]))
    config = write_config(
        tmp_path,
        [
            {"name": "gone", "url": local(feed_server, "/gone")},
            {"name": "moved", "url": local(feed_server, "/old-home")},
        ],
    )
    daemon = start_daemon(config)
    wait_for(lambda: daemon.status("gone")["status"] == "gone", "the 410 to disable 'gone'")
    wait_for(lambda: daemon.status("moved")["current_url"] == new_home, "the 301 to be adopted")
    assert daemon.status("gone")["next_poll"] is None
    assert "moved permanently" in daemon.text()

    # A second daemon, or an update, on the same database is refused with exit code 2.
    second = run_cli("run", "--config", str(config), timeout=30)
    assert second.returncode == 2
    assert "already running" in second.stderr and str(daemon.process.pid) in second.stderr
    update = run_cli("update", "--config", str(config), timeout=30)
    assert update.returncode == 2 and "already running" in update.stderr

    # The moved source is polled at its new home; the gone one is never asked again.
    polled = moved.requests
    wait_for(lambda: moved.requests >= polled + 2, "two more polls of the moved source")
    assert gone.requests == 1
    assert daemon.request("/healthz").status == 200
    code, _ = daemon.stop()
    assert code == 0
    # Once it is stopped, the database is free again.
    after = run_cli("update", "--config", str(config), timeout=60)
    assert after.returncode != 2 and "already running" not in after.stderr


def test_sigterm_lets_a_running_poll_finish(
    feed_server: FeedServer, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    body = rsshub_feed([rsshub_item(5)])

    def slow(request: Request) -> WerkzeugResponse:
        time.sleep(2)
        return WerkzeugResponse(body, content_type="application/rss+xml")

    feed_server.server.expect_request("/slow").respond_with_handler(slow)
    config = write_config(tmp_path, [{"name": "slow", "url": local(feed_server, "/slow")}])
    daemon = start_daemon(config)
    wait_for(lambda: daemon.status("slow")["polling"], "the slow poll to start")
    code, took = daemon.stop()
    assert code == 0
    assert took < 10, f"SIGTERM took {took:.1f} s"
    log = daemon.text()
    assert "waiting up to 20 s for running polls: slow" in log
    assert "source=slow status=new" in log
    # What the poll stored was written out before the exit.
    assert len(documents(tmp_path)) == 1


def test_startup_completes_what_a_crash_left(
    feed_server: FeedServer, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
    config = write_config(tmp_path, [{"name": "news", "url": local(feed_server, "/news")}])
    assert run_cli("update", "--config", str(config), timeout=60).returncode == 0
    # A crash after storing, before writing: documents missing and not marked written, a
    # temp file half-written, the feed not yet republished.
    for document in documents(tmp_path):
        document.unlink()
    with sqlite3.connect(tmp_path / "state/agg.db") as db:
        db.execute("INSERT OR IGNORE INTO documents_pending (id) SELECT id FROM entries")
    (tmp_path / "public/feed.xml").unlink()
    stale = tmp_path / "public" / ".feed.xml.4242.tmp"
    stale.write_bytes(b"<rss>half")
    # The source is down now: whatever appears comes from the startup, not from a poll.
    feed_server.serve("/news", b"", status=503, etag=False)
    daemon = start_daemon(config)
    assert len(documents(tmp_path)) == 3
    assert (tmp_path / "public/feed.xml").exists() and not stale.exists()
    assert "stale temp files removed=1" in daemon.text()
    assert daemon.request("/feed.xml").status == 200
    assert daemon.stop()[0] == 0
