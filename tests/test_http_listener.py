"""The HTTP listener's bounds, on 127.0.0.1 with a trivial application and small limits:
message framing (no request is ever read out of another's body), header and body sizes,
idle, request and send timeouts, the connection cap and the worker pool. The same attacks
against the real daemon are in tests/e2e/test_daemon_attacks.py."""

from __future__ import annotations

import logging
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus

import pytest

from aggregator.service.http_listener import (
    HttpListener,
    HttpReply,
    HttpRequest,
    Limits,
    connection_cap,
)

SMALL = Limits(
    max_connections=8,
    max_head=4096,
    max_body=1024,
    idle_timeout=0.5,
    request_timeout=0.6,
    send_timeout=0.5,
    workers=2,
)


def echo(request: HttpRequest) -> HttpReply:
    """The target back, as text; /big is 20 MB."""
    if request.target == "/big":
        return HttpReply(HTTPStatus.OK, [("Content-Type", "text/plain")], b"x" * 20_000_000)
    return HttpReply(HTTPStatus.OK, [("Content-Type", "text/plain")], request.target.encode())


@pytest.fixture
def serve() -> Iterator[Callable[..., HttpListener]]:
    started: list[HttpListener] = []

    def start(
        handle: Callable[[HttpRequest], HttpReply] = echo, limits: Limits = SMALL
    ) -> HttpListener:
        listener = HttpListener("127.0.0.1", 0, handle, "test", limits)
        listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


