"""The HTTP server's decisions (validators, gzip) and its caches of feeds and of the index
page, without a daemon; the whole server is exercised in tests/e2e/test_daemon.py and the
index page in a real browser in tests/e2e/test_index_browser.py."""

from __future__ import annotations

import email.utils
import gzip
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
from urllib.request import Request, urlopen

import pytest

from aggregator.server import (
    ATOM_TYPE,
    HTML_TYPE,
    RSS_TYPE,
    FeedCache,
    FeedFile,
    FeedServer,
    Site,
    accepts_gzip,
    make_site,
    not_modified,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("identity", False),
        ("*", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("gzip;q=nonsense", False),
    ],
)
def test_accepts_gzip(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<rss>one</rss>")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path


def test_validators_match_either_coding_and_weak_forms(feed: Path) -> None:
    current = FeedCache().get(feed)
    assert current is not None
    assert current.etag != current.gzip_etag
    assert not_modified(current, current.etag, None)
    assert not_modified(current, current.gzip_etag, None)
    assert not_modified(current, f'"other", W/{current.etag}', None)
    assert not_modified(current, "*", None)
    assert not not_modified(current, '"other"', None)
    assert not not_modified(current, None, None)


def test_if_modified_since(feed: Path) -> None:
    current = FeedCache().get(feed)
    assert current is not None
    assert current.last_modified == email.utils.formatdate(1_700_000_000, usegmt=True)
    assert not_modified(current, None, current.last_modified)
    assert not_modified(current, None, email.utils.formatdate(1_700_000_100, usegmt=True))
    assert not not_modified(current, None, email.utils.formatdate(1_699_999_000, usegmt=True))
    assert not not_modified(current, None, "not a date")
    # If-None-Match decides when both are sent (RFC 9110 13.2.2).
    assert not not_modified(current, '"other"', current.last_modified)


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
    """What the daemon would build for /: counts its builds, can be slow or fail."""

    def __init__(self) -> None:
        self.body = b"<!DOCTYPE html>\n<title>one</title>\n"
        self.builds = 0
        self.delay = 0.0
        self.fails = False

    def build(self) -> bytes:
        self.builds += 1
        time.sleep(self.delay)
        if self.fails:
            raise RuntimeError("the database is gone")
        return self.body


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
    assert get(server.url, If_None_Match=zipped[1]["ETag"])[0] == 304
    assert page.builds == 1  # five requests, one build

    # A publish marks it stale: rebuilt, and the same bytes keep the same ETag.
    server.index.stale()
    assert get(server.url, If_None_Match=etag)[0] == 304
    assert page.builds == 2
    # New bytes: a new ETag, and the old one no longer matches.
    page.body = b"<!DOCTYPE html>\n<title>two</title>\n"
    server.index.stale()
    status, headers, body = get(server.url, If_None_Match=etag)
    assert (status, body) == (200, page.body) and headers["ETag"] != etag


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
        "127.0.0.1", 0, site, health=healthy.is_set, status=lambda: {"ok": 1}, index=bytes
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
    server = FeedServer("127.0.0.1", 0, site, health=lambda: True, status=dict, index=bytes)
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
