"""HTTP/1.1 on a socket for the built-in server (server.py): every connection bounded in
number, time, header size and body, whatever a client sends or withholds.

The stdlib's ThreadingHTTPServer this replaces gave each connection a thread, kept it for as
long as the client dribbled bytes, read headers without a total bound and took the body of a
GET for the next request. Here:

- One event-loop thread (asyncio, epoll) holds every connection: a connection costs a socket
  and a few kilobytes, never a thread. The application's `handle` runs on a fixed pool of
  `Limits.workers` threads, one request per connection at a time (pipelined requests wait
  their turn, unread), so the number of threads never grows with clients.
- At most `max_connections` connections are open, kept below the process's limit on open
  files (`connection_cap`), so clients can never take the descriptors that the database,
  the fetches and the publishing need. A connection past the cap closes the one that has
  waited longest for its request (an idle keep-alive or a slow sender): idle and dribbling
  clients cannot lock others out, they can only push each other out. When none is waiting,
  the newcomer gets a 503.
- A request must arrive whole, head and body, within `request_timeout` of its first byte,
  and its first byte within `idle_timeout` of the connection or of the previous answer
  (408, or a silent close when nothing came). An answer must be taken by the client within
  `send_timeout`; it is written a chunk at a time with flow control, so a client that does
  not read holds one write buffer, not the body.
- Messages are read by h11 (RFC 9112 framing): a request's head is at most `max_head` bytes
  in all (431); a body (Content-Length or chunked) is read and dropped, at most `max_body`
  (413), never taken for a request; a request with both Content-Length and
  Transfer-Encoding is refused and its connection closed (RFC 9112 6.1); malformed ones get
  400, unknown transfer codings 501. `Connection: close` is answered with
  `Connection: close`, and the connection is closed.

Why h11 on asyncio rather than waitress or cheroot: both stopped answering anyone under
slowloris (waitress stops accepting at its connection limit and times connections out only
when silent; cheroot reads heads on its worker threads). What is measured under attack is in
README.md ("Security and reliability") and tests/e2e/test_daemon_attacks.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import resource
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus

import h11

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 1024  # open connections at most (fewer when the open-files limit is low)
MAX_HEAD = 32 * 1024  # bytes of request line and header fields together, as nginx's default
MAX_BODY = 64 * 1024  # bytes of a request body read (and dropped) before refusing it
IDLE_TIMEOUT = 15.0  # seconds to the first byte of a request
REQUEST_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its body
SEND_TIMEOUT = 60.0  # seconds for a client to take an answer (1 MB at 17 KB/s)
WORKERS = 4  # threads answering requests
BACKLOG = 1024  # connections the kernel queues before they are accepted
ACCEPT_BATCH = 16  # connections accepted at one wake-up of the event loop
READ_SIZE = 64 * 1024
WRITE_CHUNK = 64 * 1024
CLOSE_TIMEOUT = 5.0  # seconds for the last bytes of an answer to leave before a close
LINGER = 1.0  # seconds a timed-out client's further bytes are read and dropped before a close
LINGER_BYTES = 64 * 1024  # and at most this many
CAP_WARNING_EVERY = 60.0  # seconds between two log lines saying the cap was reached


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may take of the server; see the module docstring."""

    max_connections: int = MAX_CONNECTIONS
    max_head: int = MAX_HEAD
    max_body: int = MAX_BODY
    idle_timeout: float = IDLE_TIMEOUT
    request_timeout: float = REQUEST_TIMEOUT
    send_timeout: float = SEND_TIMEOUT
    workers: int = WORKERS


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as the application sees it: the method and target as sent, and each header
    field by its lower-case name (repeated fields joined with ", ", RFC 9110 5.3)."""

    method: str
    target: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class HttpReply:
    """An answer: `body` is the whole representation, also for HEAD (its length is the
    Content-Length; the listener does not send it). 304s have no Content-Length."""

    status: HTTPStatus
    headers: Sequence[tuple[str, str]]
    body: bytes = b""


class _Refused(Exception):
    """A request answered by the listener itself, after which the connection closes."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (systemd and most
    shells start services at 1,024 soft); return the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as exc:
            log.warning("open files limit stays %d (cannot raise it to %d: %s)", soft, wanted, exc)
            return soft
        return wanted
    return soft


