"""Mirroring entries' images into the site (aggregator/outputs/images.py), against a real threaded
HTTP server on 127.0.0.1 whose every byte a test controls: what counts as an image and as an
entry's image, the documents pointing at the copies, one file per content, nothing fetched
twice, hostile image servers, an unwritable folder, and a process killed halfway."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from feedworld import rsshub_feed, rsshub_item
from invariants import check_outputs, front_matter, visible_files

from aggregator.config.settings import Config, load_config
from aggregator.errors import ConfigError
from aggregator.models import Entry, ImageOutcome, Source, StoredEntry
from aggregator.outputs.images import (
    FILE_NAME,
    MAX_PER_ENTRY,
    RETRY_FAILED,
    image_type,
    image_urls,
    not_an_image,
    plan_downloads,
    rewrite_html,
)
from aggregator.poll.pipeline import Pipeline
from aggregator.store.database import Store

SETTINGS = {"timeout": {"connect": 1, "read": 1, "total": 2}, "max_body": "1MiB"}
IMAGES = {"folder": "site/source/images/feeds", "url": "/images/feeds/", "max_size": "1MiB"}
SITE_URL = "/images/feeds/"
PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(200))
OTHER_PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(200, 0, -1))
GIF = b"GIF89a\x01\0\x01\0\x80\0\0" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0\0\x10JFIF\0" + bytes(range(100))
WEBP = b"RIFF\x24\0\0\0WEBPVP8 " + bytes(32)
AVIF = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf" + bytes(32)
AVIF_COMPATIBLE = b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf" + bytes(32)
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
HTML = b"<!DOCTYPE html><html><head><title>Hotlinking denied</title></head></html>"


# -- a server that does exactly what a test says ------------------------------------------

Route = Callable[[BaseHTTPRequestHandler], None]


class ImageServer:
    """A threaded HTTP server on 127.0.0.1 serving the feed and its images. Each route writes
    the whole answer itself; every request's path and headers are kept, and how many were
    being answered at once."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._active = 0
        self.peak = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def route(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)

    def image(self, path: str, body: bytes, content_type: str = "image/png") -> str:
        return self.route(path, answer(body, content_type))

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def close(self) -> None:
        self.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append((request.path, dict(request.headers)))
            self._active += 1
            self.peak = max(self.peak, self._active)
        try:
            route = self.routes.get(request.path)
            if route is None:
                answer(b"no such thing", "text/plain", "404 Not Found")(request)
            else:
                route(request)
        except OSError:
            request.close_connection = True  # the client hung up, as it should on a hostile server
        finally:
            with self._lock:
                self._active -= 1


def answer(body: bytes, content_type: str, status: str = "200 OK", **headers: str) -> Route:
    def route(request: BaseHTTPRequestHandler) -> None:
        lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}"]
        lines += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        request.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return route


@pytest.fixture
def server() -> Iterator[ImageServer]:
    running = ImageServer()
    yield running
    running.close()


# -- a world of one source whose entries hold images ---------------------------------------


class World:
    def __init__(self, server: ImageServer, tmp_path: Path) -> None:
        self.server = server
        self.tmp_path = tmp_path
        self.opened: list[tuple[Pipeline, Store]] = []

    def feed(self, *bodies: str) -> str:
        """Serve a feed of one item per body; `{url}` in a body is the server's address."""
        base = self.server.url("")
        items = [
            rsshub_item(i, body=body.replace("{url}", base), guid=f"item-{i}")
            for i, body in enumerate(bodies)
        ]
        return self.server.image("/feed", rsshub_feed(items), "application/rss+xml")

    def config(self, images: dict | None = IMAGES, **settings: object) -> Config:
        path = self.tmp_path / "config.yaml"
        data: dict = {"database": "state/test.db", "documents": "site/source/_posts"}
        data.update({"feed": {"folder": "site/public"}, **SETTINGS, **settings})
        if images is not None:
            data["images"] = images
        source = {"name": "news", "url": self.server.url("/feed")}
        data["sources"] = [{**source, **data.pop("source", {})}]
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return load_config(path)

    def pipeline(self, config: Config) -> Pipeline:
        store = Store(config.paths.database)
        pipeline = Pipeline(config, store, parse_processes=0)
        self.opened.append((pipeline, store))
        return pipeline

    def close(self) -> None:
        for pipeline, store in self.opened:
            pipeline.close()
            store.close()


