"""The built-in HTTP server of `aggregator run`: the feeds, /healthz, /status and /.

Feed readers subscribe here directly, so it speaks the HTTP they rely on: correct
Content-Type, strong ETag and Last-Modified, 304 on If-None-Match / If-Modified-Since, HEAD,
and gzip when asked. Feeds are served from bytes cached in memory and reloaded when the file
on disk changes (a stat per request), so many concurrent readers cost no disk reads and never
touch the database or the polls. Only the daemon's callables read the database: /status on
each request, the index page at / (index_page.py) at most once per INDEX_MAX_AGE or publish.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import itertools
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

from . import __version__
from .fetch import parse_http_date

log = logging.getLogger(__name__)

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
CLIENT_TIMEOUT = 30  # seconds a silent client may hold a connection (and its thread)
INDEX_MAX_AGE = 5.0  # seconds the index page is served unchanged when nothing was published
CACHE_BYTES = 32 * 1024 * 1024  # feed bytes (plain and gzipped) kept in memory at most


@dataclass(frozen=True, slots=True)
class FeedFile:
    """A published feed file and how it is served."""

    path: str
    content_type: str
    href: str  # relative URL from /, percent-encoded
    merged: bool = False  # one of the merged feeds, named in the startup log


@dataclass(frozen=True)
class Site:
    """The feeds the server routes to; replaced as a whole when the configuration is
    reloaded. (What / shows is the daemon's index page, see `PageCache`.)

    Each source and category has a folder of the same few files, so those are routed by
    folder, one string each: 30,000 `FeedFile`s at 10,000 sources were ~10 MB of objects."""

    feeds: Mapping[str, FeedFile]  # decoded URL path ("/feed.xml") -> file
    folders: Mapping[str, str]  # "/source/x/" -> its folder on disk
    folder_files: Mapping[str, str]  # name of a file in each folder -> content type

    @classmethod
    def of(
        cls,
        feeds: Iterable[FeedFile],
        folders: Mapping[str, str] | None = None,
        folder_files: Mapping[str, str] | None = None,
    ) -> Site:
        named = {"/" + unquote(feed.href): feed for feed in feeds}
        return cls(named, folders or {}, folder_files or {})

    def file(self, path: str) -> FeedFile | None:
        """The feed file at a decoded URL path, if it is one of the site's."""
        if (feed := self.feeds.get(path)) is not None:
            return feed
        url_folder, _, name = path.rpartition("/")
        folder = self.folders.get(url_folder + "/")
        content_type = self.folder_files.get(name)
        if folder is None or content_type is None:
            return None
        return FeedFile(os.path.join(folder, name), content_type, quote(path[1:]))


def make_site(folder: Path, rss_name: str, atom_name: str) -> Site:
    """The site of just a merged feed written as `folder/rss_name` and `folder/atom_name`."""
    return Site.of(
        [
            FeedFile(os.fspath(folder / rss_name), RSS_TYPE, quote(rss_name), merged=True),
            FeedFile(os.fspath(folder / atom_name), ATOM_TYPE, quote(atom_name), merged=True),
        ]
    )


@dataclass(frozen=True)
class Representation:
    """One version of one feed file, ready to send: plain and gzipped, with validators."""

    stamp: tuple[int, int, int]  # (mtime_ns, size, inode) it was read at
    body: bytes
    gzipped: bytes
    etag: str
    gzip_etag: str
    last_modified: str
    modified: int  # whole seconds, for If-Modified-Since

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped)


