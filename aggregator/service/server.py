"""The built-in HTTP server of `aggregator run`: the feeds, /healthz, /status, /metrics and /.

Feed readers subscribe here directly, so it speaks the HTTP they rely on (RFC 9110): correct
Content-Type, an ETag per content-coding and Last-Modified, 304 on If-None-Match (weak
comparison) / If-Modified-Since, HEAD, gzip when asked and not refused (q=0), 405 with
`Allow` for methods a feed does not take and 501 for methods unknown. Feeds are served from
bytes cached in memory and reloaded when the file on disk changes (a stat per request), so
many concurrent readers cost no disk reads and never touch the database or the polls. Only
the daemon's callables read the database: /status on each request, the index page at /
(index_page.py) at most once per INDEX_MAX_AGE or publish and language: / is served in the
language negotiated from Accept-Language (ui_text.py), with Content-Language, `Vary:
Accept-Encoding, Accept-Language` and an ETag per language and coding. Connections, their
bounds in number, time and size, and the threads answering are http_listener.py's.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import itertools
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from aggregator import __version__
from aggregator.service.http_listener import HttpListener, HttpReply, HttpRequest, Limits
from aggregator.service.ui_text import LocalizedPage, negotiate
from aggregator.text import accept_weight, parse_http_date

log = logging.getLogger(__name__)

HTML_TYPE = "text/html; charset=utf-8"
INDEX_MAX_AGE = 5.0  # seconds the index page is served unchanged when nothing was published
CACHE_BYTES = 32 * 1024 * 1024  # feed bytes (plain and gzipped) kept in memory at most
ALLOW = "GET, HEAD"
# Methods of RFC 9110 (and PATCH, RFC 5789): known, so 405 with Allow; any other is a 501.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")|\*')  # an If-None-Match member; W/ is ignored


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


def served_type(media_type: str) -> str:
    """The Content-Type a published file of `media_type` is served with."""
    return f"{media_type}; charset=utf-8"


@dataclass(frozen=True)
class Representation:
    """One version of one feed file, ready to send: plain and gzipped, with validators."""

    stamp: tuple[int, int, int]  # (mtime_ns, size, inode) it was read at
    body: bytes
    gzipped: bytes
    etag: str
    gzip_etag: str
    modified_ns: int  # the file's mtime, for Last-Modified and If-Modified-Since
    language: str | None = None  # of a page built in a language: Content-Language

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
            fresh = _representation(stamp, body, info.st_mtime_ns)
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
    """The index page as served, one per language: built by the daemon's `build` callable
    (which queries the database) for a language, then reused until it is marked stale (a
    publish or a reload happened) or is older than `max_age` (a poll that failed changes a
    source's state without a publish). `build` returns the page's bytes, as a
    `LocalizedPage` when they are in another language than the one asked for (the config's
    `ui_language` fixes one).

    Concurrent requests for a stale page wait for one build instead of each running it. A
    rebuild that gives the same bytes keeps the same representation, so a browser's
    If-None-Match still gets a 304.
    """

    def __init__(self, build: Callable[[str], bytes], max_age: float = INDEX_MAX_AGE) -> None:
        self._build = build
        self.max_age = max_age
        self._lock = threading.Lock()
        self._marks = itertools.count(1)  # next() is atomic: stale() never waits for a build
        self._generation = 0
        # language asked for -> (generation, built at, page); a few languages at most
        self._current: dict[str, tuple[int, float, Representation]] = {}

    def stale(self) -> None:
        """The pages no longer show the database; the next request for each rebuilds it."""
        self._generation = next(self._marks)

    def get(self, language: str) -> Representation:
        """The current page in `language`; raises whatever `build` raises."""
        if (page := self._fresh(language)) is not None:
            return page
        with self._lock:
            if (page := self._fresh(language)) is not None:
                return page
            generation, started = self._generation, time.monotonic()
            body = self._build(language)
            built_in = body.language if isinstance(body, LocalizedPage) else language
            body = bytes(body)
            current = self._current.get(language)
            if current is not None and (current[2].body, current[2].language) == (body, built_in):
                page = current[2]
            else:
                page = _representation((0, len(body), 0), body, time.time_ns(), built_in)
            self._current[language] = (generation, started, page)
            return page

    def _fresh(self, language: str) -> Representation | None:
        current = self._current.get(language)
        if current is None or current[0] != self._generation:
            return None
        return current[2] if time.monotonic() - current[1] < self.max_age else None


def _representation(
    stamp: tuple[int, int, int], body: bytes, modified_ns: int, language: str | None = None
) -> Representation:
    digest = hashlib.sha256(body).hexdigest()[:32]
    if language is not None:  # its own tags, whatever bytes another language's page has
        digest = f"{digest}-{language}"
    return Representation(
        stamp=stamp,
        body=body,
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        # Strong validators differ per content-coding (RFC 9110 8.8.3).
        etag=f'"{digest}"',
        gzip_etag=f'"{digest}-gzip"',
        modified_ns=modified_ns,
        language=language,
    )


def accepts_gzip(header: str | None) -> bool:
    """Whether an Accept-Encoding header allows gzip: its own entry (gzip or x-gzip) decides
    when it has one, else `*`; a q of 0, or one that is not a qvalue, refuses (RFC 9110
    12.5.3). No header at all: identity, the safe choice for old clients."""
    if not header:
        return False
    named: float | None = None
    anything: float | None = None
    for part in header.split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        if coding in {"gzip", "x-gzip"}:
            named = max(named or 0.0, accept_weight(params))
        elif coding == "*":
            anything = accept_weight(params)
    quality = named if named is not None else anything
    return quality is not None and quality > 0


def last_modified(modified_ns: int, now: float) -> int:
    """Last-Modified in whole seconds: the mtime rounded up, never later than `now`, the
    answer's Date (RFC 9110 8.8.2.1). Rounded up, the seconds of a served version are never
    those of an earlier version: see `not_modified`."""
    return min(-(-modified_ns // 1_000_000_000), int(now))


def not_modified(
    etag: str, modified_ns: int | None, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """Whether the client's copy is the representation whose validators are `etag` (of the
    content-coding about to be sent) and `modified_ns` (None: not dated). RFC 9110 13.2.2:
    If-None-Match decides when present, by weak comparison (13.1.2); else If-Modified-Since,
    against the exact mtime: a date taken from a version written in the same second as this
    one is earlier than this one's mtime, so that client gets the new version."""
    if if_none_match is not None:
        opaque = etag.removeprefix("W/")
        return any(tag.group(1) in (None, opaque) for tag in ENTITY_TAG.finditer(if_none_match))
    if if_modified_since and modified_ns is not None:
        since = parse_http_date(if_modified_since)
        return since is not None and modified_ns <= int(since.timestamp()) * 1_000_000_000
    return False


