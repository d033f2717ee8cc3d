"""What a fetch may connect to (aggregator/sources/reach.py, fetch._Guarded): the table of address
kinds and configured URLs, then real fetches against real servers on 127.0.0.x.

A test cannot own a public address, so where a source must be *on a public address*,
`seen_as_public` serves it from 127.0.0.2 and makes the classifier call that one address
public; everything else (resolution, the check, the connection, the redirects) is the real
code against real sockets. Without the guard each of those tests would reach the internal
server, which records every request it gets.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import FeedServer
from feedworld import rsshub_feed, rsshub_item
from pytest_httpserver import HTTPServer
from werkzeug import Response

from aggregator.config.settings import load_config
from aggregator.errors import ParseError
from aggregator.models import HttpState
from aggregator.sources import reach as reach_module
from aggregator.sources.discover import discover_feed
from aggregator.sources.fetch import FetchLimits, fetch_source, make_session
from aggregator.sources.reach import AddressKind, classify_address, reach_for

K = AddressKind
LIMITS = FetchLimits("aggregator-test/1", connect_timeout=1, read_timeout=2, total_timeout=5)
SETTINGS = {"timeout": {"connect": 1, "read": 2, "total": 5}}
FEED = rsshub_feed([rsshub_item(i, guid=f"internal-{i}") for i in range(2)], title="Internal")
PUBLIC_SOURCE = "https://feeds.example.com/rss"  # a configured URL on a public name
TO_ALLOW = "set allow_private: true to allow it"


# -- the tables --------------------------------------------------------------------------

ADDRESSES = [
    ("8.8.8.8", K.PUBLIC),
    ("2606:4700:4700::1111", K.PUBLIC),
    ("172.32.0.1", K.PUBLIC),  # just past 172.16/12
    ("100.128.0.1", K.PUBLIC),  # just past CGNAT
    ("198.18.0.1", K.PUBLIC),  # fake-ip proxies' range
    ("127.0.0.1", K.LOOPBACK),
    ("127.255.255.254", K.LOOPBACK),
    ("::1", K.LOOPBACK),
    ("0.0.0.0", K.LOOPBACK),
    ("::", K.LOOPBACK),
    ("10.1.2.3", K.PRIVATE),
    ("172.16.0.1", K.PRIVATE),
    ("192.168.1.1", K.PRIVATE),
    ("100.64.0.1", K.PRIVATE),  # CGNAT (and Tailscale)
    ("fd12:3456::1", K.PRIVATE),  # ULA
    ("fec0::1", K.PRIVATE),
    ("169.254.1.1", K.LINK_LOCAL),
    ("fe80::1", K.LINK_LOCAL),
    ("fe80::1%lo", K.LINK_LOCAL),
    ("169.254.169.254", K.METADATA),
    ("169.254.170.2", K.METADATA),
    ("fd00:ec2::254", K.METADATA),
    ("100.100.100.200", K.METADATA),
    ("::ffff:127.0.0.1", K.LOOPBACK),  # IPv4-mapped
    ("::ffff:169.254.169.254", K.METADATA),
    ("::ffff:8.8.8.8", K.PUBLIC),
    ("64:ff9b::a00:1", K.PRIVATE),  # NAT64 of 10.0.0.1
    ("64:ff9b::808:808", K.PUBLIC),  # NAT64 of 8.8.8.8: how IPv6-only hosts reach IPv4 sites
    ("2002:7f00:1::", K.LOOPBACK),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::", K.METADATA),  # 6to4 of 169.254.169.254
    ("2002:808:808::", K.PUBLIC),
    ("224.0.0.1", K.RESERVED),
    ("ff02::1", K.RESERVED),
    ("255.255.255.255", K.RESERVED),
    ("240.0.0.1", K.RESERVED),
    ("192.0.2.1", K.RESERVED),  # documentation
    ("2001:db8::1", K.RESERVED),
]


@pytest.mark.parametrize(("address", "kind"), ADDRESSES, ids=[a for a, _ in ADDRESSES])
def test_address_kinds(address: str, kind: AddressKind) -> None:
    assert classify_address(address) is kind


LOCAL = {K.PUBLIC, K.LOOPBACK, K.PRIVATE, K.LINK_LOCAL}
CONFIGURED = [
    ("https://feeds.example.com/rss", False, {K.PUBLIC}),
    ("https://feeds.example.com/rss", True, LOCAL),
    ("http://rsshub.example.lan.evil.com/", False, {K.PUBLIC}),  # a public name, whatever DNS says
    ("http://127.0.0.1:1200/", False, {K.PUBLIC, K.LOOPBACK}),
    ("http://[::1]:1200/", False, {K.PUBLIC, K.LOOPBACK}),
    ("http://localhost:1200/", False, {K.PUBLIC, K.LOOPBACK}),
    ("http://rss.localhost/", False, {K.PUBLIC, K.LOOPBACK}),
    ("http://10.0.0.5/feed", False, {K.PUBLIC, K.PRIVATE}),
    ("http://100.101.102.103/", False, {K.PUBLIC, K.PRIVATE}),
    ("http://rsshub:1200/", False, LOCAL),  # a container's name
    ("http://nas.local/rss", False, LOCAL),
    ("http://router.home.arpa/", False, LOCAL),
    ("http://169.254.169.254/latest/", False, {K.PUBLIC, K.METADATA}),
    ("http://metadata.google.internal/", False, {K.PUBLIC, K.METADATA}),
    ("http://169.254.169.254/latest/", True, LOCAL | {K.METADATA}),
    ("not a url", False, {K.PUBLIC}),
    ("http://[::1/", False, {K.PUBLIC}),
]


@pytest.mark.parametrize(
    ("url", "allow_private", "kinds"),
    CONFIGURED,
    ids=[f"{url}{' allow_private' if allow else ''}" for url, allow, _ in CONFIGURED],
)
def test_what_a_configured_url_may_reach(url: str, allow_private: bool, kinds: set) -> None:
    assert reach_for(url, allow_private).kinds == kinds


def test_metadata_is_never_widened_to() -> None:
    reach = reach_for(PUBLIC_SOURCE, allow_private=True)
    assert reach.refusal("169.254.169.254", "169.254.169.254") == (
        "refused: 169.254.169.254 is a cloud metadata address, which only a source whose "
        "own URL names it may reach"
    )
    assert reach_for("http://127.0.0.1:1200/").refusal(
        "metadata.google.internal", "169.254.169.254"
    )


def test_refusals_in_words() -> None:
    public = reach_for(PUBLIC_SOURCE)
    assert public.refusal("feeds.example.com", "93.184.215.14") is None
    assert public.refusal("127.0.0.1", "127.0.0.1") == (
        f"refused: 127.0.0.1 is a loopback address, which a source on a public address may "
        f"not reach; {TO_ALLOW}"
    )
    assert public.refusal("intranet.example.com", "10.0.0.7") == (
        "refused: intranet.example.com resolves to a private address (10.0.0.7), which a "
        f"source on a public address may not reach; {TO_ALLOW}"
    )
    assert reach_for("http://127.0.0.1:1200/").refusal("10.0.0.7", "10.0.0.7") == (
        "refused: 10.0.0.7 is a private address, which a source on a loopback address may "
        f"not reach; {TO_ALLOW}"
    )
    assert public.refusal("224.0.0.1", "224.0.0.1") == (
        "refused: 224.0.0.1 is a reserved address, which no web server uses"
    )


# -- real fetches ------------------------------------------------------------------------


def serve_feed(server: HTTPServer, path: str = "/feed") -> str:
    server.expect_request(path).respond_with_data(FEED, content_type="application/rss+xml")
    return server.url_for(path)


def redirect(server: HTTPServer, path: str, to: str, status: int = 302) -> str:
    server.expect_request(path).respond_with_response(
        Response(status=status, headers={"Location": to})
    )
    return server.url_for(path)


@pytest.fixture
def internal() -> Iterator[HTTPServer]:
    """An internal service on 127.0.0.1 that speaks RSS, as the issue describes."""
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def seen_as_public(monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPServer]:
    """A server on 127.0.0.2, an address the classifier calls public for this test."""
    real = reach_module.classify_address

    def classify(address: object) -> AddressKind:
        if str(address).split("%")[0] == "127.0.0.2":
            return AddressKind.PUBLIC
        return real(address)  # type: ignore[arg-type]

    monkeypatch.setattr(reach_module, "classify_address", classify)
    server = HTTPServer(host="127.0.0.2")
    server.start()
    yield server
    server.clear()
    server.stop()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]  # nothing listens there once it is closed


def test_a_public_source_cannot_fetch_loopback_and_open_and_closed_ports_read_alike(
    internal: HTTPServer,
) -> None:
    """The port-scan oracle of the issue: with the check before connecting, an open port
    and a closed one give the same words, and the open one hears nothing."""
    internal.expect_request("/status").respond_with_data("ok")
    session = make_session(LIMITS)
    reach = reach_for(PUBLIC_SOURCE)  # e.g. a current URL a 301 once left in the database
    open_ = fetch_source(session, internal.url_for("/status"), HttpState(), LIMITS, reach=reach)
    shut = f"http://127.0.0.1:{closed_port()}/status"
    closed = fetch_source(session, shut, HttpState(), LIMITS, reach=reach)
    expected = (
        "refused: 127.0.0.1 is a loopback address, which a source on a public address may "
        f"not reach; {TO_ALLOW}"
    )
    assert open_.error == closed.error == expected
    assert open_.status is None and closed.status is None
    assert internal.log == []
    named = fetch_source(session, "http://localhost:1/", HttpState(), LIMITS, reach=reach)
    assert re.fullmatch(
        r"refused: localhost resolves to a loopback address \((127\.0\.0\.1|::1)\), .*",
        named.error or "",
    )


def test_redirect_from_a_public_source_to_loopback_is_refused(
    seen_as_public: HTTPServer, internal: HTTPServer, make_config, pipeline_for
) -> None:
    target = serve_feed(internal)
    sources = [
        {"name": "found", "url": redirect(seen_as_public, "/found", target, 302)},
        {"name": "moved", "url": redirect(seen_as_public, "/moved", target, 301)},
        {"name": "named", "url": redirect(seen_as_public, "/named", target.replace(
            "127.0.0.1", "localhost"))},
    ]  # fmt: skip
    pipeline = pipeline_for(make_config(sources, **SETTINGS))
    results = {r.source: r for r in pipeline.update_all()}
    for name in ("found", "moved"):
        assert results[name].error == (
            "refused: 127.0.0.1 is a loopback address, which a source on a public address "
            f"may not reach; {TO_ALLOW}"
        )
    assert (results["named"].error or "").startswith("refused: localhost resolves to a loopback")
    for name in ("found", "moved", "named"):
        state = pipeline.store.source_state(name)
        assert state is not None and state.entries == 0 and state.status == "error"
        assert state.current_url is None  # the 301 is not adopted
    assert internal.log == []
    assert len(seen_as_public.log) == 3


def test_allow_private_lets_a_public_source_reach_its_internal_feed(
    seen_as_public: HTTPServer, internal: HTTPServer, make_config, pipeline_for
) -> None:
    target = serve_feed(internal)
    start = redirect(seen_as_public, "/start", target)
    sources = [
        {"name": "allowed", "url": start, "allow_private": True},
        {"name": "everyone", "url": start + "?again"},
        {"name": "not-this", "url": start + "?not", "allow_private": False},
    ]
    pipeline = pipeline_for(make_config(sources, allow_private=True, **SETTINGS))
    results = {r.source: r for r in pipeline.update_all()}
    assert results["allowed"].status == results["everyone"].status == "new"
    assert results["allowed"].new == 2
    assert (results["not-this"].error or "").startswith("refused: 127.0.0.1 is a loopback")
    assert len(internal.log) == 2


def test_a_name_resolving_to_loopback_and_no_second_lookup(
    seen_as_public: HTTPServer, internal: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolved once per connection, every address checked, the checked one connected to:
    a DNS server answering public first and 127.0.0.1 afterwards gets no second question."""
    serve_feed(seen_as_public)
    serve_feed(internal)
    real = socket.getaddrinfo
    asked: list[str] = []
    answers = {
        "mixed.test": ["127.0.0.2", "127.0.0.1"],
        "rebind.test": ["127.0.0.2"],  # then 127.0.0.1, if it were ever asked again
    }

    def getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list:
        if host not in answers:
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        asked.append(host)
        addresses = answers[host] if asked.count(host) == 1 else ["127.0.0.1"]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    session = make_session(LIMITS)
    reach = reach_for(PUBLIC_SOURCE)
    mixed = f"http://mixed.test:{internal.port}/feed"
    refused = fetch_source(session, mixed, HttpState(), LIMITS, reach=reach)
    assert refused.error == (
        "refused: mixed.test resolves to a loopback address (127.0.0.1), which a source on "
        f"a public address may not reach; {TO_ALLOW}"
    )
    assert internal.log == []  # 127.0.0.2 was allowed, but one refused address refuses all
    rebind = f"http://rebind.test:{seen_as_public.port}/feed"
    fetched = fetch_source(session, rebind, HttpState(), LIMITS, reach=reach)
    assert fetched.error is None and fetched.body == FEED
    assert asked.count("rebind.test") == 1
    assert len(seen_as_public.log) == 1 and internal.log == []