def connection_cap(wanted: int, open_files: int) -> int:
    """Connections allowed with `open_files` descriptors: half of them at most, the other
    half kept for the database, the fetches, the parser processes and publishing."""
    return max(1, min(wanted, open_files // 2))


class HttpListener:
    """Serves `handle` on host:port from a thread of its own; see the module docstring.

    The socket is bound in the constructor, so a port in use fails there (OSError)."""

    def __init__(
        self,
        host: str,
        port: int,
        handle: Callable[[HttpRequest], HttpReply],
        server_name: str,
        limits: Limits | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.max_connections = connection_cap(self.limits.max_connections, raise_open_files_limit())
        self._handle = handle
        self._server_name = server_name
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=BACKLOG)
        self.socket.setblocking(False)
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="http-worker")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        # Every open connection's task; those waiting for a request, longest waiting first.
        self._open: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._waiting: dict[asyncio.StreamWriter, None] = {}
        self._cap_warned = float("-inf")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop accepting and close every connection (answers in progress are cut off)."""
        loop = self._loop
        if loop is not None and self.alive():
            loop.call_soon_threadsafe(loop.stop)
            assert self._thread is not None
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.socket.close()

    def open_connections(self) -> int:
        return len(self._open)

    # -- the loop's thread ----------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            # asyncio accepts up to `backlog` connections at each wake-up before any of them
            # is counted here (1,024 at once went past the descriptor limit under a flood), so
            # it is given a small batch; the kernel's queue is then set back to BACKLOG.
            server = loop.run_until_complete(
                asyncio.start_server(
                    self._connected, sock=self.socket, limit=READ_SIZE, backlog=ACCEPT_BATCH
                )
            )
            self.socket.listen(BACKLOG)
        except BaseException:
            self._started.set()
            loop.close()
            raise
        self._started.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for writer in list(self._open):
                writer.transport.abort()
            tasks = asyncio.all_tasks(loop)  # connections, and accepts not yet handed over
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=1))
            loop.close()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[writer] = task
        peer = _peer(writer)
        try:
            # asyncio sets TCP_NODELAY only on sockets made with proto=IPPROTO_TCP, which
            # create_server's are not: without it a keep-alive answer waits 40 ms for an ACK.
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if len(self._open) > self.max_connections and not self._evict():
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                    b"Retry-After: 5\r\nContent-Length: 0\r\n\r\n"
                )
            else:
                await self._converse(reader, writer, peer)
            # What is still buffered is at most one chunk: let it leave, briefly.
            writer.close()
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
        except (ConnectionError, TimeoutError) as exc:
            log.debug("http %s: %s", peer, exc or type(exc).__name__)
        except asyncio.CancelledError:
            # The listener is stopping. The task ends as done, not cancelled: on Python
            # 3.11 asyncio's own callback on a cancelled connection task logs an error with
            # a traceback, once for each connection open at a stop (fixed in 3.12).
            return
        except Exception:
            log.error("http %s: connection failed", peer, exc_info=True)
        finally:
            self._open.pop(writer, None)
            self._waiting.pop(writer, None)
            writer.transport.abort()  # closed already, or given up on

    def _evict(self) -> bool:
        """Close the connection that has waited longest for a request; False if none waits."""
        now = time.monotonic()
        if now - self._cap_warned >= CAP_WARNING_EVERY:
            self._cap_warned = now
            log.warning(
                "http: %d connections open, the cap; closing those waiting longest for a request",
                self.max_connections,
            )
        if not self._waiting:
            return False
        oldest = next(iter(self._waiting))
        del self._waiting[oldest]
        oldest.transport.abort()
        return True

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        """Requests and answers on one connection, one at a time, until either side ends it."""
        loop = asyncio.get_running_loop()
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head)
        while True:
            self._waiting[writer] = None  # to the end: it starts waiting now
            try:
                request = await self._receive(connection, reader, writer)
            except _Refused as refusal:
                log.debug("http %s: %s (%d)", peer, refusal, refusal.status)
                await self._send_refusal(connection, writer, refusal.status)
                if refusal.status == HTTPStatus.REQUEST_TIMEOUT:
                    await self._linger(reader, writer)
                return
            finally:
                self._waiting.pop(writer, None)
            if request is None:
                return
            try:
                reply = await loop.run_in_executor(self._pool, self._handle, request)
            except Exception:
                log.error("http %s: %s %s failed", peer, request.method, request.target,
                          exc_info=True)  # fmt: skip
                reply = HttpReply(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    [("Content-Type", "text/plain"), ("Connection", "close")],
                    b"internal error\n",
                )
            async with asyncio.timeout(self.limits.send_timeout):
                await self._send(connection, writer, request.method, reply)
            log.debug("http %s %s %s %d", peer, request.method, request.target, reply.status)
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return  # Connection: close from either side, or HTTP/1.0
            connection.start_next_cycle()

    async def _receive(
        self, connection: h11.Connection, reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> HttpRequest | None:  # fmt: skip
        """The next whole request (its body read and dropped); None when the client closed
        or stayed silent. Raises _Refused for what must be answered with an error."""
        loop = asyncio.get_running_loop()
        limits = self.limits
        begun = bool(connection.trailing_data[0])  # pipelined bytes already here
        deadline = loop.time() + (limits.request_timeout if begun else limits.idle_timeout)
        request: h11.Request | None = None
        body = 0
        continued = False
        while True:
            # h11 bounds a head still incomplete; one that came whole in a read is measured
            # by what it took from the buffer.
            buffered = len(connection.trailing_data[0]) if request is None else 0
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Refused(HTTPStatus(exc.error_status_hint), str(exc)) from None
            if event is h11.NEED_DATA:
                if connection.they_are_waiting_for_100_continue and not continued:
                    continued = True
                    writer.write(
                        connection.send(h11.InformationalResponse(status_code=100, headers=[]))
                    )
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    if not begun:
                        return None  # an idle connection: closed without a word
                    raise _Refused(HTTPStatus.REQUEST_TIMEOUT, "request too slow") from None
                if data and not begun:
                    begun = True
                    deadline = loop.time() + limits.request_timeout
                connection.receive_data(data)  # b"" is the end of the stream
            elif isinstance(event, h11.Request):
                if buffered - len(connection.trailing_data[0]) > limits.max_head:
                    raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "head too large")
                request = event
                _check_framing(event, limits.max_body)
            elif isinstance(event, h11.Data):
                body += len(event.data)
                if body > limits.max_body:
                    raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return _request(request)
            else:  # ConnectionClosed (or PAUSED, which a server never sees here)
                return None

    async def _send(
        self, connection: h11.Connection, writer: asyncio.StreamWriter, method: str,
        reply: HttpReply,
    ) -> None:  # fmt: skip
        headers = [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Server", self._server_name),
            *reply.headers,
        ]
        bodiless = reply.status in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED)
        if not bodiless:
            headers.append(("Content-Length", str(len(reply.body))))
        response = h11.Response(
            status_code=int(reply.status), headers=headers, reason=reply.status.phrase
        )
        pending = [connection.send(response)]  # the head leaves with the first chunk
        if method != "HEAD" and not bodiless:
            view = memoryview(reply.body)
            for start in range(0, len(view), WRITE_CHUNK):
                pending.append(connection.send(h11.Data(data=view[start : start + WRITE_CHUNK])))
                writer.writelines(pending)
                pending = []
                await writer.drain()
        pending.append(connection.send(h11.EndOfMessage()))
        writer.writelines(pending)
        await writer.drain()

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A lingering close (RFC 9112 9.6) after a 408 to a client still dribbling its
        request: our side is closed first and what it sends is read and dropped, briefly
        and boundedly. Closed at once, its unread bytes make the kernel answer with a
        reset, which can destroy the 408 before the client has read it. Other refusals (a
        huge or malformed head) close at once: lingering there would let a flood hold
        connections."""
        if writer.is_closing() or not writer.can_write_eof():
            return
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            writer.write_eof()
            left = LINGER_BYTES
            async with asyncio.timeout(LINGER):
                while left > 0 and (chunk := await reader.read(min(left, 4096))):
                    left -= len(chunk)

    async def _send_refusal(
        self, connection: h11.Connection, writer: asyncio.StreamWriter, status: HTTPStatus
    ) -> None:
        if writer.is_closing() or connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return  # gone, or an answer was already begun: closing is all that is left
        reply = HttpReply(
            status,
            [("Content-Type", "text/plain"), ("Connection", "close")],
            f"{status.value} {status.phrase}\n".encode(),
        )
        async with asyncio.timeout(min(self.limits.send_timeout, 5.0)):
            await self._send(connection, writer, "GET", reply)


def _check_framing(request: h11.Request, max_body: int) -> None:
    """Refuse what a proxy in front could frame differently (RFC 9112 6.1, 6.3)."""
    names = {name for name, _ in request.headers}
    if b"transfer-encoding" in names and (
        b"content-length" in names or request.http_version == b"1.0"
    ):
        raise _Refused(HTTPStatus.BAD_REQUEST, "Transfer-Encoding with Content-Length or in 1.0")
    for name, value in request.headers:
        if name == b"content-length" and int(value) > max_body:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")


def _request(event: h11.Request) -> HttpRequest:
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("ascii")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return HttpRequest(event.method.decode("ascii"), event.target.decode("ascii"), headers)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else "?"