@pytest.fixture
def world(server: ImageServer, tmp_path: Path) -> Iterator[World]:
    made = World(server, tmp_path)
    yield made
    made.close()


def documents(config: Config) -> dict[str, str]:
    return {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(config.paths.documents.glob("*.md"))
    }


def mirrored(config: Config) -> dict[str, bytes]:
    """The files a site would serve from the images folder, by name (`ab/<hash>.png`)."""
    assert config.images is not None
    folder = config.images.folder
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in visible_files(folder)
    }


def name_of(data: bytes, extension: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:2]}/{digest}.{extension}"


def image_requests(server: ImageServer) -> list[str]:
    return [path for path in server.paths() if path != "/feed"]


# -- what an image is ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (JPEG, "jpg"),
        (PNG, "png"),
        (b"GIF87a" + bytes(20), "gif"),
        (GIF, "gif"),
        (WEBP, "webp"),
        (AVIF, "avif"),
        (AVIF_COMPATIBLE, "avif"),
        (SVG, None),
        (HTML, None),
        (b"", None),
        (b"\0\0\0\x18ftypisom\0\0\0\0isommp41", None),
        (b"RIFF\x24\0\0\0WAVEfmt ", None),
        (b"\xff\xd8", None),
    ],
    ids=[
        "jpeg", "png", "gif87a", "gif89a", "webp", "avif", "avif-compatible-brand", "svg",
        "html", "empty", "mp4", "wav", "cut-jpeg",
    ],
)  # fmt: skip
def test_an_image_is_known_by_its_first_bytes(data: bytes, expected: str | None) -> None:
    assert image_type(data) == expected


def test_what_is_refused_is_said_in_words() -> None:
    assert not_an_image(HTML, "image/jpeg") == "not an image (an HTML page, sent as image/jpeg)"
    assert not_an_image(SVG, "image/svg+xml") == "an SVG image (refused: SVG can carry script)"
    assert not_an_image(b"<svg/>", None) == "an SVG image (refused: SVG can carry script)"
    assert not_an_image(b"", None) == "not an image (an empty answer)"
    assert not_an_image(b"%PDF-1.7", "application/octet-stream") == (
        "not an image (not a JPEG, PNG, GIF, WebP or AVIF image, sent as application/octet-stream)"
    )


# -- an entry's images and the rewritten HTML ------------------------------------------------


def stored(content: str, image: str | None = None) -> StoredEntry:
    entry = Entry("news", "id-1", "https://site.test/1", "t", None, None, None, content, image)
    moment = datetime(2022, 1, 28, tzinfo=UTC)
    return StoredEntry(1, entry, moment, moment, "2022-01-28-t-00000000.md")


@pytest.mark.parametrize(
    ("content", "image", "source_image", "expected"),
    [
        (
            '<p><img src="https://i.test/a.jpg?w=770&resize=770%2C433" alt></p>',
            "https://i.test/a.jpg?w=770&resize=770%2C433",
            None,
            ["https://i.test/a.jpg?w=770&resize=770%2C433"],
        ),
        (
            '<img src="https://i.test/a.jpg" srcset="https://i.test/a.jpg 1x, '
            'https://i.test/b.jpg 2x"><picture><source srcset="https://i.test/c.webp 400w">'
            "</picture>",
            None,
            None,
            ["https://i.test/a.jpg", "https://i.test/b.jpg", "https://i.test/c.webp"],
        ),
        ("<p>no image</p>", None, "https://i.test/logo.png", ["https://i.test/logo.png"]),
        (
            '<img src="https://i.test/x.png?a=1&amp;b=2&copy=3">',
            None,
            None,
            ["https://i.test/x.png?a=1&b=2&copy=3"],
        ),
        (
            '<a title="<img src=https://i.test/no.png>" href="https://i.test/y.png">y</a>'
            '<video src="https://i.test/v.mp4"></video><source src="https://i.test/s.mp3">',
            None,
            None,
            [],
        ),
        ("<img src='mailto:x@y.test'><img srcset='ftp://i.test/f.png 1x'>", None, None, []),
    ],
    ids=["seed-image", "srcset-and-picture", "source-image", "references", "not-images", "schemes"],
)
def test_image_urls_of_an_entry(
    content: str, image: str | None, source_image: str | None, expected: list[str]
) -> None:
    source = Source("news", "https://site.test/feed", image=source_image)
    assert image_urls(stored(content, image), source) == expected


