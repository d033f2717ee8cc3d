"""The HTTP server's decisions (validators, gzip) and its caches of feeds and of the index
page, without a daemon; the whole server is exercised in tests/e2e/test_daemon.py and the
index page in a real browser in tests/e2e/test_index_browser.py."""

from __future__ import annotations

import email.utils
import gzip
import http.client
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import Request, urlopen

import pytest

from aggregator.models import MediaType
from aggregator.service.server import (
    HTML_TYPE,
    INDEX_VARY,
    FeedCache,
    FeedFile,
    FeedServer,
    Site,
    accepts_gzip,
    last_modified,
    not_modified,
    served_type,
)
from aggregator.service.ui_text import LocalizedPage

RSS_TYPE = served_type(MediaType.RSS)
ATOM_TYPE = served_type(MediaType.ATOM)


def make_site(folder: Path, rss_name: str, atom_name: str) -> Site:
    """The site of just a merged feed written as `folder/rss_name` and `folder/atom_name`."""
    return Site.of(
        [
            FeedFile(os.fspath(folder / rss_name), RSS_TYPE, quote(rss_name), merged=True),
            FeedFile(os.fspath(folder / atom_name), ATOM_TYPE, quote(atom_name), merged=True),
        ]
    )


GZIP_CASES = [
    ("absent", None, False),
    ("empty", "", False),
    ("gzip", "gzip", True),
    ("among others", "gzip, deflate, br", True),
    ("case and q", "deflate, GZIP;q=0.5", True),
    ("x-gzip", "x-gzip", True),
    ("q=0 refuses", "gzip;q=0", False),
    ("q=0.000 refuses", "gzip; q=0.000", False),
    ("identity only", "identity", False),
    ("star", "*", True),
    ("star q=0 refuses", "*;q=0", False),
    ("preferences", "br;q=1.0, gzip;q=0.8, *;q=0.1", True),
    ("gzip q=0 beats star", "*;q=0.5, gzip;q=0", False),
    ("gzip q=0 before star", "gzip;q=0, *", False),
    ("star q=0 beside gzip", "gzip, *;q=0", True),
    ("not a qvalue", "gzip;q=nonsense", False),
    ("q over 1", "gzip;q=2", False),
    ("q with four decimals", "gzip;q=0.0001", False),
    ("other parameter", "gzip;level=1", True),
]


@pytest.mark.parametrize(
    ("header", "expected"),
    [case[1:] for case in GZIP_CASES],
    ids=[case[0] for case in GZIP_CASES],
)
def test_accepts_gzip(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


ETAG = '"abc"'
SECOND = 1_700_000_000
MTIME = SECOND * 1_000_000_000 + 700_000_000  # written at SECOND.7
DATE = email.utils.formatdate
VALIDATOR_CASES = [
    # id, If-None-Match, If-Modified-Since, etag of the variant sent, its mtime -> 304?
    ("no validators", None, None, ETAG, MTIME, False),
    ("same tag", ETAG, None, ETAG, MTIME, True),
    ("weak form of the tag", f"W/{ETAG}", None, ETAG, MTIME, True),
    ("tag in a list", f'"other", {ETAG}', None, ETAG, MTIME, True),
    ("list without spaces", f'"other",W/{ETAG}', None, ETAG, MTIME, True),
    ("star", "*", None, ETAG, MTIME, True),
    ("another tag", '"other"', None, ETAG, MTIME, False),
    ("unquoted tag", "abc", None, ETAG, MTIME, False),
    ("empty If-None-Match", "", None, ETAG, MTIME, False),
    ("identity tag for the gzip variant", ETAG, None, '"abc-gzip"', MTIME, False),
    ("gzip tag for the identity variant", '"abc-gzip"', None, ETAG, MTIME, False),
    ("gzip tag for the gzip variant", '"abc-gzip"', None, '"abc-gzip"', MTIME, True),
    ("tag decides over a matching date", '"other"', DATE(SECOND + 1, usegmt=True), ETAG,
     MTIME, False),
    ("tag decides over an old date", ETAG, DATE(SECOND - 100, usegmt=True), ETAG, MTIME,
     True),
    ("date after the write", None, DATE(SECOND + 1, usegmt=True), ETAG, MTIME, True),
    ("date long after", None, DATE(SECOND + 100, usegmt=True), ETAG, MTIME, True),
    ("date of the write's second", None, DATE(SECOND, usegmt=True), ETAG, MTIME, False),
    ("date on the whole second", None, DATE(SECOND, usegmt=True), ETAG,
     SECOND * 1_000_000_000, True),
    ("date before", None, DATE(SECOND - 1, usegmt=True), ETAG, MTIME, False),
    ("not a date", None, "not a date", ETAG, MTIME, False),
    ("a date, not dated", None, DATE(SECOND + 1, usegmt=True), ETAG, None, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "etag", "modified_ns", "expected"),
    [case[1:] for case in VALIDATOR_CASES],
    ids=[case[0] for case in VALIDATOR_CASES],
)
def test_not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    modified_ns: int | None,
    expected: bool,
) -> None:
    """RFC 9110 13.2.2: If-None-Match (weak comparison, against the tag of the coding being
    sent) decides when present, else If-Modified-Since against the exact mtime."""
    assert not_modified(etag, modified_ns, if_none_match, if_modified_since) is expected


