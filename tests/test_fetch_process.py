"""The fetch process of a pass of quick polls (poll/fetch_process.py, threads.py's
`LentPollThread`): every source polled once whoever fetches it, slow fetches and a dead
process handed back to the pass's threads, and the real `update` forking it."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import SimpleQueue

import pytest
import yaml
from conftest import run_cli
from daemonworld import alive
from feedworld import rsshub_feed, rsshub_item

from aggregator.models import PollResult, Source
from aggregator.poll.fetch_process import Fetched, FetchOrder, FetchProcess, fetch_ordered
from aggregator.poll.threads import (
    LEND_FROM,
    LENT_CHUNK,
    LentPollThread,
    PassWork,
    PollThread,
    SourceQueue,
    should_lend,
)
from aggregator.sources.fetch import FetchLimits, make_session
from aggregator.sources.reach import reach_for
from aggregator.store.rows import SourceState

BODY = rsshub_feed([rsshub_item(1)])
ETAG = '"v1"'
LARGE = b"<!--" + b"x" * 2**20 + b"-->"
# How slow a slow source is, and how slow a fetch must be to end its chunk in these tests:
# far apart, so that a loaded machine does not make a quick fetch look slow.
SLOW_DELAY = 1.0
SLOW_FETCH = 0.5


class Feeds:
    """`/feed/<i>` with an ETag (304 when it is sent back), answered as quickly as a server
    nearby answers (asyncio, bytes made once), since a pass lends to its fetch process only
    while its polls do not wait. Counts the requests of each path and of each client
    process (`clients`; which process holds a connection is looked up beside it, not before
    answering). `slow` paths answer after `SLOW_DELAY`, `large` ones with ~1 MB more;
    `on_connection(pid)` runs for each connection once its process is known, and may drop
    it by raising ConnectionAbortedError."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.forked: set[int] = set()  # client processes that `aggregator update` started
        self.slow: set[str] = set()
        self.large: set[str] = set()
        self.stall_forked = False  # answer the processes `update` started only slowly
        self.on_connection: Callable[[int], None] = lambda pid: None
        self._requests_by_port: Counter[int] = Counter()
        self._connections: set[asyncio.Task] = set()
        self._owners: dict[int, int | None] = {}
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def clients(self) -> Counter[int | None]:
        """Requests per client process (None: one that ended before it was looked up)."""
        counts: Counter[int | None] = Counter()
        for port, count in list(self._requests_by_port.items()):
            counts[self._owners.get(port)] += count
        return counts

    def forget(self) -> None:
        self.requests.clear()
        self._requests_by_port.clear()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shut_down(self) -> None:
        self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("peername")[1]
        looked_up = asyncio.ensure_future(self._look_up(port, writer))
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split()[1].decode()
                tags = [line for line in lines if line.lower().startswith(b"if-none-match:")]
                self.requests[path] += 1
                self._requests_by_port[port] += 1
                if path in self.slow or (
                    self.stall_forked and self._owners.get(port) in self.forked
                ):
                    await asyncio.sleep(SLOW_DELAY)
                if tags and tags[0].split(b":", 1)[1].strip() == ETAG.encode():
                    writer.write(NOT_MODIFIED)
                else:
                    writer.write(LARGE_FEED if path in self.large else FEED)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            await asyncio.gather(looked_up, return_exceptions=True)
            writer.close()

    async def _look_up(self, port: int, writer: asyncio.StreamWriter) -> None:
        pid = await self._loop.run_in_executor(None, owner_of, port)
        self._owners[port] = pid
        if pid is None:
            return
        if _started_by_update(pid):
            self.forked.add(pid)
        try:
            self.on_connection(pid)
        except ConnectionAbortedError:
            writer.transport.abort()


