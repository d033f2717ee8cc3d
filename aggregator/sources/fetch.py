"""HTTP for sources: one pooled session, conditional GET, and hard limits on what a server
can make us do (time, size after decompression, redirects).

Never raises for a source's fault: every failure comes back as a `FetchResult` with `error`
set, in words a user can act on ("HTTP 404 Not Found", "timed out after 20 s waiting for the
server", "response larger than the 15 MiB limit"), so one broken source can never stop a pass
over the others.

The total time limit holds even against a server that dribbles one byte just inside each read
timeout: a watchdog shuts the fetch's socket down when the time is up. The size limit holds
after decompression (urllib3 inflates at most what is asked for), so a gzip bomb costs no more
memory than `max_body`.

Every connection, the first and each redirect's, goes only to addresses the fetch's `Reach`
allows (aggregator/sources/reach.py): the host is resolved once, every address checked, and only a
checked address connected to, so neither a redirect nor a DNS answer that changes between a
check and the connection can lead a public source to an internal service.

A cookie lives for one fetch: a host that sets one and redirects to its feed gets it back on
that redirect, and no poll sends the cookies of an earlier one (see `_NoCookieKept`).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import http.client
import http.cookiejar
import itertools
import re
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    IncompleteRead,
    InvalidChunkLength,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.connection import allowed_gai_family

from aggregator.models import FetchResult, HttpState
from aggregator.sources.reach import Reach, reach_for, reach_for_host
from aggregator.text import decimal_number, parse_http_date

if TYPE_CHECKING:
    from aggregator.config.settings import Config

ENCODINGS = "gzip, deflate"
READ_CODINGS = {"gzip", "x-gzip", "deflate", "identity"}  # what urllib3 decodes, as asked
MAX_CODINGS = 5  # content codings urllib3 undoes in a chain (MultiDecoder.max_decode_links)
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
PERMANENT = {301, 308}
CHUNK = 64 * 1024
SENDABLE = re.compile(r"\S[^\r\n]*")  # requests' own rule for a header value
MAX_AGE_RE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?([0-9]+)", re.IGNORECASE)
HUGE = 10**15  # a number in a header counts up to this
REDIRECT_BODY = 64 * 1024  # raw bytes of a redirect's body read to keep its connection
MAX_HEADER_BYTES = 2**20  # of one response's headers; real servers send a few KB


@dataclass(frozen=True)
class FetchLimits:
    """What one fetch may cost; Miniflux's defaults (15 MiB, 20 s) are the model."""

    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_body: int = 15 * 2**20
    max_redirects: int = 10
    size_setting: str = "max_body"  # the config key an error about the size names


def fetch_limits(config: Config) -> FetchLimits:
    """The configured limits of one fetch."""
    return FetchLimits(
        user_agent=config.user_agent,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        total_timeout=config.total_timeout,
        max_body=config.max_body,
        max_redirects=config.max_redirects,
    )