LAST_MODIFIED_CASES = [
    ("rounded up once its second passed", MTIME, SECOND + 5, SECOND + 1),
    ("a whole second stays", SECOND * 1_000_000_000, SECOND + 5, SECOND),
    ("never after the answer's date", MTIME, SECOND + 0.9, SECOND),
    ("one nanosecond past", SECOND * 1_000_000_000 + 1, SECOND + 5, SECOND + 1),
]


@pytest.mark.parametrize(
    ("modified_ns", "now", "expected"),
    [case[1:] for case in LAST_MODIFIED_CASES],
    ids=[case[0] for case in LAST_MODIFIED_CASES],
)
def test_last_modified(modified_ns: int, now: float, expected: int) -> None:
    assert last_modified(modified_ns, now) == expected


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<rss>one</rss>")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path


def test_a_rewrite_within_the_same_second_is_not_answered_304_by_date(tmp_path: Path) -> None:
    """A reader that keeps only Last-Modified must get a version written in the same
    second as the one it holds (the dates HTTP carries are whole seconds)."""
    path = tmp_path / "feed.xml"
    cache = FeedCache()
    path.write_bytes(b"<rss>one</rss>")
    os.utime(path, ns=(MTIME - 500_000_000, MTIME - 500_000_000))  # SECOND.2
    first = cache.get(path)
    assert first is not None
    held = DATE(last_modified(first.modified_ns, SECOND + 0.3), usegmt=True)  # served at .3
    replacement = tmp_path / ".feed.xml.tmp"
    replacement.write_bytes(b"<rss>two</rss>")
    os.utime(replacement, ns=(MTIME, MTIME))  # SECOND.7
    os.replace(replacement, path)
    second = cache.get(path)
    assert second is not None and second.body == b"<rss>two</rss>"
    assert not not_modified(second.etag, second.modified_ns, None, held)
    # Once that second has passed, the new version's own date validates it.
    settled = DATE(last_modified(second.modified_ns, SECOND + 5), usegmt=True)
    assert not_modified(second.etag, second.modified_ns, None, settled)


def test_the_cache_rereads_a_replaced_file_only(feed: Path) -> None:
    cache = FeedCache()
    first = cache.get(feed)
    assert first is not None and cache.get(feed) is first
    replacement = feed.with_name(".feed.xml.tmp")
    replacement.write_bytes(b"<rss>two, longer</rss>")
    os.replace(replacement, feed)
    second = cache.get(feed)
    assert second is not None and second.body == b"<rss>two, longer</rss>"
    assert second.etag != first.etag
    assert gzip.decompress(second.gzipped) == second.body


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    assert FeedCache().get(tmp_path / "absent.xml") is None