def test_a_loopback_source_is_redirected_within_loopback_but_not_to_metadata(
    feed_server: FeedServer, internal: HTTPServer, make_config, pipeline_for
) -> None:
    """A local RSSHub keeps working, redirects on the machine included; 169.254.169.254
    and a private address stay out of its reach, allow_private or not, without a
    connection (one would take the whole connect timeout, and the words would differ)."""
    target = serve_feed(internal)
    feed_server.server.expect_request("/within").respond_with_response(
        Response(status=301, headers={"Location": target})
    )
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    feed_server.server.expect_request("/metadata").respond_with_response(
        Response(status=302, headers={"Location": metadata})
    )
    feed_server.server.expect_request("/mapped").respond_with_response(
        Response(status=302, headers={"Location": "http://[::ffff:a9fe:a9fe]/latest/"})
    )
    feed_server.server.expect_request("/lan").respond_with_response(
        Response(status=302, headers={"Location": "http://10.255.255.1/feed"})
    )
    sources = [
        {"name": "within", "url": feed_server.url("/within")},
        {"name": "metadata", "url": feed_server.url("/metadata"), "allow_private": True},
        {"name": "mapped", "url": feed_server.url("/mapped"), "allow_private": True},
        {"name": "lan", "url": feed_server.url("/lan")},
    ]
    pipeline = pipeline_for(make_config(sources, **SETTINGS))
    started = time.monotonic()
    results = {r.source: r for r in pipeline.update_all()}
    assert time.monotonic() - started < 1  # nothing waited for a connect timeout
    assert results["within"].new == 2
    within = pipeline.store.source_state("within")
    assert within is not None and within.current_url == target  # a 301 within is adopted
    only_named = "which only a source whose own URL names it may reach"
    assert results["metadata"].error == (
        f"refused: 169.254.169.254 is a cloud metadata address, {only_named}"
    )
    assert results["mapped"].error == (
        f"refused: ::ffff:a9fe:a9fe is a cloud metadata address, {only_named}"
    )
    assert results["lan"].error == (
        "refused: 10.255.255.1 is a private address, which a source on a loopback address "
        f"may not reach; {TO_ALLOW}"
    )


