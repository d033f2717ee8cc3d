"""The feed world: one HTTP server process on 127.0.0.1 serving N distinct feeds, RSSHub-shaped
(`--world rsshub`, the default) or shaped like what real publishers send (`--world mixed`:
newspapers, podcasts, Reddit, FeedBurner, WordPress, GitHub, RDF, Atom xhtml, JSON Feed, GBK
and ISO-8859-1, and 8% broken feeds feedparser recovers; see mixed.py).

Every response is rendered before the first request (headers and body as one bytes object),
so serving is a dictionary lookup and a socket write: the server must never be what a
benchmark measures. Each feed honours If-None-Match and If-Modified-Since with a 304.

Feeds live at `/feed/<i>.xml`. A feed has a version; version v lists items
`5v .. 5v+49`, newest first, so bumping a version adds 5 new items (and drops 5 old ones).
`GET /_bump?every=10` bumps every 10th feed (10% of sources get 5 new items) and answers
once the new bytes are ready; `GET /_ping` answers when the world is up; `GET /_stats` counts
the feed requests answered so far (`<full> <not modified>`), which is how a benchmark of the
real daemon tells its polling rounds apart.

In the RSSHub world every feed lists 50 items; in the mixed world each shape has its own
count (mixed.SHAPES). `GET /_items` answers how many distinct items the world has listed so
far (all versions of all feeds), what a run that polled every version should have stored.

Run: `python bench/world.py --feeds 1000 --port 0 [--world mixed]` prints `READY <port>`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mixed

WORLDS = ("rsshub", "mixed")

ITEMS = 50
NEW_PER_BUMP = 5
EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "aljazeera.rss"
BASE_DATE = datetime(2022, 1, 1, tzinfo=UTC)


def _paragraphs() -> list[str]:
    """The example document's own Chinese paragraphs, so bodies look like the real source."""
    text = EXAMPLE.read_text(encoding="utf-8")
    return re.findall(r"<p>[^<]+</p>", text)


PARAGRAPHS = _paragraphs()


def item_xml(feed: int, number: int) -> str:
    """Item `number` of feed `feed`: ~3 KB of Chinese HTML, distinct per (feed, number)."""
    count = len(PARAGRAPHS)
    start = (feed * 7 + number * 3) % count
    paragraphs = [PARAGRAPHS[(start + k) % count] for k in range(16)]
    link = f"https://chinese.example.net/news/{feed}/2022/story-{number}"
    image = (
        f'<p><img loading="lazy" class="aligncenter size-arc-image-770 wp-image-{number}" '
        f'src="https://chinese.example.net/wp-content/uploads/2022/01/image-{feed}-{number}.jpg'
        f'?w=770&resize=770%2C433" alt data-recalc-dims="1" referrerpolicy="no-referrer"></p>\n'
    )
    body = (
        "   \n"
        + "\n".join(paragraphs[:8])
        + "\n"
        + image
        + f"<h3>小标题 {number}</h3>\n"
        + "\n".join(paragraphs[8:])
        + f"\n<p>来源编号 {feed}-{number}。</p>\n  \n"
    )
    date = BASE_DATE + timedelta(minutes=number * 7 + feed % 60)
    title = f"第{number}条：{PARAGRAPHS[(start + 1) % count][3:30]}（源{feed}）"
    return (
        f"<item><title><![CDATA[{title}]]></title>"
        f"<description><![CDATA[{body}]]></description>"
        f"<pubDate>{format_datetime(date, usegmt=True)}</pubDate>"
        f'<guid isPermaLink="false">{escape(link)}</guid><link>{escape(link)}</link></item>\n'
    )