def test_the_cache_keeps_only_the_most_recently_served_within_its_bound(tmp_path: Path) -> None:
    """A reader fetching every source's feeds must not make the server hold them all."""
    paths = []
    for number in range(4):
        path = tmp_path / f"{number}.xml"
        path.write_bytes(os.urandom(4000))  # incompressible: each entry costs ~8 KB
        paths.append(str(path))
    cache = FeedCache(max_bytes=20_000)
    first = cache.get(paths[0])
    cache.get(paths[1])
    assert cache.get(paths[0]) is first  # served again: now the most recent
    cache.get(paths[2])  # over the bound: the least recently served (1) goes
    assert cache.get(paths[0]) is first
    assert sum(entry.size for entry in cache._cache.values()) <= 20_000
    assert list(cache._cache) == [paths[2], paths[0]]
    cache.get(paths[3])
    assert paths[0] in cache._cache and paths[3] in cache._cache


class Page:
    """What the daemon would build for /: counts its builds, can be slow or fail, speaks the
    language asked for unless `fixed` (the config's ui_language) says otherwise."""

    def __init__(self) -> None:
        self.body = b"<!DOCTYPE html>\n<title>one</title>\n"  # in English
        self.builds = 0
        self.asked: list[str] = []
        self.delay = 0.0
        self.fails = False
        self.fixed: str | None = None

    def build(self, language: str) -> bytes:
        self.builds += 1
        self.asked.append(language)
        time.sleep(self.delay)
        if self.fails:
            raise RuntimeError("the database is gone")
        if self.fixed is not None:
            return LocalizedPage(self.body_in(self.fixed), self.fixed)
        return self.body_in(language)

    def body_in(self, language: str) -> bytes:
        if language == "en":
            return self.body
        return self.body.replace(b"<title>", f'<html lang="{language}"><title>'.encode())


def no_page(language: str) -> bytes:
    return b""


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = Request(url, headers={k.replace("_", "-"): v for k, v in headers.items()})
    try:
        with urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def page_server(tmp_path: Path) -> Iterator[tuple[FeedServer, Page]]:
    page = Page()
    site = make_site(tmp_path, "feed.xml", "atom.xml")
    server = FeedServer("127.0.0.1", 0, site, health=lambda: True, status=dict, index=page.build)
    server.start()
    yield server, page
    server.stop()


def test_the_index_page_is_built_once_and_revalidated(
    page_server: tuple[FeedServer, Page],
) -> None:
    server, page = page_server
    status, headers, body = get(server.url)
    assert (status, headers["Content-Type"], body) == (200, HTML_TYPE, page.body)
    etag = headers["ETag"]
    assert "Last-Modified" not in headers  # the ETag alone validates a built page
    assert get(server.url, If_None_Match=etag)[0] == 304
    head = Request(server.url, method="HEAD")
    with urlopen(head, timeout=10) as answer:
        assert answer.read() == b"" and answer.headers["Content-Length"] == str(len(page.body))
    zipped = get(server.url, Accept_Encoding="gzip")
    assert gzip.decompress(zipped[2]) == page.body
    assert zipped[1]["ETag"] != etag
    assert get(server.url, If_None_Match=zipped[1]["ETag"], Accept_Encoding="gzip")[0] == 304
    # Each coding's tag validates that coding only.
    assert get(server.url, If_None_Match=zipped[1]["ETag"])[0] == 200
    assert get(server.url, If_None_Match=etag, Accept_Encoding="gzip")[0] == 200
    assert page.builds == 1  # eight requests, one build

    # A publish marks it stale: rebuilt, and the same bytes keep the same ETag.
    server.index.stale()
    assert get(server.url, If_None_Match=etag)[0] == 304
    assert page.builds == 2
    # New bytes: a new ETag, and the old one no longer matches.
    page.body = b"<!DOCTYPE html>\n<title>two</title>\n"
    server.index.stale()
    status, headers, body = get(server.url, If_None_Match=etag)
    assert (status, body) == (200, page.body) and headers["ETag"] != etag