class _NoCookieKept(http.cookiejar.DefaultCookiePolicy):
    """The session's policy: its jar keeps no cookie. Each fetch has a jar of its own, which
    carries cookies across that fetch's redirects only. A daemon's one session would keep
    every cookie every source ever set, for as long as it runs, and send them back with each
    poll of their host: a server that sets new ones on every answer (up to 100 headers of
    64 KB each) made it grow without bound (23 MB and a 7 MB Cookie header after 30 polls),
    and no publisher's tracking cookie should follow a reader from one poll to the next."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def make_session(limits: FetchLimits, pool_size: int = 10) -> requests.Session:
    """A session that reuses connections across sources and across polls."""
    session = requests.Session()
    session.max_redirects = limits.max_redirects
    session.trust_env = False  # no proxy or .netrc surprises in a daemon
    session.cookies.set_policy(_NoCookieKept())
    adapter = _GuardedAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(
        {
            "User-Agent": limits.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ENCODINGS,
        }
    )
    return session


def fetch_source(
    session: requests.Session,
    url: str,
    previous: HttpState,
    limits: FetchLimits,
    *,
    accept: str | None = None,
    reach: Reach | None = None,
) -> FetchResult:
    """GET `url` conditionally; a 304, or a 200 whose body is unchanged, is `not_modified`.
    `accept` replaces the session's Accept header (a feed's) for this request (an image's).
    `reach` is what the fetch and its redirects may connect to: a source's, from its
    configured URL; by default, that of `url` itself, as if `url` were configured."""
    _current.reach = reach or reach_for(url)
    try:
        with _Deadline(limits.total_timeout) as deadline:
            result = _fetch(session, url, previous, limits, deadline, accept)
    except Exception as exc:  # a library's failure on what a server sent costs this fetch only
        result = FetchResult(url=url, error=f"request failed: {type(exc).__name__}: {exc}")
    finally:
        _current.reach = None
    if result.error:
        # Server-supplied text (reason phrases, URLs) ends up here: keep it one short line.
        result = replace(result, error=_printable(result.error, 300))
    return result


def _fetch(
    session: requests.Session,
    url: str,
    previous: HttpState,
    limits: FetchLimits,
    deadline: _Deadline,
    accept: str | None = None,
) -> FetchResult:
    headers = {"Accept": accept} if accept else {}
    if previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    try:
        response = _get(session, url, headers, (limits.connect_timeout, limits.read_timeout))
    except requests.RequestException as exc:
        return FetchResult(url=url, error=_request_error(exc, limits, deadline))
    except (ValueError, LocationParseError) as exc:
        # What requests and urllib3 raise, not as a RequestException, for a Location they
        # cannot follow: a raw byte that is not UTF-8, `http://[::1/`, a 300-letter label.
        reason = "its Location is not UTF-8 text" if isinstance(exc, UnicodeError) else _reason(exc)
        return FetchResult(url=url, error=f"the server's answer cannot be followed: {reason}")

    with response:
        try:
            return _answer(response, url, previous, limits, deadline)
        finally:
            # Before the connection goes back to the pool, where the watchdog must not reach.
            deadline.cancel()


def _get(
    session: requests.Session, url: str, headers: dict[str, str], timeout: tuple[float, float]
) -> requests.Response:
    """`session.get(url, headers=headers, stream=True)` without requests' merging of each
    call's settings with the session's: requests 2.34 tests every one against a typing
    Protocol, ~0.12 ms a call on Python 3.11, a fifth of a conditional GET's CPU. The
    session's headers are the only settings this program gives it; the cookie jar is the
    fetch's own (`_NoCookieKept`)."""
    request = requests.PreparedRequest()
    request.prepare(
        method="GET",
        url=url,
        headers={**session.headers, **headers},
        cookies=requests.cookies.RequestsCookieJar(),
    )
    return session.send(request, timeout=timeout, stream=True, allow_redirects=True)


def _answer(
    response: requests.Response,
    url: str,
    previous: HttpState,
    limits: FetchLimits,
    deadline: _Deadline,
) -> FetchResult:
    final_url = response.url or url
    answer = {k.lower(): v for k, v in response.headers.items()}
    common: dict[str, Any] = {
        "url": final_url,
        "status": response.status_code,
        "headers": answer,
        "permanent_redirect": _permanent_target(response, url),
        "max_age": _max_age(answer.get("cache-control")),
    }
    if response.status_code == 304:
        # A 304 has no body (http.client reads none, whatever the headers say); consuming
        # it lets the connection go back to the pool instead of being closed, which makes
        # an all-304 pass several times faster.
        response.content  # noqa: B018
        return FetchResult(
            **common,
            not_modified=True,
            http=HttpState(
                etag=_sendable(answer.get("etag")) or previous.etag,
                last_modified=_sendable(answer.get("last-modified")) or previous.last_modified,
                body_hash=previous.body_hash,
            ),
        )
    if response.status_code != 200:
        retry_after = _retry_after(answer.get("retry-after"))
        error = _status_text(response)
        if retry_after is not None and response.status_code in (429, 503):
            error += f" (retry after {retry_after} s)"
        elif 300 <= response.status_code < 400 and not answer.get("location", "").strip():
            error += " with no Location to follow"
        return FetchResult(**common, error=error, retry_after=retry_after, http=previous)
    refusal = _unreadable_codings(answer)
    if refusal:  # passed through as it is, the body would read as binary junk
        return FetchResult(**common, error=refusal, http=previous)
    try:
        body = _read_capped(response, limits.max_body, deadline.ends)
    except _TooBig:
        return FetchResult(
            **common,
            error=(
                f"response larger than the {_size(limits.max_body)} limit ({limits.size_setting})"
            ),
            http=previous,
        )
    except _TooSlow:
        return FetchResult(**common, error=deadline.message, http=previous)
    except (requests.RequestException, ValueError) as exc:
        if deadline.fired:
            return FetchResult(**common, error=deadline.message, http=previous)
        if any(isinstance(cause, ReadTimeoutError) for cause in _causes(exc)):
            error = f"timed out after {limits.read_timeout:g} s waiting for the rest of the body"
        else:
            error = f"reading body failed: {_reason(exc)}"
        return FetchResult(**common, error=error, http=previous)
    if deadline.fired:
        # The watchdog's shutdown can look like a normal end of a body without a length.
        return FetchResult(**common, error=deadline.message, http=previous)
    digest = hashlib.sha256(body).hexdigest()
    # RSSHub sends a fresh Last-Modified each time; a validator that is only "now" is useless,
    # so ETag wins when both are present.
    etag = _sendable(answer.get("etag"))
    state = HttpState(
        etag=etag,
        last_modified=None if etag else _sendable(answer.get("last-modified")),
        body_hash=digest,
    )
    if digest == previous.body_hash:
        return FetchResult(**common, not_modified=True, http=state)
    return FetchResult(**common, body=body, http=state)


def _unreadable_codings(answer: dict[str, str]) -> str | None:
    """Why a body cannot be read as the headers say it is coded, before any of it is read;
    None when it can. http.client undoes only `chunked` (any other transfer coding, which
    no server may send unasked, is left in the body), and urllib3 at most `MAX_CODINGS`
    content codings: past them its error only said "cannot be decompressed"."""
    transfer = answer.get("transfer-encoding", "")
    if any(c.strip().lower() not in ("", "chunked", "identity") for c in transfer.split(",")):
        return (
            f"the body is sent in a transfer coding that was not asked for "
            f"(Transfer-Encoding: {transfer}; only chunked is read)"
        )
    codings = [c.strip().lower() for c in answer.get("content-encoding", "").split(",")]
    unread = [c for c in codings if c and c not in READ_CODINGS]
    if unread:
        return (
            f"the body is compressed as {unread[0]!r}, which was not asked for "
            f"(Accept-Encoding: {ENCODINGS})"
        )
    if len(codings) > MAX_CODINGS:
        return (
            f"the body is coded {len(codings)} times over (Content-Encoding: "
            f"{answer['content-encoding']}); at most {MAX_CODINGS} codings are undone"
        )
    return None


def _sendable(validator: str | None) -> str | None:
    """A validator as it can be sent back (If-None-Match, If-Modified-Since); None when it
    cannot: requests refuses a header value that starts with white space (a no-break space,
    U+0085 too), and every poll that sent it failed before asking."""
    return validator if validator and SENDABLE.fullmatch(validator) else None


def _request_error(exc: requests.RequestException, limits: FetchLimits, deadline: _Deadline) -> str:
    """What went wrong before any response arrived, in a user's words."""
    if deadline.fired:
        return deadline.message
    if isinstance(exc, _HeadersTooLarge):
        return str(exc)
    if isinstance(exc, requests.TooManyRedirects):
        hops = [r.url for r in (exc.response.history if exc.response is not None else [])]
        if exc.response is not None:
            hops.append(exc.response.url)
        if len(set(hops)) < len(hops):
            return f"redirect loop (the server keeps redirecting back to {hops[-1]})"
        return f"too many redirects (more than {limits.max_redirects})"
    if isinstance(exc, requests.ConnectTimeout):
        return f"could not connect within {limits.connect_timeout:g} s"
    if isinstance(exc, requests.Timeout):
        return f"timed out after {limits.read_timeout:g} s waiting for the server"
    if isinstance(exc, requests.exceptions.InvalidSchema | requests.exceptions.InvalidURL):
        return f"not a web URL ({_reason(exc)})"
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, _Refused):
            return cause.refusal
        if isinstance(cause, NameResolutionError):
            host = getattr(cause, "_host", None) or "the host"
            return f"cannot resolve host {host} (DNS lookup failed)"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (nothing listens at that address and port)"
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = str(cause.verify_message or cause.reason or "").rstrip(".")
            return f"the server's TLS certificate is not trusted ({reason})"
        if isinstance(cause, ssl.SSLError) and cause.reason == "WRONG_VERSION_NUMBER":
            return "the server does not speak TLS there (plain HTTP on an https:// URL?)"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake failed ({cause.reason or type(cause).__name__})"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed: {_reason(exc)}"
    return f"request failed: {_reason(exc)}"


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and everything it wraps (requests wraps urllib3, which wraps socket errors)."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return seen