def test_image_urls_are_capped_per_entry() -> None:
    content = "".join(f'<img src="https://i.test/{i}.png">' for i in range(MAX_PER_ENTRY + 10))
    assert len(image_urls(stored(content), None)) == MAX_PER_ENTRY


def test_rewriting_changes_only_the_mirrored_urls() -> None:
    content = (
        '<p>a &amp; b</p><p><img loading="lazy" class="x" src="https://i.test/a.jpg?w=1&h=2"'
        ' alt data-recalc-dims="1" referrerpolicy="no-referrer"></p>'
        "<img src='https://i.test/kept.png' srcset=\"https://i.test/a.jpg?w=1&amp;h=2 1x,"
        'https://i.test/b.png 2x">'
    )
    local = {"https://i.test/a.jpg?w=1&h=2": "/images/feeds/ab/ab12.jpg"}
    assert rewrite_html(content, local) == (
        '<p>a &amp; b</p><p><img loading="lazy" class="x" src="/images/feeds/ab/ab12.jpg"'
        ' alt data-recalc-dims="1" referrerpolicy="no-referrer"></p>'
        "<img src='https://i.test/kept.png' srcset=\"/images/feeds/ab/ab12.jpg 1x, "
        'https://i.test/b.png 2x">'
    )
    assert rewrite_html(content, {}) == content
    assert rewrite_html(content, {"https://other.test/x.png": "/x"}) == content


def test_an_unclosed_tag_costs_one_scan() -> None:
    started = time.monotonic()
    hostile = "<img " + "a=b/c/d " * 50_000 + '<img src="https://i.test/a.png"'
    rewrite_html(hostile, {"https://i.test/a.png": "/x"})
    assert time.monotonic() - started < 1


NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("outcome", "present", "expected"),
    [
        (None, False, "fetch"),
        (ImageOutcome("u", "ab/x.png", None, NOW - timedelta(days=30)), True, "local"),
        (ImageOutcome("u", "ab/x.png", None, NOW), False, "fetch"),
        (ImageOutcome("u", None, "HTTP 404 Not Found", NOW - timedelta(hours=23)), False, "keep"),
        (ImageOutcome("u", None, "HTTP 404 Not Found", NOW - RETRY_FAILED), False, "fetch"),
    ],
    ids=["never-tried", "mirrored", "file-gone", "failed-lately", "failed-a-day-ago"],
)
def test_what_is_fetched(outcome: ImageOutcome | None, present: bool, expected: str) -> None:
    known = {"u": outcome} if outcome else {}
    local, due = plan_downloads(["u"], known, {"ab/x.png"} if present else set(), NOW)
    decided = "local" if local else "fetch" if due else "keep"
    assert decided == expected
    if local:
        assert local == {"u": "ab/x.png"}


# -- config --------------------------------------------------------------------------------