def test_the_index_page_speaks_each_readers_language(
    page_server: tuple[FeedServer, Page],
) -> None:
    """One page per language, each built once, with its language named and its own ETags:
    a browser's copy in one language is never confirmed (304) for a request of another."""
    server, page = page_server
    english = get(server.url)
    chinese = get(server.url, Accept_Language="zh-CN,zh;q=0.9,en;q=0.8")
    traditional = get(server.url, Accept_Language="zh-TW")
    assert english[2] == page.body and chinese[2] == page.body_in("zh-Hans")
    assert traditional[2] == page.body_in("zh-Hant")
    for (status, headers, _), language in zip(
        (english, chinese, traditional), ("en", "zh-Hans", "zh-Hant"), strict=True
    ):
        assert status == 200
        assert headers["Content-Language"] == language
        assert headers["Vary"] == INDEX_VARY == "Accept-Encoding, Accept-Language"
    tags = {english[1]["ETag"], chinese[1]["ETag"], traditional[1]["ETag"]}
    assert len(tags) == 3
    # Cached per language: asked again in other words for the same language, no build.
    assert get(server.url, Accept_Language="zh-Hans-CN")[2] == page.body_in("zh-Hans")
    assert get(server.url, Accept_Language="en-GB, fr;q=0.5")[2] == page.body
    assert page.asked == ["en", "zh-Hans", "zh-Hant"]

    zh_tag = chinese[1]["ETag"]
    revalidated = get(server.url, Accept_Language="zh-CN", If_None_Match=zh_tag)
    assert revalidated[0] == 304 and revalidated[2] == b""
    assert revalidated[1]["Vary"] == INDEX_VARY and revalidated[1]["ETag"] == zh_tag
    # The Chinese copy held, English asked: the English page, not a 304.
    crossed = get(server.url, Accept_Language="en", If_None_Match=zh_tag)
    assert (crossed[0], crossed[2], crossed[1]["Content-Language"]) == (200, page.body, "en")
    crossed = get(server.url, Accept_Language="zh-TW", If_None_Match=english[1]["ETag"])
    assert (crossed[0], crossed[1]["Content-Language"]) == (200, "zh-Hant")
    # Each language's gzip has its own tag too.
    zipped = get(server.url, Accept_Language="zh-CN", Accept_Encoding="gzip")
    assert gzip.decompress(zipped[2]) == page.body_in("zh-Hans")
    assert zipped[1]["ETag"] not in tags
    assert zipped[1]["Content-Language"] == "zh-Hans"
    assert get(server.url, If_None_Match=zipped[1]["ETag"], Accept_Encoding="gzip")[0] == 200
    both = f"{english[1]['ETag']}, {zh_tag}"  # a cache holding both asks for either
    assert get(server.url, Accept_Language="zh", If_None_Match=both)[0] == 304
    assert page.builds == 3

    # A publish makes every language stale; each is rebuilt when asked for, and the same
    # bytes keep the same tag.
    server.index.stale()
    assert get(server.url, Accept_Language="zh-CN", If_None_Match=zh_tag)[0] == 304
    assert page.asked[3:] == ["zh-Hans"]
    assert get(server.url, If_None_Match=english[1]["ETag"])[0] == 304
    assert page.asked[3:] == ["zh-Hans", "en"]


