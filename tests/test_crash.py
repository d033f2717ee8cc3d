"""Crash safety and data integrity: killed at any moment, out of disk, unwritable folders,
damaged databases. The real command runs in a subprocess wherever the process matters.

The promise, checked after every kill and at the end: no entry lost, no row twice, exactly one
complete document per entry, merged feeds always complete files, a database that passes
`PRAGMA integrity_check`, and recovery by simply running again.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import pytest
import yaml
from conftest import FeedServer, kill_while_holding_the_lock, run_cli
from daemonworld import alive
from feedworld import PARAGRAPH, rsshub_feed, rsshub_item
from invariants import check_document, check_outputs, stored_entries, visible_files

from aggregator.config.settings import Config, load_config
from aggregator.errors import OutputError
from aggregator.outputs.document_formats import renderer_for
from aggregator.outputs.feeds import item_id
from aggregator.poll.pipeline import Pipeline
from aggregator.store.database import Store

# -- feeds that keep growing and changing, so that every run has work to interrupt ----------

SOURCES = 8
FIRST_ITEMS = 50
NEW_PER_GENERATION = 5
NEWEST = datetime(2026, 1, 1, tzinfo=UTC)


class GrowingFeeds:
    """`SOURCES` feeds: generation g lists FIRST_ITEMS + g * NEW_PER_GENERATION items, and
    every seventh item changes its title and text every fourth generation. Items never drop
    out, so the current generation lists every entry ever served, as it should be stored."""

    def __init__(self) -> None:
        self.generation = 0
        self._bodies: dict[tuple[int, int], bytes] = {}
        self._lock = threading.Lock()

    def items(self, feed: int) -> list[tuple[str, str, str, datetime]]:
        """(guid, title, html, date) of every item, newest first."""
        count = FIRST_ITEMS + self.generation * NEW_PER_GENERATION
        items = []
        for index in reversed(range(count)):
            version = self.generation // 4 if index % 7 == 0 else 0
            title = f"Feed {feed} item {index} v{version}"
            html = PARAGRAPH * 2 + f"<p>Item {index} of feed {feed}, version {version}.</p>"
            date = NEWEST - timedelta(hours=count - index)
            items.append((f"crash-{feed}-{index}", title, html, date))
        return items

    def body(self, feed: int) -> bytes:
        with self._lock:
            key = (feed, self.generation)
            if key not in self._bodies:
                self._bodies = {k: v for k, v in self._bodies.items() if k[1] == key[1]}
                self._bodies[key] = rsshub_feed(
                    [
                        f"<item><title>{escape(title)}</title>"
                        f'<guid isPermaLink="false">{guid}</guid>'
                        f"<link>https://example.org/{guid}</link>"
                        f"<pubDate>{format_datetime(date, usegmt=True)}</pubDate>"
                        f"<description><![CDATA[{html}]]></description></item>"
                        for guid, title, html, date in self.items(feed)
                    ],
                    title=f"Feed {feed}",
                )
            return self._bodies[key]


@pytest.fixture
def growing_feeds() -> Iterator[tuple[GrowingFeeds, str]]:
    """The feeds on a threaded local server (with ETags, like RSSHub); yields (feeds, base)."""
    feeds = GrowingFeeds()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = feeds.body(int(self.path.strip("/").split("-")[-1]))
            tag = '"' + hashlib.sha1(body).hexdigest() + '"'
            if self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", tag)
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may have been killed meanwhile
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield feeds, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def write_config(folder: Path, base: str, **settings: object) -> Path:
    path = folder / "config.yaml"
    data = {
        "database": "state/aggregator.db",
        "documents": "site/source/_posts",
        "feed": {"folder": "site/public", "max_items": 40},
        "timeout": {"connect": 2, "read": 5, "total": 20},
        "workers": 4,
        **settings,
        "sources": [{"name": f"feed-{k}", "url": f"{base}/feed-{k}"} for k in range(SOURCES)],
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# -- the kill loop -------------------------------------------------------------------------

KILLS = 20
AGGREGATOR = [sys.executable, "-m", "aggregator"]


def children_of(pid: int) -> set[int]:
    """Direct children of `pid` (the parser processes of an `update`)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def check_after_crash(config: Config) -> None:
    """What must hold the instant after a kill, before anything repairs anything."""
    if not config.paths.database.exists():
        return  # killed before it got that far
    with contextlib.closing(sqlite3.connect(config.paths.database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "entries" not in tables:
            assert not visible_files(config.paths.documents)
            return  # killed while the new database's schema was being created (one transaction)
        names = {row[0] for row in db.execute("SELECT document FROM entries")}
        twice = db.execute(
            "SELECT count(*) FROM (SELECT 1 FROM entries GROUP BY source, identity "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
    assert twice == 0
    for path in visible_files(config.paths.documents):
        assert path.name in names, f"{path.name}: a document without its entry"
        check_document(path)  # complete, never half-written
    for path in visible_files(config.paths.public):
        data = path.read_bytes()
        if path.suffix == ".xml":
            parsed = feedparser.parse(data)
            assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        elif path.suffix == ".json":
            json.loads(data)


def check_final(config: Config, feeds: GrowingFeeds) -> int:
    """Everything served is stored exactly once, with its latest text, in exactly one
    document that says what the database says; the merged feed lists stored entries."""
    check_outputs(config)
    expected = {
        (f"feed-{k}", guid): title for k in range(SOURCES) for guid, title, _, _ in feeds.items(k)
    }
    store = Store(config.paths.database)
    try:
        stored = list(stored_entries(store))
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    assert len(stored) == len(expected)
    assert {(s.entry.source, s.entry.identity): s.entry.title for s in stored} == expected
    render = renderer_for(config.documents_format)
    sources = {source.name: source for source in config.sources}
    for item in stored:
        text = (config.paths.documents / item.document).read_text(encoding="utf-8")
        assert text == render(item, sources[item.entry.source]), item.document
    ids = {item_id(s.entry.source, s.entry.identity) for s in stored}
    for name in (config.feed.rss_name, config.feed.atom_name):
        merged = feedparser.parse((config.paths.public / name).read_bytes())
        assert not merged.bozo
        listed = [entry.id for entry in merged.entries]
        assert len(listed) == len(set(listed)) == config.feed.max_items
        assert set(listed) <= ids
    return len(stored)


def polls_logged(log: Path) -> int:
    return log.read_text(encoding="utf-8", errors="replace").count("source=")


def kill_at_a_random_moment(
    process: subprocess.Popen, log: Path, phase: str, rng: random.Random
) -> bool:
    """SIGKILL `process` somewhere in `phase`, at a random moment: "start" (imports, opening
    the database, starting the parser processes), "polling" (after a random number of
    polls were stored) or "outputs" (after the last poll: documents and merged feeds).
    Phases are aimed at from the log, so that a slow or busy machine still gets kills in
    every one. Returns False when the run ended before the moment came."""
    if phase == "polling":
        wanted, extra = rng.randint(1, SOURCES - 1), rng.uniform(0.0, 0.05)
    elif phase == "outputs":
        wanted, extra = SOURCES, rng.uniform(0.0, 0.8)
    else:
        wanted, extra = 0, rng.uniform(0.05, 0.4)
    while polls_logged(log) < wanted and process.poll() is None:
        time.sleep(0.005)
    try:
        process.wait(timeout=extra)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def test_sigkill_at_random_moments_loses_nothing(growing_feeds, tmp_path: Path) -> None:
    """`aggregator update` killed with SIGKILL at random moments, again and again, while the
    feeds keep growing and changing; then one clean run. Nothing may be lost, doubled or
    half-written, and the parser processes of a killed run must end by themselves."""
    feeds, base = growing_feeds
    config_path = write_config(tmp_path, base)
    config = load_config(config_path)
    rng = random.Random(20261124)
    landed = {"start": 0, "polling": 0, "outputs": 0}
    completed, orphans, iteration = 0, set(), 0
    started = time.monotonic()
    # Kill until there are KILLS in all and at least a fifth of them in every phase: where a
    # kill lands is only known afterwards (a start-aimed kill may land in polling).
    while sum(landed.values()) < KILLS or min(landed.values()) < KILLS // 5:
        assert time.monotonic() - started < 240, f"the kill loop is far too slow: {landed}"
        short = [name for name, count in landed.items() if count < KILLS // 5]
        phases = short or ["start", "polling", "outputs"]
        phase = phases[iteration % len(phases)]
        iteration += 1
        feeds.generation += 1
        log = tmp_path / "run.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [*AGGREGATOR, "--log-level", "info", "update", "--config", str(config_path)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            children: set[int] = set()
            while process.poll() is None and not children and phase != "start":
                children = children_of(process.pid)  # parser processes, once started
                time.sleep(0.005)
            if kill_at_a_random_moment(process, log, phase, rng):
                orphans |= children | children_of(process.pid)
                polled = polls_logged(log)
                where = "start" if polled == 0 else "polling" if polled < SOURCES else "outputs"
                landed[where] += 1
            else:
                completed += 1
                assert process.returncode == 0, log.read_text()
        check_after_crash(config)
    # One run to the end: it must finish what every killed run left undone.
    final = run_cli("update", "--config", str(config_path), timeout=120)
    assert final.returncode == 0, final.stderr
    entries = check_final(config, feeds)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in orphans) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in orphans if alive(pid)], "parser processes outlived their parent"
    print(
        f"\n{sum(landed.values())} SIGKILLs (at start {landed['start']}, while polling "
        f"{landed['polling']}, while writing documents and feeds {landed['outputs']}), "
        f"{completed} runs completed, {len(orphans)} orphaned parser processes all ended, "
        f"{entries} entries in the end, {time.monotonic() - started:.1f} s"
    )
    assert min(landed.values()) >= KILLS // 5, landed


def test_the_temp_files_a_killed_run_left_are_cleared_by_the_next_update(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A run killed mid-write leaves hidden temp files: of documents, of merged and group
    feeds, of the files beside the database. Only the daemon's start cleared them; a site
    updated by `aggregator update` from a timer kept every one. The next run that takes the
    lock after a killed holder clears them now, and nothing of anyone else's."""
    feed_server.serve("/feed-0", rsshub_feed([rsshub_item(i, guid=f"n-{i}") for i in range(3)]))
    config_path = write_config(tmp_path, feed_server.url("").rstrip("/"))
    assert run_cli("update", "--config", str(config_path)).returncode in (0, 1)
    config = load_config(config_path)
    paths = config.paths
    group = paths.public / "source" / "feed-0"
    assert group.is_dir()
    database = paths.database
    left = [
        paths.documents / ".2026-01-01-a.md.0123456789abcdef.tmp",
        paths.public / f".{config.feed.rss_name}.0123456789abcdef.tmp",
        group / ".feed.json.0123456789abcdef.tmp",
        database.with_name(f".{database.name}.groups.json.0123456789abcdef.tmp"),
    ]
    theirs = database.with_name(".another-program.0123456789abcdef.tmp")
    for path in [*left, theirs]:
        path.write_bytes(b"half")
    kill_while_holding_the_lock(database)
    again = run_cli("--log-level", "info", "update", "--config", str(config_path))
    assert again.returncode in (0, 1), again.stderr
    assert "stale temp files removed=4" in again.stderr
    assert [path for path in left if path.exists()] == []
    assert theirs.read_bytes() == b"half"


def test_a_run_stopped_between_pruning_and_removing_leaves_no_document_behind(
    feed_server: FeedServer, make_config
) -> None:
    """`keep` deletes a source's oldest entries, then their documents. A SIGKILL between
    the two (found by a kill campaign) left documents of no entry on the site for good;
    the next run removes them."""
    feed_server.serve("/feed", rsshub_feed([rsshub_item(i, guid=f"n-{i}") for i in range(6)]))
    config = make_config([{"name": "news", "url": feed_server.url("/feed")}])
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store, parse_processes=0)
    try:
        pipeline.update_all()
        assert check_outputs(config) == 6
        # What a run killed right after the pruning transaction leaves: entries gone,
        # their documents still on disk.
        pruned = store.prune_source("news", 2)
        assert len(pruned) == 4
        assert all((config.paths.documents / name).exists() for name in pruned)
    finally:
        pipeline.close()
        store.close()
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store, parse_processes=0)
    try:
        pipeline.update_all()
        assert not [name for name in pruned if (config.paths.documents / name).exists()]
        assert check_outputs(config) == 2
    finally:
        pipeline.close()
        store.close()


DAEMON_KILLS = 5


def test_sigkill_of_the_daemon_loses_nothing(growing_feeds, tmp_path: Path) -> None:
    """The same promise for `aggregator run`, killed a few seconds into its life each time
    (while it polls every second and republishes), then one clean `update`."""
    feeds, base = growing_feeds
    config_path = write_config(
        tmp_path,
        base,
        interval="1s",
        max_interval="1s",
        server={"host": "127.0.0.1", "port": 0},
    )
    config = load_config(config_path)
    rng = random.Random(7)
    polled = 0
    for _ in range(DAEMON_KILLS):
        feeds.generation += 1
        log = tmp_path / "daemon.log"
        with log.open("wb") as stderr:
            daemon = subprocess.Popen(
                [*AGGREGATOR, "run", "--config", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            # Somewhere after its first polls began, while it still has work in hand.
            while polls_logged(log) == 0 and daemon.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 1.5))
            assert daemon.poll() is None, log.read_text()
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
        polled += polls_logged(log)
        check_after_crash(config)
    final = run_cli("update", "--config", str(config_path), timeout=120)
    assert final.returncode == 0, final.stderr
    entries = check_final(config, feeds)
    print(f"\n{DAEMON_KILLS} daemon SIGKILLs after {polled} polls; {entries} entries in the end")


# -- disks that fill up, folders that cannot be written ------------------------------------


def limited_file_size(limit: int) -> Callable[[], None]:
    """For a subprocess: no file may grow beyond `limit` bytes (EFBIG, as a full disk gives
    ENOSPC). RLIMIT_FSIZE holds for root too; Python ignores SIGXFSZ, so writes just fail."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def update_process(config: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "update", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limited_file_size(limit) if limit else None,
    )


def write_news_config(folder: Path, url: str) -> Path:
    """A config of one source, `news`, with the database and outputs in `folder`."""
    path = folder / "config.yaml"
    data = {
        "database": "state/aggregator.db",
        "documents": "site/source/_posts",
        "feed": {"folder": "site/public"},
        "sources": [{"name": "news", "url": url}],
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_disk_full_while_storing_is_reported_and_recovers(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.serve("/feed", rsshub_feed([rsshub_item(i, guid=f"d-{i}") for i in range(5)]))
    config_path = write_news_config(tmp_path, feed_server.url("/feed"))
    assert update_process(config_path).returncode == 0
    config = load_config(config_path)
    database = config.paths.database
    # Many more entries now, and no room for them.
    feed_server.serve("/feed", rsshub_feed([rsshub_item(i, guid=f"d-{i}") for i in range(400)]))
    full = update_process(config_path, limit=database.stat().st_size + 16_384)
    assert full.returncode == 2, full.stdout + full.stderr
    assert "Traceback" not in full.stderr and full.stderr.count("\n") == 1, full.stderr
    assert f"aggregator: {database}: cannot write the database" in full.stderr
    assert "is the disk full?" in full.stderr
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 5
    check_outputs(config)
    # Room again: the next run simply does it.
    again = update_process(config_path)
    assert again.returncode == 0, again.stderr
    assert "395 new" in again.stdout
    assert check_outputs(config) == 400


def test_disk_full_while_writing_documents_is_reported_and_recovers(
    feed_server: FeedServer, make_config
) -> None:
    """A document write that gets ENOSPC: the real kernel error, from a small tmpfs under
    the documents folder that a filler file leaves three pages of. (Temp files are opened
    with O_EXCL|O_NOFOLLOW under a random name, so a symlink to /dev/full planted at a temp
    name, as this test once did, is never followed: tests/test_atomic.py shows that.)"""
    feed_server.serve("/feed", rsshub_feed([rsshub_item(i, guid=f"n-{i}") for i in range(6)]))
    config = make_config([{"name": "news", "url": feed_server.url("/feed")}])
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store, parse_processes=0)
    documents = config.paths.documents
    try:
        (result,) = [pipeline.poll(source) for source in config.sources]
        assert result.new == 6
        pending = [owed.document for owed in store.owed_documents().write]
        with small_filesystem(documents, 64 * 1024):
            filler = documents / ".filler"
            handle = os.open(filler, os.O_WRONLY | os.O_CREAT)
            with contextlib.suppress(OSError):
                while True:  # until the kernel says the disk is full
                    os.write(handle, b"x" * 4096)
            os.close(handle)
            os.truncate(filler, filler.stat().st_size - 3 * 4096)
            with pytest.raises(OutputError, match="No space left on device") as failure:
                pipeline.publisher.write_documents()
            (victim,) = [name for name in pending if name in str(failure.value)]
            assert not (documents / victim).exists()
            assert sorted(p.name for p in documents.iterdir() if p.name.startswith(".")) == [
                ".filler"
            ]  # its temp file cleaned up
            assert store.integrity_check() == "ok"
            assert victim in [owed.document for owed in store.owed_documents().write]
            for path in visible_files(documents):
                check_document(path)
            # The disk has room again: the next pass writes what is owed.
            filler.unlink()
            pipeline.update_all()
            assert store.owed_documents().write == []
            assert check_outputs(config) == 6
    finally:
        pipeline.close()
        store.close()


@contextlib.contextmanager
def small_filesystem(folder: Path, size: int) -> Iterator[None]:
    """A tmpfs of `size` bytes mounted on `folder` for the block; the test is skipped where
    mounting is not allowed (it needs root, as in CI)."""
    folder.mkdir(parents=True, exist_ok=True)
    mount, umount = shutil.which("mount"), shutil.which("umount")
    command = [mount, "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)]
    if not (mount and umount) or subprocess.run(command, capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield
    finally:
        subprocess.run([umount, str(folder)], check=True)


def is_writable(folder: Path) -> bool:
    probe = folder / "write-probe"
    try:
        probe.write_bytes(b"x")
    except OSError:
        return False
    probe.unlink()
    return True


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[str]:
    """Make `folder` refuse new files in a way that holds for root as well: chmod 0555 when
    that is enough (not root), else the immutable attribute (chattr +i, ext4/xfs), else a
    regular file where the folder should be. Yields how; restores the folder on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if not is_writable(folder):
        try:
            yield "chmod 0555"
        finally:
            folder.chmod(0o755)
        return
    folder.chmod(0o755)
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode == 0:
        if not is_writable(folder):
            try:
                yield "chattr +i"
            finally:
                subprocess.run([chattr, "-i", str(folder)], check=True)
            return
        subprocess.run([chattr, "-i", str(folder)], check=True)
    shutil.rmtree(folder)
    folder.write_bytes(b"a file where the folder should be\n")
    try:
        yield "a regular file in its place"
    finally:
        folder.unlink()
        folder.mkdir()


@pytest.mark.parametrize("which", ["documents", "feed"])
def test_unwritable_output_folder_is_reported_and_recovers(
    feed_server: FeedServer, tmp_path: Path, which: str
) -> None:
    feed_server.serve("/feed", rsshub_feed([rsshub_item(i, guid=f"r-{i}") for i in range(4)]))
    config_path = write_news_config(tmp_path, feed_server.url("/feed"))
    config = load_config(config_path)
    folder = config.paths.documents if which == "documents" else config.paths.public
    with unwritable(folder) as how:
        failed = update_process(config_path)
        assert failed.returncode == 2, (how, failed.stdout, failed.stderr)
        assert "Traceback" not in failed.stderr and failed.stderr.count("\n") == 1, failed.stderr
        assert failed.stderr.startswith("aggregator: cannot ") and str(folder) in failed.stderr
        with contextlib.closing(sqlite3.connect(config.paths.database)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 4
    print(f"\nunwritable {which} folder made with: {how}; the error: {failed.stderr.strip()}")
    again = update_process(config_path)
    assert again.returncode == 0, again.stderr
    assert check_outputs(config) == 4
    assert len(visible_files(config.paths.documents)) == 4


# -- databases that are not ours or not whole ----------------------------------------------


def damaged(kind: str, good: bytes) -> bytes:
    middle = len(good) // 2 // 4096 * 4096
    if kind == "garbage":
        return os.urandom(len(good))
    if kind == "truncated":
        return good[: len(good) // 3]
    if kind == "header":
        return b"\0" * 100 + good[100:]
    if kind == "a page in the middle":
        return good[:middle] + b"\xff" * 4096 + good[middle + 4096 :]
    if kind == "the last page":
        return good[:-4096] + bytes(range(256)) * 16
    raise AssertionError(kind)


_GOOD_DATABASE: dict[str, bytes] = {}


def good_database(feed_server: FeedServer, make_config) -> bytes:
    """The bytes of a healthy database of 150 entries, built once (in this process)."""
    if "bytes" not in _GOOD_DATABASE:
        feed_server.serve("/good", rsshub_feed([rsshub_item(i, guid=f"c-{i}") for i in range(150)]))
        config = make_config([{"name": "news", "url": feed_server.url("/good")}])
        store = Store(config.paths.database)
        pipeline = Pipeline(config, store, parse_processes=0)
        pipeline.update_all()
        pipeline.close()
        store.close()
        _GOOD_DATABASE["bytes"] = config.paths.database.read_bytes()
    return _GOOD_DATABASE["bytes"]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("garbage", "not a usable SQLite database"),
        ("truncated", "not a usable SQLite database"),
        ("header", "not a usable SQLite database"),
        ("a page in the middle", "not touching it"),
        ("the last page", "not touching it"),
        ("foreign", "this SQLite file belongs to something else"),
        ("newer", "written by a newer aggregator"),
    ],
)
def test_a_damaged_or_foreign_database_is_refused_untouched(
    feed_server: FeedServer, make_config, tmp_path: Path, kind: str, message: str
) -> None:
    good = good_database(feed_server, make_config)
    config_path = tmp_path / "cli.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "database": "state/aggregator.db",
                "sources": [{"name": "news", "url": feed_server.url("/good")}],
            }
        )
    )
    database = tmp_path / "state/aggregator.db"
    database.parent.mkdir()
    if kind == "foreign":
        with contextlib.closing(sqlite3.connect(database)) as db, db:
            db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
            db.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    elif kind == "newer":
        database.write_bytes(good)
        with contextlib.closing(sqlite3.connect(database)) as db, db:
            db.execute("INSERT INTO schema_version (version) VALUES (999)")
    else:
        database.write_bytes(damaged(kind, good))
    for side in ("-wal", "-shm"):
        Path(f"{database}{side}").unlink(missing_ok=True)
    before = database.read_bytes()
    for command in ("update", "sources"):
        result = run_cli(command, "--config", str(config_path))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"aggregator: {database}: ")
        assert message in result.stderr
        assert database.read_bytes() == before, f"{command} changed the file"
