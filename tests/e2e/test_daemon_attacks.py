"""`aggregator run` in a subprocess under the attacks of the security review (issue 13,
point 5), all from 127.0.0.1 and bounded in count and time: many idle and dribbling
connections (slowloris) past the descriptor limit, a flood of huge request heads, and bodies
holding requests (desync). Throughout, a normal reader's GET is answered in under a second,
and the daemon's threads, descriptors and memory stay bounded; polling and publishing go on.

The listener's bounds one by one are in tests/test_http_listener.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer
from daemonworld import RunningDaemon, local, wait_for, write_config
from feedworld import rsshub_feed, rsshub_item

# The daemon starts as systemd starts a service without LimitNOFILE= (1,024 soft), here with
# a hard limit of 2,048 it raises itself to. Its connection cap is then 1,024.
OPEN_FILES = (1024, 2048)
IDLE = 1100  # connections that send nothing: the count that exhausted 1,024 descriptors
DRIBBLING = 400  # connections sending one byte of an endless head every half second
ATTACK_SECONDS = 8.0
MAX_OPENS = 40_000  # connections an attack opens in all, at most
FLOOD_CLIENTS = 60
FLOOD_SECONDS = 6.0
NORMAL_EVERY = 0.2  # seconds between two normal GETs during an attack
HEAD_LINE = b"X-Filler: " + b"a" * 64_000 + b"\r\n"  # 97 of them: ~6 MB, under 64 KB each


class Sample:
    """The daemon's main process, as /proc shows it."""

    def __init__(self, pid: int) -> None:
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if ":" in line
        )
        self.threads = int(fields["Threads"])
        self.rss_mb = int(fields["VmRSS"].split()[0]) / 1024
        self.peak_rss_mb = int(fields["VmHWM"].split()[0]) / 1024
        self.fds = len(os.listdir(f"/proc/{pid}/fd"))


class NormalReader:
    """GETs the merged feed on a new connection every NORMAL_EVERY s, timing each answer."""

    def __init__(self, daemon: RunningDaemon) -> None:
        self.daemon = daemon
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> NormalReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = self.daemon.request("/feed.xml", Accept_Encoding="gzip")
                if answer.status != 200:
                    self.failures.append(f"HTTP {answer.status}")
            except OSError as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - started)
            self.samples.append(Sample(self.daemon.process.pid))
            self._stop.wait(NORMAL_EVERY)

    def report(self) -> str:
        worst = max(self.latencies)
        peak = max(s.peak_rss_mb for s in self.samples)
        return (
            f"{len(self.latencies)} GETs, median {statistics.median(self.latencies) * 1000:.0f}"
            f" ms, slowest {worst * 1000:.0f} ms; daemon at most "
            f"{max(s.threads for s in self.samples)} threads, "
            f"{max(s.fds for s in self.samples)} fds, {peak:.0f} MB peak RSS"
        )