def test_a_language_fixed_by_the_config_is_every_readers(
    page_server: tuple[FeedServer, Page],
) -> None:
    """`ui_language: zh` in the config: whatever a browser asks for, the Chinese page, named
    as such, and one ETag for it (the same bytes in the same language)."""
    server, page = page_server
    page.fixed = "zh-Hans"
    english = get(server.url, Accept_Language="en-US,en;q=0.9")
    chinese = get(server.url, Accept_Language="zh-CN")
    for status, headers, body in (english, chinese):
        assert (status, body) == (200, page.body_in("zh-Hans"))
        assert headers["Content-Language"] == "zh-Hans"
    assert english[1]["ETag"] == chinese[1]["ETag"]
    assert get(server.url, If_None_Match=chinese[1]["ETag"])[0] == 304


def test_the_index_page_is_rebuilt_when_old(page_server: tuple[FeedServer, Page]) -> None:
    """A failing poll changes a source's state without a publish; the page catches up."""
    server, page = page_server
    server.index.max_age = 0.2
    get(server.url)
    get(server.url)
    assert page.builds == 1
    time.sleep(0.3)
    get(server.url)
    assert page.builds == 2


def test_readers_of_a_stale_index_page_share_one_build(
    page_server: tuple[FeedServer, Page],
) -> None:
    server, page = page_server
    page.delay = 0.3
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: get(server.url)[0], range(16)))
    assert answers == [200] * 16
    assert page.builds == 1


def test_an_index_page_that_cannot_be_built_is_a_500_and_a_log_line(
    page_server: tuple[FeedServer, Page], caplog: pytest.LogCaptureFixture
) -> None:
    server, page = page_server
    page.fails = True
    assert get(server.url)[0] == 500
    assert "cannot build the index page" in caplog.text
    page.fails = False
    assert get(server.url)[0] == 200  # a failed build is not cached


def test_serves_many_concurrent_readers(feed: Path, tmp_path: Path) -> None:
    site = make_site(tmp_path, "feed.xml", "atom.xml")
    (tmp_path / "atom.xml").write_bytes(b"<feed/>")
    healthy = threading.Event()
    server = FeedServer(
        "127.0.0.1", 0, site, health=healthy.is_set, status=lambda: {"ok": 1}, index=no_page
    )
    server.start()
    try:

        def read(_: int) -> tuple[int, str, bytes]:
            with urlopen(Request(server.url + "feed.xml"), timeout=10) as answer:
                return answer.status, answer.headers["Content-Type"], answer.read()

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(read, range(200)))
        assert set(answers) == {(200, RSS_TYPE, b"<rss>one</rss>")}
        with urlopen(server.url + "atom.xml", timeout=10) as answer:
            assert answer.headers["Content-Type"] == ATOM_TYPE
        with pytest.raises(Exception, match="503"):
            urlopen(server.url + "healthz", timeout=10)
        healthy.set()
        with urlopen(server.url + "healthz", timeout=10) as answer:
            assert answer.status == 200
    finally:
        server.stop()