class KeepAliveServer:
    """Serves FEED on 127.0.0.1 over persistent HTTP/1.1 connections (pytest-httpserver
    closes each one), counting connections and requests."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/feed"
        self.connections = 0
        self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
        answer += f"Content-Length: {len(FEED)}\r\n\r\n".encode() + FEED
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer.split(b"\r\n\r\n", 1)[1]
                self.requests += 1
                conn.sendall(answer)


def test_a_pooled_connection_is_checked_again_for_the_next_fetch() -> None:
    """A local source leaves a live connection to 127.0.0.1 in the shared pool; a public
    source redirected there must not get to use it."""
    server = KeepAliveServer()
    session = make_session(LIMITS)
    local = fetch_source(session, server.url, HttpState(), LIMITS, reach=reach_for(server.url))
    assert local.error is None and local.body == FEED
    public = fetch_source(session, server.url, HttpState(), LIMITS, reach=reach_for(PUBLIC_SOURCE))
    assert (public.error or "").startswith("refused: 127.0.0.1 is a loopback address")
    again = fetch_source(session, server.url, HttpState(), LIMITS, reach=reach_for(server.url))
    assert again.error is None
    assert server.requests == 2
    server.listener.close()


# -- discovery and `aggregator add` ---------------------------------------------------------


def page(*links: str) -> bytes:
    heads = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="{link}">' for link in links
    )
    return f"<!DOCTYPE html><html><head>{heads}</head><body>blog</body></html>".encode()


def test_a_public_page_never_leads_to_an_internal_feed(
    seen_as_public: HTTPServer, internal: HTTPServer
) -> None:
    internal_feed = serve_feed(internal, "/feed.xml")
    public_feed = serve_feed(seen_as_public, "/posts.xml")
    html = {"content_type": "text/html"}
    seen_as_public.expect_request("/only").respond_with_data(page(internal_feed), **html)
    seen_as_public.expect_request("/both").respond_with_data(
        page(internal_feed, public_feed), **html
    )
    session = make_session(LIMITS)
    refusal = (
        "refused: 127.0.0.1 is a loopback address, which a source on a public address may "
        f"not reach; {TO_ALLOW}"
    )
    found = discover_feed(session, seen_as_public.url_for("/both"), LIMITS)
    assert found.url == public_feed
    assert found.tried == ((internal_feed, refusal),)
    with pytest.raises(ParseError) as failed:
        discover_feed(session, seen_as_public.url_for("/only"), LIMITS)
    assert f"none of the feeds it advertises works ({internal_feed}: {refusal})" in str(
        failed.value
    )
    assert internal.log == []
    allowed = discover_feed(session, seen_as_public.url_for("/only"), LIMITS, allow_private=True)
    assert allowed.url == internal_feed and len(internal.log) == 1


def test_add_allow_private_writes_the_switch(tmp_path: Path, feed_server: FeedServer) -> None:
    from conftest import run_cli

    feed_server.serve("/feed", FEED)
    config = tmp_path / "config.yaml"
    config.write_text("sources: []\n", encoding="utf-8")
    url = feed_server.url("/feed")
    result = run_cli("add", "--config", str(config), "--allow-private", "--name", "rsshub", url)
    assert result.returncode == 0, result.stderr
    assert "allow_private: true" in config.read_text(encoding="utf-8")
    assert load_config(config).sources[0].allow_private is True


def test_allow_private_in_the_config(tmp_path: Path, make_config: Callable) -> None:
    config = make_config([{"name": "a", "url": "http://x.test/"}])
    assert config.allow_private is False and config.sources[0].allow_private is False
    config = make_config(
        [{"name": "a", "url": "http://x.test/"}, {"name": "b", "url": "http://y.test/",
          "allow_private": False}],
        allow_private=True,
    )  # fmt: skip
    assert [s.allow_private for s in config.sources] == [True, False]
    path = tmp_path / "config.yaml"
    path.write_text(
        "sources:\n  - name: a\n    url: http://x.test/\n    allow_private: yes please\n",
        encoding="utf-8",
    )
    with pytest.raises(Exception, match=r"sources\[0\]\.allow_private \(line 4\): expected "):
        load_config(path)


# -- images mirrored into the site --------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(200))


def test_an_image_is_fetched_with_the_reach_of_its_source(
    seen_as_public: HTTPServer,
    internal: HTTPServer,
    feed_server: FeedServer,
    make_config,
    pipeline_for,
) -> None:
    """A public feed naming an image on your network does not get it copied into the site
    (the document keeps the URL); a local source's image on the machine is mirrored, also
    where a public feed names it too."""
    for path in ("/secret.png", "/photo.png"):
        internal.expect_request(path).respond_with_data(PNG, content_type="image/png")
    secret, photo = internal.url_for("/secret.png"), internal.url_for("/photo.png")

    def feed(index: int, *images: str) -> bytes:
        body = "<p>x</p>" + "".join(f'<p><img src="{image}"></p>' for image in images)
        return rsshub_feed([rsshub_item(index, guid=f"item-{index}", body=body)])

    seen_as_public.expect_request("/feed").respond_with_data(
        feed(1, photo, secret), content_type="application/rss+xml"
    )
    feed_server.serve("/feed", feed(2, photo))
    sources = [
        {"name": "public", "url": seen_as_public.url_for("/feed")},
        {"name": "local", "url": feed_server.url("/feed")},
    ]
    images = {"folder": "site/images", "url": "/images/"}
    config = make_config(sources, images=images, documents="site/posts", **SETTINGS)
    pipeline = pipeline_for(config)
    results = {r.source: r for r in pipeline.update_all()}
    assert results["public"].new == results["local"].new == 1
    assert [request.path for request, _ in internal.log] == ["/photo.png"]
    documents = [p.read_text(encoding="utf-8") for p in config.paths.documents.glob("*.md")]
    assert len(documents) == 2
    assert any(f'src="{secret}"' in text for text in documents)  # kept as it was
    assert not any(photo in text for text in documents)  # both pointing at the copy
    outcome = pipeline.store.image_outcomes([secret])[secret]
    assert (outcome.error or "").startswith("refused: 127.0.0.1 is a loopback address")