class FeedServer:
    """The routes over an `HttpListener` (http_listener.py) in a background thread.

    `health`, `status` and `index` are the daemon's: /healthz answers 200 while `health()`
    is true, /status returns `status()` as JSON, / serves the HTML bytes `index(language)`
    builds for the language negotiated with the request (ui_text.negotiate), cached per
    language in `self.index` (the daemon calls `self.index.stale()` after it publishes).
    """

    def __init__(
        self,
        host: str,
        port: int,
        site: Site,
        health: Callable[[], bool],
        status: Callable[[], dict[str, Any]],
        index: Callable[[str], bytes],
        limits: Limits | None = None,
        metrics: Callable[[str | None], tuple[bytes, str]] | None = None,
    ) -> None:
        self.site = site  # replaced whole on reload; a reference read is atomic
        self.health = health
        self.status = status
        self.metrics = metrics
        self.index = PageCache(index)
        self.cache = FeedCache()
        self.listener = HttpListener(host, port, self.answer, f"aggregator/{__version__}", limits)

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> None:
        self.listener.start()

    def alive(self) -> bool:
        return self.listener.alive()

    def stop(self) -> None:
        """Stop accepting and close every connection."""
        self.listener.stop()

    def answer(self, request: HttpRequest) -> HttpReply:
        """The reply to one request (on one of the listener's worker threads)."""
        path = unquote(urlsplit(request.target).path)
        feed = self.site.file(path)
        if feed is None and path not in {"/", "/healthz", "/status", "/metrics"}:
            return _plain(HTTPStatus.NOT_FOUND, b"not found\n")
        if request.method not in {"GET", "HEAD"}:
            if request.method in KNOWN_METHODS:
                return _plain(
                    HTTPStatus.METHOD_NOT_ALLOWED, b"GET or HEAD only\n", ("Allow", ALLOW)
                )
            return _plain(HTTPStatus.NOT_IMPLEMENTED, b"unknown method\n")
        if feed is not None:
            return self._feed(feed, request)
        if path == "/healthz":
            if self.health():
                return _plain(HTTPStatus.OK, b"ok\n")
            return _plain(HTTPStatus.SERVICE_UNAVAILABLE, b"unavailable\n")
        if path == "/metrics" and self.metrics is not None:
            try:
                body, content_type = self.metrics(request.headers.get("accept"))
            except Exception:
                log.exception("cannot export the metrics")
                return _plain(HTTPStatus.INTERNAL_SERVER_ERROR, b"no metrics\n")
            return HttpReply(HTTPStatus.OK, [("Content-Type", content_type), NO_STORE], body)
        if path == "/metrics":
            return _plain(HTTPStatus.NOT_FOUND, b"not found\n")
        if path == "/status":
            try:
                report = self.status()
            except Exception:
                log.exception("cannot report the status")
                return _plain(HTTPStatus.INTERNAL_SERVER_ERROR, b"no status\n")
            body = json.dumps(report, indent=2, ensure_ascii=False).encode() + b"\n"
            return HttpReply(
                HTTPStatus.OK,
                [("Content-Type", "application/json; charset=utf-8"), NO_STORE],
                body,
            )
        try:
            page = self.index.get(negotiate(request.headers.get("accept-language")))
        except Exception:
            log.exception("cannot build the index page")
            return _plain(HTTPStatus.INTERNAL_SERVER_ERROR, b"no page\n")
        # Built at a moment, not from a file: the ETag alone validates it.
        return _validated(page, HTML_TYPE, request, dated=False, vary=INDEX_VARY)

    def _feed(self, feed: FeedFile, request: HttpRequest) -> HttpReply:
        representation = self.cache.get(feed.path)
        if representation is None:
            # Not published yet (or removed by hand): the daemon republishes soon.
            return _plain(
                HTTPStatus.SERVICE_UNAVAILABLE,
                b"the merged feed is not published yet\n",
                ("Retry-After", "30"),
            )
        return _validated(representation, feed.content_type, request, dated=True)