def test_a_reader_hanging_up_mid_answer_is_no_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "feed.xml").write_bytes(b"<rss>" + b"x" * 8_000_000 + b"</rss>")
    site = make_site(tmp_path, "feed.xml", "atom.xml")
    server = FeedServer("127.0.0.1", 0, site, health=lambda: True, status=dict, index=no_page)
    server.start()
    try:
        host, port = server.address
        for _ in range(3):
            with socket.create_connection((host, port)) as sock:
                sock.sendall(b"GET /feed.xml HTTP/1.1\r\nHost: x\r\n\r\n")
                sock.recv(1000)
                # Close with a reset, as a reader killed mid-download does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with urlopen(server.url + "healthz", timeout=10) as answer:
            assert answer.status == 200
        time.sleep(0.3)  # let the handlers of the reset connections finish
    finally:
        server.stop()
    assert "Traceback" not in capsys.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_group_feeds_are_routed_by_folder_and_nothing_else() -> None:
    """A source's and a category's files are found through their folder (one string per
    group, not one object per file), by decoded URL path; anything else is not a feed."""
    site = Site.of(
        [FeedFile("/pub/feed.xml", RSS_TYPE, "feed.xml", merged=True)],
        folders={"/source/news/": "/pub/source/news", "/category/新闻/": "/pub/category/新闻"},
        folder_files={"feed.xml": RSS_TYPE, "atom.xml": ATOM_TYPE},
    )
    assert site.file("/feed.xml") == FeedFile("/pub/feed.xml", RSS_TYPE, "feed.xml", True)
    assert site.file("/source/news/atom.xml") == FeedFile(
        "/pub/source/news/atom.xml", ATOM_TYPE, "source/news/atom.xml"
    )
    chinese = site.file("/category/新闻/feed.xml")
    assert chinese is not None and chinese.path == "/pub/category/新闻/feed.xml"
    assert chinese.href == "category/%E6%96%B0%E9%97%BB/feed.xml"
    for other in (
        "/source/news/",
        "/source/news/index.html",
        "/source/other/feed.xml",
        "/source/news/../news/feed.xml",
        "/source/news//feed.xml",
        "/source/feed.xml",
        "/atom.xml",
        "",
    ):
        assert site.file(other) is None, other


@pytest.fixture
def feed_server(feed: Path) -> Iterator[FeedServer]:
    site = make_site(feed.parent, "feed.xml", "atom.xml")
    server = FeedServer("127.0.0.1", 0, site, health=lambda: True, status=dict, index=no_page)
    server.start()
    yield server
    server.stop()


def exchange(server: FeedServer, raw: bytes) -> bytes:
    """Send raw bytes, read until the server closes (or 3 s of silence)."""
    with socket.create_connection(server.address, timeout=3) as sock:
        sock.sendall(raw)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer


METHOD_CASES = [
    ("GET", "GET", "/feed.xml", 200, None),
    ("HEAD", "HEAD", "/feed.xml", 200, None),
    ("POST", "POST", "/feed.xml", 405, "GET, HEAD"),
    ("PUT", "PUT", "/feed.xml", 405, "GET, HEAD"),
    ("DELETE", "DELETE", "/feed.xml", 405, "GET, HEAD"),
    ("PATCH", "PATCH", "/feed.xml", 405, "GET, HEAD"),
    ("OPTIONS", "OPTIONS", "/feed.xml", 405, "GET, HEAD"),
    ("TRACE", "TRACE", "/feed.xml", 405, "GET, HEAD"),
    ("POST to the index", "POST", "/", 405, "GET, HEAD"),
    ("DELETE on /status", "DELETE", "/status", 405, "GET, HEAD"),
    ("POST to nothing", "POST", "/nothing", 404, None),
    ("unknown method", "BREW", "/feed.xml", 501, None),
    ("WebDAV method", "PROPFIND", "/feed.xml", 501, None),
    ("lower-case get is another method", "get", "/feed.xml", 501, None),
]


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [case[1:] for case in METHOD_CASES],
    ids=[case[0] for case in METHOD_CASES],
)
def test_methods(
    feed_server: FeedServer, method: str, path: str, status: int, allow: str | None
) -> None:
    """RFC 9110 15.5.6 and 15.6.2: a method known but not taken by the resource is a 405
    naming the ones it takes; one the server does not know is a 501."""
    connection = http.client.HTTPConnection(*feed_server.address, timeout=5)
    try:
        connection.request(method, path, body=b"x" if method in {"POST", "PUT"} else None)
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    assert answer.status == status
    assert answer.getheader("Allow") == allow
    if method == "HEAD":
        assert body == b"" and answer.getheader("Content-Length") == str(len(b"<rss>one</rss>"))