class FeedCache:
    """Feed bytes in memory, re-read only when the file's (mtime, size, inode) changes.

    The merged feed is replaced with `os.replace`, so a new inode or mtime always means a new,
    complete file. Representations are immutable; a reader holds one for its whole response.
    The least recently served are dropped beyond `max_bytes`: with a feed per source, readers
    fetching all of them would otherwise keep every feed of every source in memory.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Representation] = OrderedDict()
        self._bytes = 0

    def get(self, path: str) -> Representation | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and cached.stamp == stamp:
                self._cache.move_to_end(path)
                return cached
            try:
                with open(path, "rb") as handle:
                    body = handle.read()
            except OSError:
                return None
            fresh = _representation(stamp, body, int(info.st_mtime))
            self._forget(path)
            self._cache[path] = fresh
            self._bytes += fresh.size
            while self._bytes > self.max_bytes and len(self._cache) > 1:
                self._forget(next(iter(self._cache)))
            return fresh

    def _forget(self, path: str) -> None:
        dropped = self._cache.pop(path, None)
        if dropped is not None:
            self._bytes -= dropped.size


class PageCache:
    """The index page as served: built by the daemon's `build` callable (which queries the
    database), then reused until it is marked stale (a publish or a reload happened) or is
    older than `max_age` (a poll that failed changes a source's state without a publish).

    Concurrent requests for a stale page wait for one build instead of each running it. A
    rebuild that gives the same bytes keeps the same representation, so a browser's
    If-None-Match still gets a 304.
    """

    def __init__(self, build: Callable[[], bytes], max_age: float = INDEX_MAX_AGE) -> None:
        self._build = build
        self.max_age = max_age
        self._lock = threading.Lock()
        self._marks = itertools.count(1)  # next() is atomic: stale() never waits for a build
        self._generation = 0
        self._current: tuple[int, float, Representation] | None = None  # generation, built at

    def stale(self) -> None:
        """The page no longer shows the database; the next request rebuilds it."""
        self._generation = next(self._marks)

    def get(self) -> Representation:
        """The current page; raises whatever `build` raises."""
        if (page := self._fresh()) is not None:
            return page
        with self._lock:
            if (page := self._fresh()) is not None:
                return page
            generation, started = self._generation, time.monotonic()
            body = self._build()
            current = self._current
            if current is not None and current[2].body == body:
                page = current[2]
            else:
                page = _representation((0, len(body), 0), body, int(time.time()))
            self._current = (generation, started, page)
            return page

    def _fresh(self) -> Representation | None:
        current = self._current
        if current is None or current[0] != self._generation:
            return None
        return current[2] if time.monotonic() - current[1] < self.max_age else None


def _representation(stamp: tuple[int, int, int], body: bytes, mtime: int) -> Representation:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Representation(
        stamp=stamp,
        body=body,
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        # Strong validators differ per content-coding (RFC 9110 8.8.3).
        etag=f'"{digest}"',
        gzip_etag=f'"{digest}-gzip"',
        last_modified=email.utils.formatdate(mtime, usegmt=True),
        modified=mtime,
    )


def accepts_gzip(header: str | None) -> bool:
    """Whether an Accept-Encoding header allows gzip (with a non-zero q)."""
    if not header:
        return False
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in {"gzip", "x-gzip", "*"}:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


def not_modified(
    representation: Representation, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return bool(tags & {"*", representation.etag, representation.gzip_etag})
    if if_modified_since:
        since = parse_http_date(if_modified_since)
        return since is not None and representation.modified <= since.timestamp()
    return False


class FeedServer:
    """A ThreadingHTTPServer in a background thread; one thread per connection.

    `health`, `status` and `index` are the daemon's: /healthz answers 200 while `health()`
    is true, /status returns `status()` as JSON, / serves the HTML bytes `index()` builds,
    cached in `self.index` (the daemon calls `self.index.stale()` after it publishes).
    """

    def __init__(
        self,
        host: str,
        port: int,
        site: Site,
        health: Callable[[], bool],
        status: Callable[[], dict[str, Any]],
        index: Callable[[], bytes],
    ) -> None:
        self.site = site  # replaced whole on reload; a reference read is atomic
        self.health = health
        self.status = status
        self.index = PageCache(index)
        self.cache = FeedCache()
        self.httpd = _HTTPServer((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="http"
        )
        self._thread.daemon = True
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop accepting; connections in progress finish on their daemon threads."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()


class _HTTPServer(ThreadingHTTPServer):
    """The stdlib server, one daemon thread per connection, tuned for many readers."""

    daemon_threads = True
    block_on_close = False
    # The stdlib's backlog of 5 drops connections when many readers arrive at once.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: FeedServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A reader that hangs up mid-answer is routine; anything else is a bug worth a
        trace. (The stdlib would print a traceback to stderr either way.)"""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("http %s: %s", client_address[0], error)
        else:
            log.error("http %s: request failed", client_address[0], exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for readers polling many times
    timeout = CLIENT_TIMEOUT

    def version_string(self) -> str:
        return f"aggregator/{__version__}"

    @property
    def app(self) -> FeedServer:
        return cast(_HTTPServer, self.server).app

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if (feed := self.app.site.file(path)) is not None:
            self._feed(feed, head)
        elif path == "/healthz":
            healthy = self.app.health()
            status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(status, b"ok\n" if healthy else b"unavailable\n", "text/plain", head)
        elif path == "/status":
            try:
                report = self.app.status()
            except Exception:
                log.exception("cannot report the status")
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"no status\n", "text/plain", head)
                return
            body = json.dumps(report, indent=2, ensure_ascii=False).encode() + b"\n"
            self._send(HTTPStatus.OK, body, "application/json; charset=utf-8", head)
        elif path == "/":
            try:
                page = self.app.index.get()
            except Exception:
                log.exception("cannot build the index page")
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"no page\n", "text/plain", head)
                return
            # Built at a moment, not from a file: the ETag alone validates it (a second's
            # Last-Modified could not tell two builds within one second apart).
            self._validated(page, HTML_TYPE, head, dated=False)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head)

    def _feed(self, feed: FeedFile, head: bool) -> None:
        representation = self.app.cache.get(feed.path)
        if representation is None:
            # Not published yet (or removed by hand): the daemon republishes soon.
            self._send(
                HTTPStatus.SERVICE_UNAVAILABLE,
                b"the merged feed is not published yet\n",
                "text/plain",
                head,
                {"Retry-After": "30"},
            )
            return
        self._validated(representation, feed.content_type, head, dated=True)

    def _validated(
        self, representation: Representation, content_type: str, head: bool, dated: bool
    ) -> None:
        """Answer with `representation`, or 304 when the client's copy is current."""
        compressed = accepts_gzip(self.headers.get("Accept-Encoding"))
        headers = {
            "ETag": representation.gzip_etag if compressed else representation.etag,
            "Vary": "Accept-Encoding",
            "Cache-Control": "no-cache",  # readers may keep it, but must revalidate
        }
        if dated:
            headers["Last-Modified"] = representation.last_modified
        if not_modified(
            representation,
            self.headers.get("If-None-Match"),
            self.headers.get("If-Modified-Since") if dated else None,
        ):
            self._send(HTTPStatus.NOT_MODIFIED, b"", None, True, headers)
            return
        if compressed:
            headers["Content-Encoding"] = "gzip"
            body = representation.gzipped
        else:
            body = representation.body
        self._send(HTTPStatus.OK, body, content_type, head, headers)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str | None,
        head: bool,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if not headers or "Cache-Control" not in headers:
            self.send_header("Cache-Control", "no-store")  # health, status: always fresh
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status != HTTPStatus.NOT_MODIFIED:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s %s", self.address_string(), format % args)