NO_STORE = ("Cache-Control", "no-store")  # health, status, errors: always fresh
FEED_VARY = "Accept-Encoding"
INDEX_VARY = "Accept-Encoding, Accept-Language"  # the page speaks the reader's language


def _plain(status: HTTPStatus, body: bytes, *headers: tuple[str, str]) -> HttpReply:
    return HttpReply(status, [("Content-Type", "text/plain"), NO_STORE, *headers], body)


def _validated(
    representation: Representation,
    content_type: str,
    request: HttpRequest,
    dated: bool,
    vary: str = FEED_VARY,
) -> HttpReply:
    """`representation` in the coding the client takes, or 304 when its copy is current."""
    compressed = accepts_gzip(request.headers.get("accept-encoding"))
    etag = representation.gzip_etag if compressed else representation.etag
    headers = [
        ("ETag", etag),
        ("Vary", vary),
        ("Cache-Control", "no-cache"),  # readers may keep it, but must revalidate
    ]
    modified_ns = representation.modified_ns if dated else None
    if modified_ns is not None:
        seconds = last_modified(modified_ns, time.time())
        headers.append(("Last-Modified", email.utils.formatdate(seconds, usegmt=True)))
    if not_modified(
        etag,
        modified_ns,
        request.headers.get("if-none-match"),
        request.headers.get("if-modified-since"),
    ):
        return HttpReply(HTTPStatus.NOT_MODIFIED, headers)
    headers.append(("Content-Type", content_type))
    if representation.language is not None:
        headers.append(("Content-Language", representation.language))
    if compressed:
        headers.append(("Content-Encoding", "gzip"))
        return HttpReply(HTTPStatus.OK, headers, representation.gzipped)
    return HttpReply(HTTPStatus.OK, headers, representation.body)