CODING_CASES = [
    # id, Accept-Encoding, which variant's tag the client holds -> status, coding sent
    ("identity, its own tag", None, "identity", 304, None),
    ("identity, the gzip tag", None, "gzip", 200, None),
    ("gzip, its own tag", "gzip", "gzip", 304, "gzip"),
    ("gzip, the identity tag", "gzip", "identity", 200, "gzip"),
    ("gzip refused by q=0, the gzip tag", "*;q=0.5, gzip;q=0", "gzip", 200, None),
    ("gzip refused by q=0, the identity tag", "*;q=0.5, gzip;q=0", "identity", 304, None),
    ("weak identity tag", None, "W/identity", 304, None),
]


@pytest.mark.parametrize(
    ("accept_encoding", "held", "status", "coding"),
    [case[1:] for case in CODING_CASES],
    ids=[case[0] for case in CODING_CASES],
)
def test_each_coding_has_its_own_tag(
    feed_server: FeedServer,
    accept_encoding: str | None,
    held: str,
    status: int,
    coding: str | None,
) -> None:
    url = feed_server.url + "feed.xml"
    plain, zipped = get(url)[1]["ETag"], get(url, Accept_Encoding="gzip")[1]["ETag"]
    assert zipped == plain[:-1] + '-gzip"'
    tag = {"identity": plain, "W/identity": f"W/{plain}", "gzip": zipped}[held]
    headers = {"If_None_Match": tag}
    if accept_encoding is not None:
        headers["Accept_Encoding"] = accept_encoding
    answer_status, answer_headers, body = get(url, **headers)
    assert answer_status == status
    assert answer_headers["ETag"] == (zipped if coding == "gzip" else plain)
    assert answer_headers["Vary"] == "Accept-Encoding"  # a feed is in one language
    assert "Content-Language" not in answer_headers
    if status == 200:
        assert answer_headers.get("Content-Encoding") == coding
        assert (gzip.decompress(body) if coding else body) == b"<rss>one</rss>"
    else:
        assert body == b"" and "Content-Encoding" not in answer_headers


CONNECTION_CASES = [
    ("1.1 keeps the connection", b"HTTP/1.1", b"", None, 2),
    ("1.1 with close", b"HTTP/1.1", b"Connection: close\r\n", "close", 1),
    ("1.1 with Close", b"HTTP/1.1", b"Connection: Close\r\n", "close", 1),
    ("1.0 closes", b"HTTP/1.0", b"", "close", 1),
    ("1.0 with close", b"HTTP/1.0", b"Connection: close\r\n", "close", 1),
]


@pytest.mark.parametrize(
    ("version", "header", "connection", "answers"),
    [case[1:] for case in CONNECTION_CASES],
    ids=[case[0] for case in CONNECTION_CASES],
)
def test_connection_close_is_answered_and_done(
    feed_server: FeedServer, version: bytes, header: bytes, connection: str | None, answers: int
) -> None:
    """RFC 9112 9.6: a request with `Connection: close` (or a 1.0 one) gets an answer saying
    so and the connection is closed after it; a second request on it is never read."""
    request = b"GET /healthz " + version + b"\r\nHost: x\r\n" + header + b"\r\n"
    second = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = exchange(feed_server, request + second)
    assert raw.count(b" 200 OK\r\n") == answers
    first_head = raw.split(b"\r\n\r\n")[0].decode().lower()
    if connection is None:
        assert "connection: close" not in first_head
    else:
        assert f"connection: {connection}" in first_head


def test_answers_carry_date_and_server(feed_server: FeedServer) -> None:
    status, headers, _ = get(feed_server.url + "healthz")
    assert status == 200
    assert email.utils.parsedate_to_datetime(headers["Date"]) is not None
    assert headers["Server"].startswith("aggregator/")
    assert headers["Cache-Control"] == "no-store"


def test_a_port_in_use_fails_when_the_server_is_made(feed_server: FeedServer) -> None:
    """The daemon turns this OSError into its 'cannot listen on …' line and exit code 2."""
    host, port = feed_server.address
    with pytest.raises(OSError):
        FeedServer(host, port, feed_server.site, health=lambda: True, status=dict, index=no_page)