class _Deadline:
    """The total time of one fetch, enforced by shutting its sockets down when it is up.

    A per-read timeout alone lets a server that sends one byte every few seconds keep a
    worker for ever; this bounds a fetch to `seconds` plus at most one connect timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.fired = False
        self._done = False
        self._connections: list[_Watched] = []
        self._lock = threading.Lock()

    @property
    def message(self) -> str:
        return f"timed out after {self.seconds:g} s in total (the server sends too slowly)"

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()
        _current.deadline = None

    def watch(self, connection: _Watched) -> None:
        with self._lock:
            if not self._done:
                self._connections.append(connection)

    def cancel(self) -> None:
        with self._lock:
            self._done = True
            self._connections.clear()
        _WATCHDOG.cancelled()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for connection in self._connections:
                sock = connection.sock or connection.last_socket
                if sock is not None:
                    with contextlib.suppress(OSError):  # already closed: nothing to interrupt
                        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread that fires every fetch's deadline when it is due: a timer thread per fetch
    cost more than the whole of a 304 poll. Cancelled deadlines are skipped when due
    (`_fire` checks `_done`) and swept out once they are most of the queue, so the queue
    holds about the fetches in flight, not every fetch of the last `total` timeout (10,000
    of them after a pass of 304s at 10,000 sources)."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._cancelled = 0

    def cancelled(self) -> None:
        with self._wake:
            self._cancelled += 1
            if self._cancelled > SWEEP_AFTER and 2 * self._cancelled > len(self._queue):
                self._queue = [item for item in self._queue if not item[2]._done]
                heapq.heapify(self._queue)
                self._cancelled = 0

    def watch(self, deadline: _Deadline) -> None:
        with self._wake:
            heapq.heappush(self._queue, (deadline.ends, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="fetch-deadlines", daemon=True
                )
                self._thread.start()
            elif self._queue[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                ends, _, deadline = self._queue[0]
                delay = ends - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._queue)
                if deadline._done:
                    self._cancelled = max(0, self._cancelled - 1)
            deadline._fire()


SWEEP_AFTER = 256  # cancelled deadlines tolerated in the queue before a sweep
_WATCHDOG = _Watchdog()
_current = threading.local()


class _NegativeLength(http.client.HTTPException):
    """A chunk length below zero: urllib3 reads `-1` as a number and hands it to http.client,
    which takes it as "everything up to the end", unbounded (3.5 GB of memory for an endless
    body, whatever `max_body` says)."""


class _Response(http.client.HTTPResponse):
    """http.client's response, refusing a negative read length, and skipping every interim
    (1xx) response before the real one, as it skips only `100 Continue`: a `103 Early
    Hints` ahead of a feed left its source in error for good. (Both are private methods
    of http.client, the same from Python 3.5 to 3.13; tests/test_hostile.py pins them.)"""

    def _read_status(self) -> tuple[str, int, str]:
        version, status, reason = super()._read_status()  # type: ignore[misc]
        while 101 <= status < 200:  # 100: `begin` skips it, and its headers
            http.client.parse_headers(self.fp)
            version, status, reason = super()._read_status()  # type: ignore[misc]
        return version, status, reason

    def _safe_read(self, amt: int) -> bytes:
        if amt < 0:
            raise _NegativeLength(amt)
        return super()._safe_read(amt)  # type: ignore[misc]


class _Watched:
    """Mixin for urllib3 connections: each puts itself under the current fetch's deadline.

    The socket is remembered at connect time because http.client drops `sock` from the
    connection once a response without a length owns it, which is exactly the dribbling case.
    """

    sock: socket.socket | None
    last_socket: socket.socket | None = None
    response_class = _Response

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.last_socket = self.sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            if deadline.fired:
                # Past the deadline nothing more is asked: a redirect whose body dribbled
                # past it was followed, to a connection no watchdog would ever cut.
                raise TimeoutError("the fetch's total time is up")
            deadline.watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _Refused(NewConnectionError):
    """A connection the fetch's `Reach` does not allow, refused before it is made."""

    def __init__(self, connection: HTTPConnection, refusal: str) -> None:
        super().__init__(connection, refusal)
        self.refusal = refusal