def feed_xml(feed: int, version: int) -> bytes:
    """The whole feed document of `feed` at `version`."""
    first = version * NEW_PER_BUMP
    items = [item_xml(feed, number) for number in range(first + ITEMS - 1, first - 1, -1)]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>\n'
        f"<title><![CDATA[半岛电视台 - 新闻 {feed}]]></title>"
        f"<link>https://chinese.example.net/news/{feed}</link>\n"
        "<description><![CDATA[半岛电视台中文网新闻 - Made with love by RSSHub]]></description>\n"
        "<generator>RSSHub</generator><language>zh-cn</language><ttl>5</ttl>\n"
        + "".join(items)
        + "</channel></rss>\n"
    ).encode()


class World:
    """Pre-rendered responses for every feed at its current version."""

    def __init__(self, feeds: int, kind: str = "rsshub") -> None:
        self.feeds = feeds
        self.kind = kind
        self.text = mixed.Text(PARAGRAPHS)
        self.versions = [0] * feeds
        self.full: list[bytes] = [b""] * feeds
        self.etags: list[bytes] = [b""] * feeds
        self.modified: list[bytes] = [b""] * feeds
        self.not_modified: list[bytes] = [b""] * feeds
        self.answered = [0, 0]  # feed requests answered in full, and with a 304
        for index in range(feeds):
            self.render(index)

    def render(self, index: int) -> None:
        version = self.versions[index]
        if self.kind == "mixed":
            body, content_type = mixed.feed_document(index, version, self.text)
        else:
            body, content_type = feed_xml(index, version), b"application/rss+xml; charset=utf-8"
        etag = f'"{index}-{version}"'.encode()
        when = format_datetime(BASE_DATE + timedelta(days=version), usegmt=True).encode()
        common = b"ETag: " + etag + b"\r\nLast-Modified: " + when + b"\r\n"
        self.etags[index] = etag
        self.modified[index] = when
        self.full[index] = (
            b"HTTP/1.1 200 OK\r\nContent-Type: "
            + content_type
            + b"\r\n"
            + common
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        self.not_modified[index] = b"HTTP/1.1 304 Not Modified\r\n" + common + b"\r\n"

    def items(self) -> int:
        """Distinct items listed so far by every version of every feed."""
        per_feed = mixed.items_of if self.kind == "mixed" else (lambda _: ITEMS)
        return sum(per_feed(i) + NEW_PER_BUMP * self.versions[i] for i in range(self.feeds))

    def bump(self, every: int) -> int:
        changed = 0
        for index in range(0, self.feeds, every):
            self.versions[index] += 1
            self.render(index)
            changed += 1
        return changed

    def respond(self, target: bytes, headers: dict[bytes, bytes]) -> bytes:
        path, _, query = target.partition(b"?")
        if path.startswith(b"/feed/") and path.endswith(b".xml"):
            try:
                index = int(path[6:-4])
            except ValueError:
                index = -1
            if 0 <= index < self.feeds:
                match = headers.get(b"if-none-match")
                if match is not None:
                    fresh = match == self.etags[index]
                else:
                    fresh = headers.get(b"if-modified-since") == self.modified[index]
                self.answered[fresh] += 1
                return self.not_modified[index] if fresh else self.full[index]
        elif path == b"/_bump":
            every = int(dict(re.findall(rb"(\w+)=(\d+)", query)).get(b"every", b"10"))
            return _text(f"bumped {self.bump(every)}\n".encode())
        elif path == b"/_items":
            return _text(b"%d\n" % self.items())
        elif path == b"/_stats":
            return _text(b"%d %d\n" % tuple(self.answered))
        elif path == b"/_ping":
            return _text(b"ok\n")
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def _text(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


class Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, GET only, with pipelined requests handled in order."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) < 2:
                self.transport.close()
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            self.transport.write(self.world.respond(parts[1], headers))
            if headers.get(b"connection", b"").lower() == b"close":
                self.transport.close()
                return


async def serve(world: World, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(world), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--world", choices=WORLDS, default="rsshub")
    args = parser.parse_args()
    world = World(args.feeds, args.world)
    try:
        asyncio.run(serve(world, args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