def _response(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nETag: {ETAG}\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/rss+xml\r\n"
    return head.encode() + b"\r\n" + body


NOT_MODIFIED = _response("304 Not Modified", b"")
FEED = _response("200 OK", BODY)
LARGE_FEED = _response("200 OK", BODY + LARGE)


def _started_by_update(pid: int) -> bool:
    """Whether `pid` is a process that `aggregator update` started."""
    try:
        parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        return b"-m\0aggregator\0update\0" in Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        return False


def owner_of(port: int) -> int | None:
    """The process that holds the client end of a connection from 127.0.0.1:`port`: this
    one, or one it started (an `update`), or one that started (its fetch process). Only
    those are looked through, so that the lookup takes a millisecond, not the server's time."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}":
            inode = fields[9]
    if inode is None:
        return None  # gone already
    target = f"socket:[{inode}]"
    for pid in _descendants(os.getpid()):
        try:
            if any(os.readlink(fd) == target for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
        except OSError:
            continue
    return os.getpid()


def _descendants(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in map(int, children.read_text().split()):
                found += [child, *_descendants(child)]
    return found


@pytest.fixture
def feeds() -> Iterator[Feeds]:
    server = Feeds()
    yield server
    server.close()


LIMITS = FetchLimits(user_agent="aggregator-test", connect_timeout=2, read_timeout=5)


@pytest.mark.parametrize(
    ("changes", "lend"),
    [
        ({}, True),
        ({"sources": LEND_FROM - 1}, False),
        ({"workers": 1}, False),
        ({"parse_processes": 0}, False),
        ({"cores": 1}, False),
        ({"threads": 2}, False),
        ({"platform": "darwin"}, False),
    ],
    ids=[
        "a long pass on Linux with two cores",
        "a pass too short to use it",
        "one poll at a time asked for",
        "the plain path: no processes",
        "no second core",
        "other threads: forking is unsafe",
        "not Linux",
    ],
)
def test_should_lend(changes: dict, lend: bool):
    settings = {
        "sources": LEND_FROM,
        "workers": 8,
        "parse_processes": 2,
        "cores": 2,
        "threads": 1,
        "platform": "linux",
        **changes,
    }
    sources = settings.pop("sources")
    assert should_lend(sources, **settings) is lend


def _sources(count: int, base: str = "http://127.0.0.1:9") -> list[Source]:
    return [Source(name=f"s{i}", url=f"{base}/feed/{i}") for i in range(count)]


def _no_states(names: list[str]) -> list[SourceState]:
    return []


def test_a_thread_that_finds_nothing_left_waits_for_lent_sources_to_settle():
    queue = SourceQueue(_sources(30), _no_states, chunk=500)
    lent = queue.lend(LENT_CHUNK)
    assert [index for index, _, _ in lent] == list(range(LENT_CHUNK))
    taken: list[int] = []

    def take() -> None:
        while (job := queue.take()) is not None:
            taken.append(job[0])

    thread = threading.Thread(target=take)
    thread.start()
    time.sleep(0.2)
    assert taken == list(range(LENT_CHUNK, 30)) and thread.is_alive()
    queue.settle(10, lent[10:])  # ten polled, the rest given back
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert taken == list(range(LENT_CHUNK, 30)) + list(range(10, LENT_CHUNK))


def test_closing_the_queue_wakes_a_waiting_thread():
    queue = SourceQueue(_sources(3), _no_states, chunk=500)
    queue.lend(3)
    ended = threading.Event()
    thread = threading.Thread(target=lambda: (queue.take(), ended.set()))
    thread.start()
    assert not ended.wait(0.2)
    queue.close()
    assert ended.wait(5)


class Pass:
    """A pass's threads by hand: the lent thread with a spawned fetch process (this process
    runs threads, so it must not fork), and a poll thread when asked for. The poll records
    which sources it was given a fetch for, and polls nothing else: a poll is its fetch."""

    def __init__(
        self, feeds: Feeds, count: int, limits: FetchLimits = LIMITS, slow: float = 10.0
    ) -> None:
        self.limits = limits
        self.session = make_session(limits)  # the poll thread's, as a pass has one
        self.sources = _sources(count, feeds.base)
        self.queue = SourceQueue(self.sources, self._states, chunk=500)
        self.results: list[PollResult | None] = [None] * count
        self.finished: SimpleQueue[int] = SimpleQueue()
        self.lending, self.grown, self.stop = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        self.fetched_there: dict[str, int | None] = {}
        self.process = FetchProcess(limits, slow, start_method="spawn")
        work = PassWork(self.poll, self.queue, self.results, self.finished, self.stop, lambda: None)
        self.lent = LentPollThread(work, self.order, self.lending, self.grown, self.process)
        self.local = PollThread(work)

    @staticmethod
    def _states(names: list[str]) -> list[SourceState]:
        return [SourceState(name, "") for name in names]

    def order(self, source: Source, state: SourceState | None) -> FetchOrder:
        assert state is not None
        return FetchOrder(source.url, state.http, reach_for(source.url, allow_private=True))

    def poll(self, source: Source, state: SourceState | None, fetch: Fetched | None) -> PollResult:
        if fetch is None:
            fetch = fetch_ordered(self.session, self.order(source, state), self.limits)
            self.fetched_there[source.name] = None
        else:
            self.fetched_there[source.name] = fetch.result.status
        assert fetch.result.status == 200, fetch.result
        return PollResult(source=source.name, status="new")

    def run(self, *, local_after_lending: bool = True) -> None:
        if not self.lent.is_alive():
            self.lent.start()
        if local_after_lending:
            deadline = time.monotonic() + 30
            while self.queue._lent == 0 and self.lent.is_alive():
                assert time.monotonic() < deadline
                time.sleep(0.01)
        self.local.start()
        for thread in (self.local, self.lent):
            thread.join(timeout=60)
            assert not thread.is_alive()
            assert thread.failure is None
        self.process.close()
        assert sorted(self.finished.get() for _ in range(self.finished.qsize())) == list(
            range(len(self.sources))
        )


def test_lent_sources_are_fetched_by_the_process_and_each_polled_once(feeds: Feeds):
    run = Pass(feeds, 60)
    run.lending.set()
    run.run()
    assert set(run.fetched_there) == {s.name for s in run.sources}
    there = [name for name, status in run.fetched_there.items() if status is not None]
    assert set(there) >= {f"s{i}" for i in range(LENT_CHUNK)}  # the first chunk, whole
    assert all(count == 1 for count in feeds.requests.values())
    assert len(feeds.requests) == 60
    assert run.process._process.pid in feeds.clients
    assert set(feeds.clients) <= {run.process._process.pid, os.getpid()}
    assert (os.getpid() in feeds.clients) == (len(there) < 60)


def test_a_slow_fetch_ends_its_chunk_and_the_rest_go_back(feeds: Feeds):
    """The fourth source answers slowly: the process sends back the first four, the other
    21 of that chunk are polled by the pass's thread, and nothing more is lent."""
    feeds.slow.add("/feed/3")
    run = Pass(feeds, 80, slow=SLOW_FETCH)
    run.lending.set()
    run.run()
    fetched = run.fetched_there
    assert [fetched[f"s{i}"] for i in range(4)] == [200] * 4
    assert [fetched[f"s{i}"] for i in range(4, LENT_CHUNK)] == [None] * (LENT_CHUNK - 4)
    # Besides those four, only the chunk already out when the slow one came back.
    assert sum(1 for status in fetched.values() if status is not None) <= 4 + LENT_CHUNK
    assert all(count == 1 for count in feeds.requests.values()) and len(feeds.requests) == 80