class _Guarded:
    """Mixin for urllib3 connections: each connects only to addresses the current fetch's
    `Reach` allows (aggregator/sources/reach.py).

    The host is resolved once, every address it resolves to is checked (one refused address
    refuses the host), and the socket connects to those very addresses, so a DNS server
    that answers differently a second time (rebinding) gets no second question. Nothing is
    sent to a refused address, so the refusal reads the same whether a port is open or
    closed. A pooled connection is checked again before each request: another fetch, with a
    wider reach, may have opened it.
    """

    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any
    sock: socket.socket | None
    _dns_host: str
    peer: str | None = None  # the address connected to

    def _new_conn(self) -> socket.socket:
        connection: Any = self
        reach = _reach_now(self.host)
        host = self._dns_host.strip("[]")
        try:
            host.encode("idna")
        except UnicodeError:
            raise LocationParseError(f"'{host}', label empty or too long") from None
        try:
            found = socket.getaddrinfo(host, self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, connection, exc) from exc
        for *_, address in found:
            refusal = reach.refusal(self.host, str(address[0]))
            if refusal:
                raise _Refused(connection, refusal)
        error: OSError = OSError("getaddrinfo returned no address")
        for family, kind, proto, _, address in found:  # as urllib3's create_connection
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is None or isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            self.peer = str(address[0])
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        if isinstance(error, TimeoutError):
            message = f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            raise ConnectTimeoutError(connection, message) from error
        message = f"Failed to establish a new connection: {error}"
        raise NewConnectionError(connection, message) from error

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None and self.peer is not None:
            refusal = _reach_now(self.host).refusal(self.host, self.peer)
            if refusal:
                connection: Any = self
                raise _Refused(connection, refusal)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _reach_now(host: str) -> Reach:
    """The current fetch's reach; outside `fetch_source` (a WebSub ping to the configured
    hub), that of the host itself."""
    return getattr(_current, "reach", None) or reach_for_host(host)