def exchange(listener: HttpListener, raw: bytes, wait: float = 3.0) -> bytes:
    """Send raw bytes, read until the listener closes the connection."""
    with socket.create_connection(listener.address, timeout=wait) as sock:
        sock.sendall(raw)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def statuses(raw: bytes) -> list[int]:
    """The status of every answer in `raw` (the bodies here never hold "HTTP/1.1 ")."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
FRAMING_CASES = [
    # id, raw request(s) -> statuses answered, in order (the connection ends after them)
    ("plain GET", b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", [200]),
    (
        "GET with a Content-Length body holding a request",
        b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(SMUGGLED), SMUGGLED),
        [200],
    ),
    (
        "GET with a chunked body holding a request",
        b"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
        % (len(SMUGGLED), SMUGGLED),
        [200],
    ),
    (
        "body then a real second request",
        b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
        [200, 200],
    ),
    (
        "pipelined requests answered in order",
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
        [200, 200],
    ),
    (
        "Content-Length and Transfer-Encoding",
        b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLED,
        [400],
    ),
    (
        "Transfer-Encoding in HTTP/1.0",
        b"GET /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        [400],
    ),
    (
        "unknown transfer coding",
        b"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + SMUGGLED,
        [501],
    ),
    (
        "two different Content-Lengths",
        b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        [400],
    ),
    (
        "space before the colon",
        b"GET /a HTTP/1.1\r\nHost : x\r\n\r\n" + SMUGGLED,
        [400],
    ),
    ("no Host in 1.1", b"GET /a HTTP/1.1\r\n\r\n" + SMUGGLED, [400]),
    ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", [400]),
    (
        "declared body over the limit",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n" + b"a" * 1025,
        [413],
    ),
    (
        "chunked body over the limit",
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"200\r\n"
        + b"a" * 512
        + b"\r\n"
        + b"200\r\n"
        + b"a" * 512
        + b"\r\n"
        + b"1\r\na\r\n0\r\n\r\n",
        [413],
    ),
    (
        "head over the limit in one field",
        b"GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n",
        [431],
    ),
    (
        "head over the limit in many fields",
        b"GET /a HTTP/1.1\r\nHost: x\r\n" + b"X-Small: aaaaaaaaaaaaaaaa\r\n" * 200 + b"\r\n",
        [431],
    ),
    (
        "expecting 100-continue, body sent anyway",
        b"GET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        [200],
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [case[1:] for case in FRAMING_CASES],
    ids=[case[0] for case in FRAMING_CASES],
)
def test_framing(serve: Callable[..., HttpListener], raw: bytes, expected: list[int]) -> None:
    """RFC 9112 6: a body is read by its own framing and dropped, never taken for a request;
    what a proxy could frame differently is refused and the connection closed."""
    answer = exchange(serve(), raw)
    assert statuses(answer) == expected
    assert b"/smuggled" not in answer
    if expected[-1] >= 400:
        assert b"Connection: close" in answer


def test_a_client_waiting_for_100_continue_is_asked_for_its_body(
    serve: Callable[..., HttpListener],
) -> None:
    with socket.create_connection(serve().address, timeout=5) as sock:
        sock.sendall(
            b"PUT /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
        )
        assert statuses(sock.recv(1000)) == [100]
        sock.sendall(b"abc")
        assert statuses(sock.recv(1000)) == [200]


def test_a_silent_connection_is_closed_after_the_idle_timeout(
    serve: Callable[..., HttpListener],
) -> None:
    listener = serve()
    started = time.monotonic()
    with socket.create_connection(listener.address, timeout=5) as sock:
        assert sock.recv(100) == b""  # closed without a word
    assert 0.4 < time.monotonic() - started < 2


def test_a_dribbled_request_gets_408_at_its_deadline(serve: Callable[..., HttpListener]) -> None:
    """Bytes arriving in time do not extend a request: it must be whole within the timeout."""
    listener = serve()
    with socket.create_connection(listener.address, timeout=5) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = b""
        for _ in range(30):  # bounded: 3 s at most
            try:
                sock.sendall(b"X")
            except OSError:
                break
            sock.settimeout(0.1)
            try:
                if chunk := sock.recv(1000):
                    answer += chunk
                else:
                    break
            except TimeoutError:
                continue
        took = time.monotonic() - started
    assert statuses(answer) == [408]
    assert took < 2


def test_a_client_that_does_not_read_is_dropped_after_the_send_timeout(
    serve: Callable[..., HttpListener],
) -> None:
    listener = serve()
    with socket.create_connection(listener.address, timeout=5) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while listener.open_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.open_connections() == 0


def test_past_the_cap_the_longest_waiting_connection_goes(
    serve: Callable[..., HttpListener],
) -> None:
    listener = serve(limits=Limits(max_connections=8, idle_timeout=30))
    idle = [socket.create_connection(listener.address, timeout=5) for _ in range(8)]
    try:
        time.sleep(0.2)
        assert listener.open_connections() == 8
        answer = exchange(listener, b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert statuses(answer) == [200]
        assert idle[0].recv(100) == b""  # the oldest was closed
        idle[-1].settimeout(0.2)
        with pytest.raises(TimeoutError):
            idle[-1].recv(100)  # the newest still open
    finally:
        for sock in idle:
            sock.close()


def test_past_the_cap_with_every_connection_busy_a_newcomer_gets_503(
    serve: Callable[..., HttpListener],
) -> None:
    release = threading.Event()

    def slow(request: HttpRequest) -> HttpReply:
        release.wait(5)
        return echo(request)

    listener = serve(slow, Limits(max_connections=2, workers=2))
    busy = [socket.create_connection(listener.address, timeout=5) for _ in range(2)]
    try:
        for sock in busy:
            sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        answer = exchange(listener, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert statuses(answer) == [503]
        release.set()
        assert statuses(busy[0].recv(1000)) == [200]
    finally:
        release.set()
        for sock in busy:
            sock.close()


def test_threads_do_not_grow_with_clients(serve: Callable[..., HttpListener]) -> None:
    def slow(request: HttpRequest) -> HttpReply:
        time.sleep(0.01)
        return echo(request)

    before = threading.active_count()
    listener = serve(slow, Limits(workers=3))
    socks = [socket.create_connection(listener.address, timeout=10) for _ in range(200)]
    try:
        for sock in socks:
            sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        peak = threading.active_count()
        answers = [sock.recv(1000) for sock in socks]
        peak = max(peak, threading.active_count())
    finally:
        for sock in socks:
            sock.close()
    assert all(statuses(answer) == [200] for answer in answers)
    assert peak - before <= 1 + 3  # the loop's thread and the workers


def test_stop_closes_every_connection(serve: Callable[..., HttpListener]) -> None:
    listener = serve(limits=Limits(idle_timeout=30))
    sock = socket.create_connection(listener.address, timeout=5)
    try:
        time.sleep(0.1)
        listener.stop()
        assert sock.recv(100) == b""
        with pytest.raises(OSError):
            socket.create_connection(listener.address, timeout=1).close()
    finally:
        sock.close()


def test_stop_logs_no_error_for_the_connections_it_cancels(
    serve: Callable[..., HttpListener], caplog: pytest.LogCaptureFixture
) -> None:
    """On Python 3.11 asyncio's own callback on a cancelled connection task logged
    "Exception in callback ... CancelledError" with a traceback, at a daemon's SIGTERM
    while a client was connected (fixed in 3.12): a connection ends uncancelled."""
    listener = serve(limits=Limits(idle_timeout=30))
    socks = [socket.create_connection(listener.address, timeout=5) for _ in range(3)]
    try:
        socks[0].sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")  # one answered, kept alive
        assert statuses(socks[0].recv(1000)) == [200]
        socks[1].sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n")  # one half sent
        time.sleep(0.1)
        with caplog.at_level(logging.DEBUG):
            listener.stop()
    finally:
        for sock in socks:
            sock.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


CAP_CASES = [
    ("the default at a high limit", 1024, 65536, 1024),
    ("half of systemd's default soft limit", 1024, 1024, 512),
    ("a tiny limit", 1024, 10, 5),
    ("never zero", 1024, 1, 1),
]


@pytest.mark.parametrize(
    ("wanted", "open_files", "expected"),
    [case[1:] for case in CAP_CASES],
    ids=[case[0] for case in CAP_CASES],
)
def test_connection_cap(wanted: int, open_files: int, expected: int) -> None:
    assert connection_cap(wanted, open_files) == expected


def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 512:
        pytest.skip(f"the hard limit here is {hard}")
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))\n"
        "from aggregator.service.http_listener import raise_open_files_limit\n"
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["512", "(512,", "512)"]
