"""The built-in HTTP server of `aggregator run`: the merged feeds, /healthz, /status and /.

Feed readers subscribe here directly, so it speaks the HTTP they rely on: correct
Content-Type, strong ETag and Last-Modified, 304 on If-None-Match / If-Modified-Since, HEAD,
and gzip when asked. Feeds are served from bytes cached in memory and reloaded when the file
on disk changes (a stat per request), so many concurrent readers cost no disk reads and never
touch the database or the polls. Only /status reads the database, through the daemon.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import html
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

from . import __version__

log = logging.getLogger(__name__)

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"
CLIENT_TIMEOUT = 30  # seconds a silent client may hold a connection (and its thread)


@dataclass(frozen=True)
class FeedFile:
    """A published feed file, how it is served, and how the index page shows it."""

    path: Path
    content_type: str
    title: str
    href: str  # relative URL from /, percent-encoded
    discover: bool = False  # advertised with <link rel="alternate"> on / (the merged feeds)


@dataclass(frozen=True)
class Site:
    """What the server publishes; replaced as a whole when the configuration is reloaded."""

    title: str
    feeds: Mapping[str, FeedFile]  # decoded URL path ("/feed.xml") -> file

    @classmethod
    def of(cls, title: str, feeds: Iterable[FeedFile]) -> Site:
        return cls(title, {"/" + unquote(feed.href): feed for feed in feeds})


def make_site(title: str, folder: Path, rss_name: str, atom_name: str) -> Site:
    """The site of just a merged feed written as `folder/rss_name` and `folder/atom_name`."""
    return Site.of(
        title,
        [
            FeedFile(folder / rss_name, RSS_TYPE, f"{title} (RSS)", quote(rss_name), True),
            FeedFile(folder / atom_name, ATOM_TYPE, f"{title} (Atom)", quote(atom_name), True),
        ],
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


class FeedCache:
    """Feed bytes in memory, re-read only when the file's (mtime, size, inode) changes.

    The merged feed is replaced with `os.replace`, so a new inode or mtime always means a new,
    complete file. Representations are immutable; a reader holds one for its whole response.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[Path, Representation] = {}

    def get(self, path: Path) -> Representation | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        cached = self._cache.get(path)
        if cached is not None and cached.stamp == stamp:
            return cached
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and cached.stamp == stamp:
                return cached
            try:
                body = path.read_bytes()
            except OSError:
                return None
            fresh = _representation(stamp, body, int(info.st_mtime))
            self._cache[path] = fresh
            return fresh


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
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return representation.modified <= since.timestamp()
    return False


def index_page(site: Site) -> bytes:
    """A tiny page at / listing every feed; <link rel="alternate"> tags in its head let a
    reader pointed at the server find the merged feeds."""
    title = html.escape(site.title)
    links, items = [], []
    for feed in site.feeds.values():
        mime = html.escape(feed.content_type.split(";")[0])
        name, href = html.escape(feed.title), html.escape(feed.href)
        if feed.discover:
            links.append(f'<link rel="alternate" type="{mime}" title="{name}" href="{href}">')
        items.append(f'<li><a href="{href}" type="{mime}">{name}</a></li>')
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
        f"<title>{title}</title>\n" + "\n".join(links) + "\n</head>\n"
        f"<body><h1>{title}</h1>\n<ul>\n" + "\n".join(items) + "\n</ul></body></html>\n"
    ).encode()


class FeedServer:
    """A ThreadingHTTPServer in a background thread; one thread per connection.

    `health` and `status` are the daemon's: /healthz answers 200 while `health()` is true,
    /status returns `status()` as JSON.
    """

    def __init__(
        self,
        host: str,
        port: int,
        site: Site,
        health: Callable[[], bool],
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self.site = site  # replaced whole on reload; a reference read is atomic
        self.health = health
        self.status = status
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
        site = self.app.site
        if path in site.feeds:
            self._feed(site.feeds[path], head)
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
            self._send(HTTPStatus.OK, index_page(site), "text/html; charset=utf-8", head)
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
        compressed = accepts_gzip(self.headers.get("Accept-Encoding"))
        headers = {
            "ETag": representation.gzip_etag if compressed else representation.etag,
            "Last-Modified": representation.last_modified,
            "Vary": "Accept-Encoding",
            "Cache-Control": "no-cache",  # readers may keep it, but must revalidate
        }
        if not_modified(
            representation,
            self.headers.get("If-None-Match"),
            self.headers.get("If-Modified-Since"),
        ):
            self._send(HTTPStatus.NOT_MODIFIED, b"", None, True, headers)
            return
        if compressed:
            headers["Content-Encoding"] = "gzip"
            body = representation.gzipped
        else:
            body = representation.body
        self._send(HTTPStatus.OK, body, feed.content_type, head, headers)

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