class _WatchedHTTPConnection(_Watched, _Guarded, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, _Guarded, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    """requests' adapter with connections the fetch deadline can interrupt, made only to
    addresses the fetch's reach allows."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    def build_response(self, req: Any, resp: Any) -> requests.Response:
        """requests reads a redirect's body whole, decompressed, before it follows it: a
        `302` with a 1 MiB gzip body of 1 GiB of zeros cost 2 GB of memory. A redirect's
        body is no one's business here; at most `REDIRECT_BODY` raw bytes of it are read,
        past that the connection is dropped, and requests finds it read (and empty)."""
        size = sum(len(name) + len(value) for name, value in resp.headers.items())
        if size > MAX_HEADER_BYTES:
            # requests keeps every redirect's headers in the answer's history: 30 hops of
            # 100 headers of 64 KB each held 360 MB for one source.
            resp.close()
            limit = _size(MAX_HEADER_BYTES)
            raise _HeadersTooLarge(f"the response headers are larger than {limit}")
        response = super().build_response(req, resp)
        if response.is_redirect:
            _discard_body(response)
        return response


def _discard_body(response: requests.Response) -> None:
    raw, read = response.raw, 0
    try:
        while read <= REDIRECT_BODY and (chunk := raw.read(CHUNK, decode_content=False)):
            read += len(chunk)
    except Exception:  # a broken body of a redirect only costs its connection
        read = REDIRECT_BODY + 1
    if read > REDIRECT_BODY:
        raw.close()
    response._content = b""  # what requests' own `content` reads as consumed


class _TooBig(Exception):
    pass


class _HeadersTooLarge(requests.RequestException):
    pass


class _TooSlow(Exception):
    pass


def _read_capped(response: requests.Response, limit: int, deadline: float) -> bytes:
    """Read the decompressed body, stopping as soon as it passes `limit` or the deadline."""
    declared = decimal_number(response.headers.get("Content-Length"), HUGE)
    encoded = response.headers.get("Content-Encoding")
    if declared is not None and not encoded and declared > limit:
        raise _TooBig
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > limit:
            raise _TooBig
        if time.monotonic() > deadline:
            raise _TooSlow
        chunks.append(chunk)
    return b"".join(chunks)


def _permanent_target(response: requests.Response, original: str) -> str | None:
    """The new URL when every hop was permanent (301/308); a temporary hop is not adopted,
    nor a URL with credentials the configured one did not have: kept, they would be shown
    in the log and `sources`, and sent with every poll."""
    if not response.history:
        return None
    if all(hop.status_code in PERMANENT for hop in response.history) and response.url != original:
        credentials = urlsplit(response.url).netloc.rpartition("@")[0]
        if credentials and credentials != urlsplit(original).netloc.rpartition("@")[0]:
            return None
        return response.url
    return None


def _status_text(response: requests.Response) -> str:
    """ "HTTP 404 Not Found": the standard phrase, since a server's own can say anything."""
    try:
        reason = HTTPStatus(response.status_code).phrase
    except ValueError:
        reason = response.reason or ""
        if isinstance(reason, bytes):
            reason = reason.decode("latin-1")
        reason = _printable(reason, 60)
    return f"HTTP {response.status_code} {reason}".strip()


def _size(limit: int) -> str:
    """15728640 -> "15 MiB": a limit in the unit the user wrote it in."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if limit >= factor and limit % factor == 0:
            return f"{limit // factor} {unit}"
    return f"{limit} bytes"


def _printable(text: str, limit: int) -> str:
    """One line of printable text at most `limit` long: no terminal escapes from a server."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    seconds = decimal_number(value, HUGE)
    if seconds is not None:
        return seconds
    when = parse_http_date(value.strip())
    return None if when is None else max(0, int((when - datetime.now(UTC)).total_seconds()))


def _max_age(value: str | None) -> int | None:
    if not value or "no-store" in value.lower():
        return None
    match = MAX_AGE_RE.search(value)
    return decimal_number(match.group(1), HUGE) if match else None


def _reason(exc: Exception) -> str:
    """The innermost useful words of a requests/urllib3 error, without object reprs."""
    for cause in _causes(exc):
        words = _broken_http(cause)
        if words:
            return words
    text = str(exc)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    text = re.sub(r"<[^>]+>:?\s*", "", text).strip(" ()'\"")
    return text or type(exc).__name__


def _broken_http(error: BaseException) -> str | None:
    """What a server broke, in words, for the errors http.client and urllib3 name only by
    their class and repr (`IncompleteRead(1123 bytes read, 98877 more expected)`)."""
    if isinstance(error, InvalidChunkLength):  # before IncompleteRead, its base class
        return "the server's chunked encoding is broken (a chunk length that is not a number)"
    if isinstance(error, _NegativeLength):
        return "the server's chunked encoding is broken (a negative chunk length)"
    if isinstance(error, IncompleteRead | http.client.IncompleteRead):
        partial = error.partial if isinstance(error.partial, int) else len(error.partial)
        expected = f", {error.expected} more expected" if error.expected else ""
        return (
            "the server closed the connection in the middle of the body "
            f"({partial} bytes read{expected})"
        )
    if isinstance(error, http.client.LineTooLong):
        return "a response header line is too long (over 64 KiB)"
    if isinstance(error, http.client.RemoteDisconnected):  # a BadStatusLine too
        return "the server closed the connection without answering"
    if isinstance(error, ConnectionResetError | ConnectionAbortedError):
        return "the server reset the connection"
    if isinstance(error, http.client.UnknownProtocol):
        return f"the server answers in {_printable(str(error.args[0]), 20)}, not HTTP/1.1"
    if isinstance(error, http.client.BadStatusLine):
        return "not an HTTP response (its status line is not one)"
    if isinstance(error, http.client.HTTPException) and "more than 100 headers" in str(error):
        # http.client counts the blank line that ends them: 100 headers are already too many.
        return "the response has too many headers (100 or more)"
    if isinstance(error, DecodeError):
        return "the body is not what its Content-Encoding says (it cannot be decompressed)"
    return None