def test_images_config(tmp_path: Path) -> None:
    source = "sources:\n  - {name: a, url: 'http://x.test/f'}\n"
    path = tmp_path / "config.yaml"
    path.write_text(source)
    assert load_config(path).images is None
    path.write_text("images:\n  folder: site/img\n  url: /img\n" + source)
    images = load_config(path).images
    assert images is not None
    assert (images.folder, images.url, images.max_size) == (
        tmp_path / "site/img",
        "/img/",
        10 * 2**20,
    )
    path.write_text(
        "images: {folder: /srv/i, url: 'https://cdn.test/i/', max_size: 2MiB}\n" + source
    )
    images = load_config(path).images
    assert images is not None
    assert (images.folder, images.url, images.max_size) == (
        Path("/srv/i"),
        "https://cdn.test/i/",
        2 * 2**20,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images:\n  url: /img/\n", "images.folder (line 2): missing"),
        ("images:\n  folder: img\n", "images.url (line 2): missing"),
        ("images:\n  folder: img\n  url: img/\n", "images.url (line 3): 'img/' is not a site path"),
        ("images:\n  folder: img\n  url: '/a\"b/'\n", "images.url (line 3): '/a\"b/' is not"),
        ("images:\n  folder: i\n  url: /i/\n  max_size: lots\n", "images.max_size (line 4): 'lo"),
        ("images:\n  folder: img\n  url: /i/\n  size: 1MiB\n", "images.size (line 4): unknown key"),
        ("images: [img]\n", "images (line 1): expected a mapping of keys"),
    ],
    ids=["no-folder", "no-url", "relative-url", "quote-in-url", "bad-size", "unknown-key", "list"],
)  # fmt: skip
def test_images_config_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text + "sources:\n  - {name: a, url: 'http://x.test/f'}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {expected}"), str(caught.value)


# -- mirroring, end to end -------------------------------------------------------------------


A_PATH = "/a.png?w=770&resize=770%2C433"  # the seed's image URL, `&` and `%2C` included
A_URL = "{url}" + A_PATH


def test_images_are_mirrored_once_per_content_and_documents_point_at_them(
    world: World, server: ImageServer
) -> None:
    server.image(A_PATH, PNG)
    server.image("/same-bytes-as-a.png", PNG)
    server.image("/b.gif", GIF, "image/gif")
    server.image("/logo.jpg", JPEG, "image/jpeg")

    def hotlink_protected(request: BaseHTTPRequestHandler) -> None:
        if request.headers.get("Referer"):
            answer(b"hotlinking denied", "text/plain", "403 Forbidden")(request)
        else:
            answer(OTHER_PNG, "image/png")(request)

    server.route("/protected.png", hotlink_protected)
    world.feed(
        f'<p><img src="{A_URL}" srcset="{A_URL} 1x, {{url}}/b.gif 2x" alt></p>',
        '<p><img src="{url}/same-bytes-as-a.png"></p><p><img src="{url}/protected.png"></p>',
        "<p>no image of its own</p>",
    )
    config = world.config(source={"image": server.url("/logo.jpg")})
    world.pipeline(config).update_all()

    # One file per content: the two URLs of the same bytes share one.
    assert mirrored(config) == {
        name_of(PNG, "png"): PNG,
        name_of(GIF, "gif"): GIF,
        name_of(JPEG, "jpg"): JPEG,
        name_of(OTHER_PNG, "png"): OTHER_PNG,
    }
    assert all(FILE_NAME.fullmatch(name) for name in mirrored(config))
    docs = list(documents(config).values())
    assert len(docs) == 3
    heads = [front_matter(text) for text in docs]
    first = next(t for t in docs if "b.gif" in t or name_of(GIF, "gif") in t)
    a, gif = SITE_URL + name_of(PNG, "png"), SITE_URL + name_of(GIF, "gif")
    assert f'<img src="{a}" srcset="{a} 1x, {gif} 2x" alt' in first
    assert {(h.get("headimg"), h.get("thumbnail")) for h in heads} == {
        (a, a),
        (SITE_URL + name_of(JPEG, "jpg"), SITE_URL + name_of(JPEG, "jpg")),
    }
    second = next(t for t in docs if name_of(OTHER_PNG, "png") in t)
    assert f'<img src="{a}" referrerpolicy="no-referrer">' in second
    for text in docs:
        assert server.url("/") not in text  # nothing left pointing at the image server
    check_outputs(config)

    # The merged feed keeps the original URLs: feed readers fetch from anywhere.
    merged = (config.paths.public / "feed.xml").read_text(encoding="utf-8")
    assert server.url("/protected.png") in merged and SITE_URL not in merged
    # No Referer ever went out, so the hotlink-protected server answered; Accept asks for images.
    sent = [headers for path, headers in server.requests if path != "/feed"]
    assert sent and not any("Referer" in headers for headers in sent)
    assert all(headers["Accept"].startswith("image/") for headers in sent)
    assert sorted(image_requests(server)) == sorted(
        [A_PATH, "/b.gif", "/same-bytes-as-a.png", "/protected.png", "/logo.jpg"]
    )