class Slowloris:
    """Holds `idle` silent and `dribbling` slow connections open for `seconds`, opening a
    new one for each the daemon closes (MAX_OPENS in all)."""

    def __init__(self, address: tuple[str, int], idle: int, dribbling: int) -> None:
        self.address = address
        self.idle, self.dribbling = idle, dribbling
        self.opened = 0
        self.closed_by_server = 0
        self.refused = 0

    def _open(self, dribble: bool) -> socket.socket | None:
        if self.opened >= MAX_OPENS:
            return None
        try:
            sock = socket.create_connection(self.address, timeout=2)
            if dribble:
                sock.sendall(b"GET /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        except OSError:
            self.refused += 1
            return None
        sock.setblocking(False)
        self.opened += 1
        return sock

    def run(self, seconds: float) -> None:
        held: list[tuple[socket.socket, bool]] = []
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                wanted = [False] * (self.idle - sum(1 for _, d in held if not d))
                wanted += [True] * (self.dribbling - sum(1 for _, d in held if d))
                for dribble in wanted:
                    if time.monotonic() >= deadline:
                        break
                    if (sock := self._open(dribble)) is not None:
                        held.append((sock, dribble))
                alive = []
                for sock, dribble in held:
                    if self._still_open(sock, dribble):
                        alive.append((sock, dribble))
                    else:
                        self.closed_by_server += 1
                        sock.close()
                held = alive
                time.sleep(0.5)
        finally:
            for sock, _ in held:
                sock.close()

    @staticmethod
    def _still_open(sock: socket.socket, dribble: bool) -> bool:
        try:
            if dribble:
                sock.send(b"a")
            return sock.recv(4096) != b""  # an answer (408) ends it too
        except BlockingIOError:
            return True
        except OSError:
            return False


def flood(address: tuple[str, int], seconds: float) -> int:
    """FLOOD_CLIENTS connections at a time, each sending 97 header lines of 64 KB; the
    number of heads refused (431) by the daemon."""
    head = b"GET /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\n" + HEAD_LINE * 97 + b"\r\n"
    refused = [0]
    deadline = time.monotonic() + seconds

    def one() -> None:
        for _ in range(200):  # bounded even if each try is quick
            if time.monotonic() >= deadline:
                return
            try:
                with socket.create_connection(address, timeout=5) as sock:
                    with contextlib.suppress(OSError):  # cut off mid-head: the answer
                        sock.sendall(head)  # may still be there
                    if b" 431 " in sock.recv(100):
                        refused[0] += 1
            except OSError:
                time.sleep(0.05)

    threads = [threading.Thread(target=one) for _ in range(FLOOD_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    return refused[0]


def answers(address: tuple[str, int], raw: bytes) -> list[bytes]:
    """The status lines the daemon sends back to `raw` before it closes or goes quiet."""
    with socket.create_connection(address, timeout=2) as sock:
        sock.sendall(raw)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", data)


@pytest.fixture
def enough_descriptors() -> Iterator[None]:
    """The attacks hold ~1,500 sockets on this side too, and the daemon is started with a
    hard limit of 2,048."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if wanted < 4096:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def daemon(feed_server: FeedServer, tmp_path: Path) -> Iterator[RunningDaemon]:
    feed_server.serve("/news", rsshub_feed([rsshub_item(1), rsshub_item(2)]))
    config = write_config(tmp_path, [{"name": "news", "url": local(feed_server, "/news")}])
    running = RunningDaemon(config, open_files=OPEN_FILES)
    try:
        wait_for(
            lambda: len(feedparser.parse(running.request("/feed.xml").body).entries) == 2,
            "the merged feed with two entries",
        )
        yield running
    finally:
        running.close()
        print(f"--- {running.log} ---\n{running.text()}")  # shown when the test failed


def served_entries(daemon: RunningDaemon) -> int:
    return len(feedparser.parse(daemon.request("/feed.xml").body).entries)


def test_slowloris_past_the_descriptor_limit(
    enough_descriptors: None, daemon: RunningDaemon, feed_server: FeedServer
) -> None:
    limits = Path(f"/proc/{daemon.process.pid}/limits").read_text()
    open_files = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert open_files.split()[3:5] == ["2048", "2048"], open_files  # raised to the hard limit
    before = Sample(daemon.process.pid)
    attack = Slowloris((daemon.host, daemon.port), IDLE, DRIBBLING)
    attacker = threading.Thread(target=attack.run, args=(ATTACK_SECONDS,))
    with NormalReader(daemon) as reader:
        attacker.start()
        # Polling and publishing go on: a new entry reaches the served feed mid-attack.
        time.sleep(1)
        feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(1, 4)]))
        wait_for(lambda: served_entries(daemon) == 3, "the third entry, during the attack")
        attacker.join(ATTACK_SECONDS + 30)
    print(
        f"slowloris: {attack.opened} connections opened, {attack.closed_by_server} closed by "
        f"the daemon, {attack.refused} refused; {reader.report()}"
    )
    assert not reader.failures, reader.failures
    assert max(reader.latencies) < 1.0, reader.report()
    assert attack.opened >= IDLE + DRIBBLING
    assert attack.closed_by_server > 0  # the cap made room for the normal reader
    assert max(s.threads for s in reader.samples) <= before.threads + 4  # the workers
    assert max(s.fds for s in reader.samples) < 2048 - 256  # room left for the daemon's work
    log = daemon.text()
    assert "Too many open files" not in log and "Traceback" not in log
    assert "connections open, the cap" in log
    # Afterwards the descriptors are given back.
    wait_for(lambda: Sample(daemon.process.pid).fds <= before.fds + 8, "the fds to be back")
    assert daemon.stop()[0] == 0


def test_a_flood_of_huge_heads_costs_no_memory(
    enough_descriptors: None, daemon: RunningDaemon
) -> None:
    before = Sample(daemon.process.pid)
    with NormalReader(daemon) as reader:
        refused = flood((daemon.host, daemon.port), FLOOD_SECONDS)
    after = Sample(daemon.process.pid)
    print(
        f"header flood: {refused} heads refused; RSS {before.rss_mb:.0f} MB before, "
        f"{after.rss_mb:.0f} MB after; {reader.report()}"
    )
    assert refused > 0
    assert not reader.failures, reader.failures
    assert max(reader.latencies) < 1.0, reader.report()
    assert after.peak_rss_mb - before.rss_mb < 100  # ThreadingHTTPServer: +1.7-3.3 GB
    assert after.rss_mb - before.rss_mb < 50
    assert daemon.stop()[0] == 0


SMUGGLED = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
DESYNC_CASES = [
    (
        "Content-Length body",
        b"GET /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
        % (len(SMUGGLED), SMUGGLED),
        [b"HTTP/1.1 200 OK"],
    ),
    (
        "chunked body",
        b"GET /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED),
        [b"HTTP/1.1 200 OK"],
    ),
    (
        "both framings",
        b"GET /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        [b"HTTP/1.1 400 Bad Request"],
    ),
    (
        "body then a real request",
        b"HEAD /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nab"
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"],
    ),
]


def test_a_body_is_never_read_as_a_request(daemon: RunningDaemon) -> None:
    """Behind a proxy, a GET's body answered as a second request desynchronises every
    answer after it. Each case on one connection; the daemon answers only what was asked."""
    for name, raw, expected in DESYNC_CASES:
        assert answers((daemon.host, daemon.port), raw) == expected, name
    assert daemon.request("/healthz").status == 200
    assert daemon.stop()[0] == 0
