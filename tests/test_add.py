"""`aggregator add` (a feed, or a page whose feed is discovered) and `aggregator remove`,
through the real CLI against a real local server."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, run_cli
from feedworld import DATA, rsshub_feed, rsshub_item

from aggregator.config.settings import load_config
from aggregator.sources.discover import common_feed_urls, feed_links

HTML = "text/html; charset=utf-8"
CONFIG = "# hand-written\nsources:  # followed feeds\n  - name: first\n    url: {url}\n"


@pytest.fixture
def config(tmp_path: Path, feed_server: FeedServer) -> Path:
    feed_server.serve("/first", rsshub_feed([rsshub_item(1)], title="First"))
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(url=feed_server.url("/first")), encoding="utf-8")
    return path


def page(head: str) -> bytes:
    html = f"<!DOCTYPE html><html><head><title>博客</title>{head}</head><body>Hi</body></html>"
    return html.encode()


def test_add_a_feed_url(config: Path, feed_server: FeedServer) -> None:
    items = [rsshub_item(i) for i in range(3)]
    feed_server.serve("/news", rsshub_feed(items, title="Al Jazeera 半岛电视台"))
    url = feed_server.url("/news")
    result = run_cli("add", "--config", str(config), "--categories", "新闻, World", url)
    assert result.returncode == 0, result.stderr
    assert f"Feed {url}: Al Jazeera 半岛电视台, 3 entries; first: 新闻标题 第0条" in result.stdout
    assert f"Added source 'al-jazeera' ({url}, categories 新闻, World) to {config}" in (
        result.stdout
    )
    text = config.read_text(encoding="utf-8")
    assert text.startswith(CONFIG.format(url=feed_server.url("/first")))
    added = load_config(config).sources[1]
    assert (added.name, added.url, added.title, added.categories) == (
        "al-jazeera",
        url,
        "Al Jazeera 半岛电视台",
        ("新闻", "World"),
    )


def test_add_a_page_uses_the_feed_it_advertises(config: Path, feed_server: FeedServer) -> None:
    head = (
        '<link rel="stylesheet" href="/style.css">'
        '<link rel="alternate" type="application/rss+xml" title="Comments" href="/gone.xml">'
        '<link rel="alternate" type="application/atom+xml" title="Posts" href="posts.atom">'
    )
    feed_server.serve("/blog/", page(head), content_type=HTML)
    feed_server.serve("/gone.xml", b"gone", status=404)
    feed_server.serve("/blog/posts.atom", (DATA / "atom.xml").read_bytes(), etag=False)
    result = run_cli("add", "--config", str(config), "--name", "posts", feed_server.url("/blog/"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{feed_server.url('/blog/')} is a web page." in out
    assert "It advertises 2 feed(s):" in out
    assert f"  {feed_server.url('/gone.xml')}  application/rss+xml  (Comments)" in out
    assert f"  not {feed_server.url('/gone.xml')}: HTTP 404" in out
    assert f"Added source 'posts' ({feed_server.url('/blog/posts.atom')})" in out
    assert load_config(config).sources[1].url == feed_server.url("/blog/posts.atom")


def test_add_a_page_without_links_tries_the_usual_paths(
    config: Path, feed_server: FeedServer
) -> None:
    feed_server.serve("/home/index.html", page(""), content_type=HTML)
    feed_server.serve("/home/feed.xml", rsshub_feed([rsshub_item(1)], title="Home feed"))
    result = run_cli("add", "--config", str(config), feed_server.url("/home/index.html"))
    assert result.returncode == 0, result.stderr
    assert "Added source 'home-feed'" in result.stdout
    assert load_config(config).sources[1].url == feed_server.url("/home/feed.xml")


def test_add_refuses_what_leads_to_no_feed(config: Path, feed_server: FeedServer) -> None:
    before = config.read_text(encoding="utf-8")
    feed_server.serve("/plain.html", page(""), content_type=HTML)
    result = run_cli("add", "--config", str(config), feed_server.url("/plain.html"))
    assert result.returncode == 1
    assert "is a web page, but it advertises no feed" in result.stderr
    feed_server.serve("/text", b"just words", content_type="text/plain")
    result = run_cli("add", "--config", str(config), feed_server.url("/text"))
    assert result.returncode == 1
    assert f"{feed_server.url('/text')}: not a feed (plain text: 'just words')" in result.stderr
    result = run_cli("add", "--config", str(config), "http://127.0.0.1:9/feed")
    assert result.returncode == 1
    assert "http://127.0.0.1:9/feed: connection" in result.stderr
    assert config.read_text(encoding="utf-8") == before


def test_add_refuses_duplicates_and_bad_names(config: Path, feed_server: FeedServer) -> None:
    before = config.read_text(encoding="utf-8")
    same = feed_server.url("/first").replace("http://", "HTTP://", 1) + "/"
    result = run_cli("add", "--config", str(config), feed_server.url("/first"))
    assert result.returncode == 1
    assert "is already followed as first" in result.stderr
    feed_server.serve("/first/", rsshub_feed([rsshub_item(1)], title="First"))
    assert "already followed as first" in run_cli("add", "--config", str(config), same).stderr
    feed_server.serve("/other", rsshub_feed([rsshub_item(2)]))
    result = run_cli("add", "--config", str(config), "--name", "first", feed_server.url("/other"))
    assert result.returncode == 2 and "already exists" in result.stderr
    result = run_cli(
        "add", "--config", str(config), "--name", "Bad Name", feed_server.url("/other")
    )
    assert result.returncode == 2 and "lowercase letters" in result.stderr
    assert config.read_text(encoding="utf-8") == before


def test_discovery_helpers_are_pure() -> None:
    html = (
        b'<html><head><base href="https://cdn.example/x/">'
        b'<link rel="Alternate feed" type="application/RSS+XML; charset=utf-8" href="a.xml">'
        b'<link rel="alternate" type="text/html" href="/fr/">'
        b'<link rel="alternate" type="application/atom+xml" href="javascript:alert(1)">'
        b'<link rel="alternate" type="application/atom+xml" href="https://cdn.example/x/a.xml">'
        b"</head></html>"
    )
    links = feed_links(html, "https://site.example/page")
    assert [(link.url, link.media_type) for link in links] == [
        ("https://cdn.example/x/a.xml", "application/rss+xml")
    ]
    assert common_feed_urls("https://site.example/blog/post.html")[:2] == [
        "https://site.example/feed",
        "https://site.example/rss",
    ]
    assert "https://site.example/blog/index.xml" in common_feed_urls(
        "https://site.example/blog/post.html"
    )
    assert len(common_feed_urls("https://site.example/")) == 6


@pytest.fixture
def two_sources(tmp_path: Path, feed_server: FeedServer) -> Path:
    feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
    blog = [rsshub_item(10, title="Blog post", guid="blog-1", body="<p>post</p>")]
    feed_server.serve("/blog", rsshub_feed(blog, title="Blog"))
    path = tmp_path / "config.yaml"
    path.write_text(
        "sources:\n"
        f"  - name: news\n    url: {feed_server.url('/news')}\n    categories: [新闻]\n"
        f"  - name: blog\n    url: {feed_server.url('/blog')}\n    categories: [Tech]\n"
    )
    assert run_cli("update", "--config", str(path)).returncode == 0
    return path


def test_remove_keeps_entries_and_documents(two_sources: Path) -> None:
    result = run_cli("remove", "--config", str(two_sources), "news")
    assert result.returncode == 0, result.stderr
    assert f"Removed source 'news' from {two_sources}" in result.stdout
    assert "entries and documents are kept" in result.stdout
    assert [s.name for s in load_config(two_sources).sources] == ["blog"]
    assert len(list((two_sources.parent / "documents").glob("*.md"))) == 4
    found = run_cli("search", "--config", str(two_sources), "新闻标题")
    assert found.returncode == 0 and found.stdout.count("  news  新闻标题") == 3


def test_remove_purge_deletes_entries_documents_and_republishes(two_sources: Path) -> None:
    result = run_cli("remove", "--config", str(two_sources), "--purge", "news")
    assert result.returncode == 0, result.stderr
    assert "Purged 'news': 3 entries deleted, 3 documents removed" in result.stdout
    folder = two_sources.parent
    assert len(list((folder / "documents").glob("*.md"))) == 1
    merged = feedparser.parse((folder / "public" / "feed.xml").read_bytes())
    assert [entry.title for entry in merged.entries] == ["Blog post"]
    assert not (folder / "public" / "source" / "news").exists()
    assert not (folder / "public" / "category" / "新闻").exists()
    assert (folder / "public" / "source" / "blog" / "feed.json").exists()
    assert run_cli("search", "--config", str(two_sources), "新闻标题").returncode == 1


def test_purge_of_a_source_already_removed_from_config(two_sources: Path) -> None:
    assert run_cli("remove", "--config", str(two_sources), "news").returncode == 0
    result = run_cli("remove", "--config", str(two_sources), "--purge", "news")
    assert result.returncode == 0, result.stderr
    assert "3 entries deleted" in result.stdout
    result = run_cli("remove", "--config", str(two_sources), "nothing")
    assert result.returncode == 2 and "no source named 'nothing'" in result.stderr


TERMINAL_COMMANDS = ("\x1b", "\x9b", "\x9d", "\x07", "\r", "\u202e", "\u2066")


def test_add_prints_no_terminal_escapes_from_a_page(config: Path, feed_server: FeedServer):
    """A page's `<link>` titles and hrefs, a JSON Feed's title and its first entry's title
    reach the terminal: once with their ESC sequences (window title, clear screen, colours,
    clipboard), C1 controls and bidi overrides as they were (issue 13.11). The text stays."""
    head = (
        '<link rel="alternate" type="application/rss+xml" '
        'title="\x1b]0;pwned\x07Comments\x1b[2J\x1b[H" href="/gone\x1b[31m.xml">'
        '<link rel="alternate" type="application/feed+json" '
        'title="Posts \x1b]52;c;ZXZpbA==\x07\u202egnp.exe\u202c" href="/posts.json">'
    )
    feed_server.serve("/blog/", page(head), content_type=HTML)
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Blog\u009b31m \u001b[5mnews",
        "items": [{"id": "1", "title": "First\u001b]0;x\u0007 post", "content_text": "Hi"}],
    }
    feed_server.serve(
        "/posts.json", json.dumps(feed).encode(), content_type="application/feed+json"
    )
    result = run_cli("add", "--config", str(config), "--name", "posts", feed_server.url("/blog/"))
    assert result.returncode == 0, result.stderr
    for text in (result.stdout, result.stderr):
        assert not any(command in text for command in TERMINAL_COMMANDS), repr(text)
    assert f"  {feed_server.url('/gone.xml')}  application/rss+xml  (Comments)" in result.stdout
    assert "(Posts gnp.exe)" in result.stdout
    assert f"  not {feed_server.url('/gone.xml')}: HTTP 500" in result.stdout
    assert "1 entries; first: First" in result.stdout
    assert "Added source 'posts'" in result.stdout