def test_nothing_is_fetched_twice(world: World, server: ImageServer) -> None:
    server.image("/a.png", PNG)
    server.image("/b.gif", GIF, "image/gif")
    world.feed('<img src="{url}/a.png">', '<img src="{url}/a.png"><img src="{url}/b.gif">')
    config = world.config()
    world.pipeline(config).update_all()
    assert sorted(image_requests(server)) == ["/a.png", "/b.gif"]  # a.png once for two entries
    before = documents(config)

    # Every document rewritten, by this process and by a fresh one: no image fetched again.
    world.pipeline(config).publisher.render_all()
    assert world.pipeline(config).publisher.render_all() == 2
    world.pipeline(config).update_all()  # the feed is unchanged: 304
    assert sorted(image_requests(server)) == ["/a.png", "/b.gif"]
    assert documents(config) == before

    # A copy deleted from the site is fetched again when its document is written again.
    (config.images.folder / name_of(GIF, "gif")).unlink()
    world.pipeline(config).publisher.render_all()
    assert sorted(image_requests(server)) == ["/a.png", "/b.gif", "/b.gif"]
    assert documents(config) == before


def test_off_by_default_and_a_failed_image_keeps_its_url(
    server: ImageServer, tmp_path: Path
) -> None:
    """Without `images` nothing is fetched and documents are today's; with it, images that
    cannot be mirrored leave documents byte for byte as they would be without it."""
    written = {}
    for case, images in (("off", None), ("failing", IMAGES)):
        world = World(server, tmp_path / case)
        (tmp_path / case).mkdir()
        world.feed('<p><img src="{url}/missing.png" srcset="{url}/gone.png 2x"></p>', "<p>x</p>")
        config = world.config(images=images, source={"image": server.url("/no-logo.png")})
        try:
            world.pipeline(config).update_all()
        finally:
            world.close()
        written[case] = documents(config)
        if case == "off":
            assert image_requests(server) == []
            assert config.images is None
    assert written["off"] == written["failing"]
    assert sorted(image_requests(server)) == ["/gone.png", "/missing.png", "/no-logo.png"]
    assert server.url("/missing.png") in "".join(written["off"].values())


def test_a_failed_image_is_tried_again_after_a_day(world: World, server: ImageServer) -> None:
    world.feed('<img src="{url}/later.png">')
    config = world.config()
    pipeline = world.pipeline(config)
    pipeline.update_all()
    (outcome,) = pipeline.store.image_outcomes([server.url("/later.png")]).values()
    assert outcome.error == "HTTP 404 Not Found" and outcome.name is None
    server.image("/later.png", PNG)
    pipeline.publisher.render_all()  # within the day: not tried again
    assert image_requests(server) == ["/later.png"]
    assert server.url("/later.png") in "".join(documents(config).values())

    pipeline.store.save_image_outcomes([replace(outcome, checked=outcome.checked - RETRY_FAILED)])
    pipeline.publisher.render_all()
    assert image_requests(server) == ["/later.png", "/later.png"]
    (text,) = documents(config).values()
    assert f'src="{SITE_URL}{name_of(PNG, "png")}"' in text


def test_downloads_run_at_once_but_at_most_two_per_host(world: World, server: ImageServer) -> None:
    def slow(request: BaseHTTPRequestHandler) -> None:
        time.sleep(0.3)
        answer(PNG + request.path.encode(), "image/png")(request)

    for i in range(6):
        server.route(f"/slow-{i}.png", slow)
    world.feed("".join(f'<img src="{{url}}/slow-{i}.png">' for i in range(6)))
    config = world.config()
    started = time.monotonic()
    world.pipeline(config).update_all()
    assert server.peak == 2  # six images of one host, two at a time
    assert time.monotonic() - started < 6 * 0.3
    assert len(mirrored(config)) == 6