def test_a_chunk_ends_once_its_bodies_pass_the_size_of_one(feeds: Feeds):
    """Large feeds: a chunk's bodies never add up to much more than `max_body`, here three
    bodies of 1 MiB against 2.5 MiB; the rest of the chunk goes back."""
    feeds.large.update(f"/feed/{i}" for i in range(30))
    limits = FetchLimits(user_agent="aggregator-test", max_body=5 * 2**19)
    run = Pass(feeds, 30, limits)
    run.lending.set()
    run.run()
    assert [run.fetched_there[f"s{i}"] for i in range(4)] == [200, 200, 200, None]
    assert len(run.fetched_there) == 30


def test_a_fetch_process_that_dies_hands_its_sources_back(
    feeds: Feeds, caplog: pytest.LogCaptureFixture
):
    """Killed while it waits on the first source of its first chunk: both chunks lent go
    back to the pass's thread, which polls every source."""
    feeds.slow.add("/feed/0")
    run = Pass(feeds, 60)
    run.lending.set()
    run.lent.start()
    deadline = time.monotonic() + 30
    while feeds.requests["/feed/0"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    run.process._process.kill()
    with caplog.at_level(logging.WARNING):
        run.run(local_after_lending=False)
    assert set(run.fetched_there.values()) == {None}
    assert len(run.fetched_there) == 60
    assert "the fetch process failed" in caplog.text


def test_a_fetch_process_that_never_starts_is_reported(
    feeds: Feeds, caplog: pytest.LogCaptureFixture
):
    run = Pass(feeds, 30)
    run.process._process.kill()
    run.lending.set()
    with caplog.at_level(logging.WARNING):
        run.run(local_after_lending=False)
    assert set(run.fetched_there.values()) == {None} and len(run.fetched_there) == 30
    assert "the fetch process failed (it did not start)" in caplog.text


def test_nothing_is_lent_before_lending_nor_once_the_pass_grew(feeds: Feeds):
    run = Pass(feeds, 30)
    run.grown.set()
    run.run(local_after_lending=False)
    assert set(run.fetched_there.values()) == {None} and len(run.fetched_there) == 30


# -- the real command -----------------------------------------------------------------------

SOURCES = LEND_FROM + 50


def _config(folder: Path, base: str) -> Path:
    path = folder / "config.yaml"
    data = {
        "database": "data/aggregator.db",
        "documents": "documents",
        "feed": {"folder": "public"},
        "sources": [{"name": f"s{i}", "url": f"{base}/feed/{i}"} for i in range(SOURCES)],
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _fetched_at(folder: Path) -> dict[str, str]:
    """When each source was last fetched, as stored."""
    with contextlib.closing(sqlite3.connect(folder / "data/aggregator.db")) as db:
        return dict(db.execute("SELECT name, last_fetch FROM sources"))


# Whether a pass lends depends on its polls being quick, and on a loaded machine a pass may
# rightly decide that they are not: the tests below run `update` again until one lends.
LENDING_ATTEMPTS = 5


def _every_source_polled(done: subprocess.CompletedProcess, before: dict[str, str], folder: Path):
    assert done.returncode == 0, done.stderr
    assert re.search(rf"{SOURCES} sources: 0 new, 0 changed, 0 failed", done.stdout)
    after = _fetched_at(folder)
    assert [name for name in after if after[name] == before[name]] == []


def _update_until_lent(
    config: Path, feeds: Feeds, lent: Callable[[], bool]
) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """The first `update` whose pass lent sources to its fetch process, and when each source
    was fetched before it; every pass that did not lend must have polled every source."""
    for _ in range(LENDING_ATTEMPTS):
        feeds.forget()
        before = _fetched_at(config.parent)
        done = run_cli("update", "--config", str(config))
        if lent():
            return done, before
        _every_source_polled(done, before, config.parent)
    pytest.fail(f"none of {LENDING_ATTEMPTS} passes lent sources to a fetch process")


def test_update_forks_a_fetch_process_for_a_pass_of_quick_polls(feeds: Feeds, tmp_path: Path):
    config = _config(tmp_path, feeds.base)
    assert run_cli("update", "--config", str(config)).returncode == 0
    done, before = _update_until_lent(
        config, feeds, lambda: any(pid in feeds.forked for pid in feeds.clients)
    )
    _every_source_polled(done, before, tmp_path)
    assert len(feeds.requests) == SOURCES and set(feeds.requests.values()) == {1}
    assert len(feeds.clients) == 2, feeds.clients  # `update` and the process it forked


def test_update_whose_fetch_process_is_killed_polls_every_source(feeds: Feeds, tmp_path: Path):
    """The fetch process is killed (SIGKILL) as it connects: what it was lent goes back to
    `update`'s own thread, and every source is polled."""
    config = _config(tmp_path, feeds.base)
    assert run_cli("update", "--config", str(config)).returncode == 0
    killed: list[int] = []

    def kill_the_fetch_process(pid: int) -> None:
        if not killed and pid in feeds.forked:
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)
            raise ConnectionAbortedError  # the handler drops the connection

    feeds.on_connection = kill_the_fetch_process
    done, before = _update_until_lent(config, feeds, lambda: bool(killed))
    _every_source_polled(done, before, tmp_path)
    assert "the fetch process failed" in done.stderr


def test_a_fetch_process_ends_when_update_is_killed(feeds: Feeds, tmp_path: Path):
    """`update` killed (SIGKILL) while its fetch process fetches: the process does not
    outlive it, and while it is still there the next `update` may start (it holds no copy
    of the instance lock)."""
    config = _config(tmp_path, feeds.base)
    assert run_cli("update", "--config", str(config)).returncode == 0
    orphans: list[int] = []
    lock_free: list[bool] = []

    def kill_update(pid: int) -> None:
        if orphans or pid not in feeds.forked:
            return
        orphans.append(pid)
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(parent, signal.SIGKILL)
        # Its threads close its files as they end, a moment after it is killed.
        deadline = time.monotonic() + 0.5
        with open(tmp_path / "data/aggregator.db.lock", "a") as lock:
            while time.monotonic() < deadline:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    time.sleep(0.002)
                else:
                    lock_free.append(alive(pid))  # taken while the fetch process lives
                    return
        lock_free.append(False)

    feeds.on_connection = kill_update
    feeds.stall_forked = True  # so that the fetch process is still there when update is gone
    done, _ = _update_until_lent(config, feeds, lambda: bool(orphans))
    assert done.returncode == -signal.SIGKILL
    assert lock_free == [True]
    deadline = time.monotonic() + 10
    while alive(orphans[0]):
        assert time.monotonic() < deadline, "the fetch process outlived update"
        time.sleep(0.05)