# -- hostile image servers ---------------------------------------------------------------

FIFTY_MB = 50 * 2**20


def endless(declared: bool) -> Route:
    def route(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        length = f"Content-Length: {FIFTY_MB}\r\n" if declared else ""
        request.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n{length}\r\n".encode())
        request.wfile.write(PNG)
        block = bytes(2**16)
        for _ in range(FIFTY_MB // len(block)):
            request.wfile.write(block)

    return route


def gzip_bomb(request: BaseHTTPRequestHandler) -> None:
    member = gzip.compress(PNG + bytes(2**20 - len(PNG)), 9)
    body = member * 4096  # 4 GiB inflated
    answer(body, "image/png", **{"Content-Encoding": "gzip"})(request)


def dribble(server: ImageServer) -> Route:
    def route(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n" + PNG)
        while not server.closed.wait(0.2):  # a byte well inside every read timeout
            request.wfile.write(b"\0")

    return route


def redirect(to: str) -> Route:
    return answer(b"", "text/plain", "302 Found", Location=to)


def endless_redirects(server: ImageServer) -> Route:
    for hop in range(20):
        server.route(f"/r{hop}", redirect(f"/r{hop + 1}"))
    return redirect("/r0")


TOO_BIG = "response larger than the 1 MiB limit (images.max_size)"
HOSTILE: dict[str, tuple[Callable[[ImageServer, Path], Route], str]] = {
    "50 MB streamed": (lambda s, t: endless(False), TOO_BIG),
    "50 MB declared": (lambda s, t: endless(True), TOO_BIG),
    "gzip bomb": (lambda s, t: gzip_bomb, TOO_BIG),
    "redirect loop": (
        lambda s, t: redirect("/hostile.png"),
        "redirect loop (the server keeps redirecting back to ",
    ),
    "endless redirects": (lambda s, t: endless_redirects(s), "too many redirects (more than 3)"),
    "dribbling": (
        lambda s, t: dribble(s),
        "timed out after 2 s in total (the server sends too slowly)",
    ),
    "HTML as image/jpeg": (
        lambda s, t: answer(HTML, "image/jpeg"),
        "not an image (an HTML page, sent as image/jpeg)",
    ),
    "SVG": (
        lambda s, t: answer(SVG, "image/svg+xml"),
        "an SVG image (refused: SVG can carry script)",
    ),
    "redirect to a file": (lambda s, t: redirect((t / "secret.png").as_uri()), "not a web URL"),
    "404": (lambda s, t: answer(b"", "text/plain", "404 Not Found"), "HTTP 404 Not Found"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_image_server_costs_only_its_image(
    world: World, server: ImageServer, tmp_path: Path, case: str
) -> None:
    make, message = HOSTILE[case]
    (tmp_path / "secret.png").write_bytes(PNG + b"LOCAL-FILE-SECRET")
    server.route("/hostile.png", make(server, tmp_path))
    server.image("/good.png", PNG)
    world.feed('<p><img src="{url}/hostile.png"></p><p><img src="{url}/good.png"></p>')
    config = world.config(max_redirects=3)
    started = time.monotonic()
    pipeline = world.pipeline(config)
    pipeline.update_all()
    assert time.monotonic() - started < 6
    (text,) = documents(config).values()
    assert f'<img src="{server.url("/hostile.png")}"' in text  # the original URL stays
    assert f'<img src="{SITE_URL}{name_of(PNG, "png")}"' in text
    assert mirrored(config) == {name_of(PNG, "png"): PNG}  # nothing else, not half of anything
    outcome = pipeline.store.image_outcomes([server.url("/hostile.png")])[
        server.url("/hostile.png")
    ]
    assert outcome.name is None and outcome.error is not None
    assert outcome.error.startswith(message), outcome.error
    assert check_outputs(config) == 1


def test_names_come_only_from_the_bytes(world: World, server: ImageServer, tmp_path: Path) -> None:
    odd = [
        "/img/../../../../etc/passwd.png",
        "/a%2F..%2F..%2Fescape.png",
        "/x.png?name=../../../evil.jpg",
        "/%E5%9B%BE%E7%89%87.png",
        "/.hidden.png",
        "/" + "long" * 200 + ".png",
    ]
    for index, path in enumerate(odd):
        server.image(path, PNG + bytes([index]))
    server.routes["/etc/passwd.png"] = server.routes[odd[0]]  # however a client resolves it
    body = "".join(f'<img src="{{url}}{path}">' for path in odd)
    world.feed(body + '<img src="{url}/%E5%9B%BE%E7%89%87.png">')
    config = world.config()
    before = {p for p in tmp_path.rglob("*")}
    world.pipeline(config).update_all()
    files = mirrored(config)
    assert len(files) == len(odd)
    assert all(
        FILE_NAME.fullmatch(name) and name == name_of(data, "png") for name, data in files.items()
    )
    assert config.images is not None
    site = config.images.folder
    in_site = [p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()]
    assert sorted(in_site) == sorted(files)  # no other file, hidden or not
    ours = [site, config.paths.documents, config.paths.public, config.paths.database.parent]
    new = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert [p for p in new if not any(folder in p.parents for folder in ours)] == []


# -- the folder cannot be written; a process killed halfway --------------------------------


def test_an_unwritable_folder_is_one_clear_error_and_the_next_run_completes(
    world: World, server: ImageServer
) -> None:
    """Decided: like an unwritable documents folder, exit code 2 with one line, the
    documents stay owed (not written with the original URLs, which would then stay for
    good), and the run after the fix writes them with the copies."""
    server.image("/a.png", PNG)
    world.feed('<img src="{url}/a.png">', "<p>no image</p>")
    config = world.config()
    assert config.images is not None
    blocker = config.images.folder.parent
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the folder should be\n")
    failed = run_cli("update", "--config", str(config.path))
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr and failed.stderr.count("\n") == 1, failed.stderr
    assert failed.stderr.startswith(
        f"aggregator: cannot write mirrored image {config.images.folder}/"
    )
    assert "(check images.folder)" in failed.stderr
    assert documents(config) == {}  # owed, and kept owed
    store = Store(config.paths.database)
    try:
        assert store.count_entries() == 2 and len(store.owed_documents().write) == 2
    finally:
        store.close()

    blocker.unlink()
    again = run_cli("update", "--config", str(config.path))
    assert again.returncode == 0, again.stderr
    docs = "".join(documents(config).values())
    assert len(documents(config)) == 2 and f'src="{SITE_URL}{name_of(PNG, "png")}"' in docs
    assert check_outputs(config) == 2


def test_killed_while_mirroring_leaves_no_half_file_and_the_next_run_completes(
    world: World, server: ImageServer
) -> None:
    release = threading.Event()
    server.image("/first.png", PNG)

    def held(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\n\r\n" + GIF[:8])
        release.wait(30)
        request.wfile.write(GIF[8:])

    server.route("/second.gif", held)
    world.feed('<img src="{url}/first.png">', '<img src="{url}/second.gif">')
    config = world.config(timeout={"connect": 5, "read": 40, "total": 60})
    assert config.images is not None
    first = config.images.folder / name_of(PNG, "png")
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "update", "--config", str(config.path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (first.exists() and "/second.gif" in server.paths()):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    # Downloaded, not yet in a document: what is there is whole, under its hash's name.
    assert documents(config) == {}
    assert mirrored(config) == {name_of(PNG, "png"): PNG}
    # As if a kill had come in the middle of a write: a temp file beside the copies.
    stale = first.parent / f".{first.name}.{os.getpid() + 1}.tmp"
    stale.write_bytes(PNG[:5])

    release.set()
    again = run_cli("update", "--config", str(config.path))
    assert again.returncode == 0, again.stderr
    assert mirrored(config) == {name_of(PNG, "png"): PNG, name_of(GIF, "gif"): GIF}
    assert not stale.exists()
    docs = "".join(documents(config).values())
    assert f'src="{SITE_URL}{name_of(PNG, "png")}"' in docs
    assert f'src="{SITE_URL}{name_of(GIF, "gif")}"' in docs
    assert check_outputs(config) == 2
