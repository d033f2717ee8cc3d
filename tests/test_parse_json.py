"""JSON Feed 1.0 and 1.1 sources: read into the same Entry values as RSS and Atom, found by
discovery, and hostile JSON costing a field or an item, never the pass."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import FeedServer, run_cli
from feedworld import DATA

from aggregator.config.settings import load_config
from aggregator.errors import ParseError
from aggregator.models import Source
from aggregator.sources.discover import feed_links
from aggregator.sources.parse import parse_feed
from aggregator.sources.parse_json import read_json_feed

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = Source(name="src", url="https://timetable.example/feed.json")
VERSION_11 = "https://jsonfeed.org/version/1.1"
JSON_FEED = "application/feed+json"


def parse(name: str, url: str) -> Any:
    return parse_feed((DATA / name).read_bytes(), SOURCE, url, now=NOW)


def json_feed(items: Any, **feed: Any) -> bytes:
    return json.dumps({"version": VERSION_11, "title": "T", **feed, "items": items}).encode()


def test_json_feed_11_as_a_micro_blog_sends_it() -> None:
    feed = parse("jsonfeed11.json", "https://timetable.example/feed.json")
    assert (feed.title, feed.link, feed.author) == (
        "Timetable Notes",
        "https://timetable.example/",
        "Ines Okafor",
    )
    assert feed.error is None
    photo, episode, essay = feed.entries
    # Identities as written: a URL on another host, a number's digits, a path never resolved.
    assert [e.identity for e in feed.entries] == [
        "http://inesokafor.micro.blog/2024/03/02/173016.html",
        "1186",
        "/2024/02/20/on-keeping-a-notebook",
    ]
    assert photo.title == "Morning light over the canal. 🌅"  # a micro post has no title
    assert photo.published == datetime(2024, 3, 2, 7, 30, 16, tzinfo=UTC)
    assert photo.updated is None
    assert photo.author == "Ines Okafor"  # the feed's author
    assert photo.categories == ("Photos", "Walks")
    assert photo.image == "https://timetable.example/uploads/2024/canal-morning.jpg"
    assert 'src="https://timetable.example/uploads/2024/canal-morning.jpg"' in photo.content
    assert "onerror" not in photo.content and "fallback" not in photo.content

    assert episode.link == "https://timetable.example/podcast/58"
    assert episode.title == "Timetable 58: Second Thoughts"
    assert episode.author == "Daniel Ferreira"  # 1.1's first author
    assert episode.published == datetime(2024, 2, 29, 2, 5, tzinfo=UTC)  # -08:00 in UTC
    assert episode.updated == datetime(2024, 2, 29, 9, 12, 44, tzinfo=UTC)
    assert episode.categories == ("Podcast", "Timetable")
    # No image in the content: the item's `image`, before its `banner_image`.
    assert episode.image == "https://cdn.timetable.example/episodes/58/square.jpg"
    assert "<script" not in episode.content and "tracker" not in episode.content
    assert "onerror" not in episode.content and "cookie" not in episode.content
    assert "onclick" not in episode.content
    assert '<audio src="https://cdn.timetable.example/episodes/58/timetable-058.mp3"' in (
        episode.content
    )
    assert "sync engine" in episode.content and "rarely" not in episode.content  # not summary

    assert essay.published is None
    assert essay.updated == datetime(2024, 2, 20, 20, 0, tzinfo=UTC)
    assert essay.image == "https://timetable.example/uploads/2024/notebook-spread.png"
    assert 'href="https://timetable.example/2023/11/05/pens"' in essay.content


def test_json_feed_10_with_plain_text_and_external_urls() -> None:
    feed = parse("jsonfeed10.json", "https://harbour-street.example/feeds/links.json")
    assert feed.title == "Linked List – Harbour Street"
    assert feed.author == "Sam Whitcombe"
    assert feed.error is None
    linked, leap, note = feed.entries
    assert linked.identity == "https://harbour-street.example/linked/2024/03/tunnel-boring"
    assert linked.link == "https://engineering.example/blog/how-tunnel-boring-machines-steer"
    assert linked.author == "Sam Whitcombe"
    assert linked.published == datetime(2024, 3, 4, 16, 20, tzinfo=UTC)
    assert linked.categories == ("engineering",)
    # content_text is text: escaped, in paragraphs, line breaks kept; it beats the summary.
    assert linked.content == (
        "<p>Lovely explainer on guidance systems.</p>"
        "<p>The part about AT&T's old survey &lt;b&gt;markers&lt;/b&gt; made me laugh:"
        "<br>“they were never where the map said.”</p>"
    )
    assert linked.image is None
    assert leap.identity == "0"  # a number, even a falsy one, is an id
    assert leap.author == "Guest: Priya Raman"  # 1.0's item author
    assert leap.published == datetime(2024, 2, 29, 13, 0, tzinfo=UTC)
    assert note.link == "https://harbour-street.example/notes/2024/02/10"
    assert note.content == note.title  # only a summary: it is the content and the title
    assert note.title.startswith("Site note: the feed moved")
    assert note.published == datetime(2024, 2, 10, 12, 0, tzinfo=UTC)  # RFC 822, leniently


def test_the_result_has_feedparsers_shape() -> None:
    body = (DATA / "jsonfeed11.json").read_bytes()
    parsed = read_json_feed(b"\xef\xbb\xbf \r\n" + body, {"content-type": JSON_FEED})
    assert parsed is not None
    assert (parsed.version, parsed.bozo) == ("json11", False)
    assert parsed.feed["link"] == "https://timetable.example/"
    episode = parsed.entries[1]
    assert episode["id"] == "1186"
    assert episode["published"] == "2024-02-28T18:05:00.000-08:00"
    assert tuple(episode["updated_parsed"])[:6] == (2024, 2, 29, 9, 12, 44)
    assert episode["media_thumbnail"] == [
        {"url": "https://cdn.timetable.example/episodes/58/square.jpg"},
        {"url": "https://cdn.timetable.example/episodes/58/banner.jpg"},
    ]
    assert episode["links"] == [
        {
            "rel": "enclosure",
            "href": "https://cdn.timetable.example/episodes/58/timetable-058.mp3",
            "type": "audio/mpeg",
            "length": "35913021",
        }
    ]
    assert read_json_feed((DATA / "jsonfeed10.json").read_bytes(), {}).version == "json1"
    assert read_json_feed((DATA / "atom.xml").read_bytes(), {}) is None


def test_the_same_post_in_atom_and_json_feed_is_the_same_entry() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Same</title><link href="https://s.example/"/>
<id>tag:s.example,2024:feed</id><updated>2024-03-02T00:00:00Z</updated>
<author><name>Feed Author</name></author>
<entry><id>tag:s.example,2024:1</id><link href="https://s.example/posts/1"/>
<title>One &amp; only</title><published>2024-03-01T08:30:00+02:00</published>
<updated>2024-03-02T00:00:00Z</updated><author><name>Alice</name></author>
<category term="notes"/><content type="html">&lt;p&gt;Hello &lt;img src="/a.png"&gt;
&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</content></entry>
<entry><id>tag:s.example,2024:2</id><link href="https://s.example/posts/2"/><title>Two</title>
<updated>2024-02-01T00:00:00Z</updated><summary>Just a summary</summary></entry></feed>"""
    items = [
        {
            "id": "tag:s.example,2024:1",
            "url": "https://s.example/posts/1",
            "title": "One & only",
            "date_published": "2024-03-01T08:30:00+02:00",
            "date_modified": "2024-03-02T00:00:00Z",
            "authors": [{"name": "Alice"}],
            "tags": ["notes"],
            "content_html": '<p>Hello <img src="/a.png">\n<script>x()</script></p>',
        },
        {
            "id": "tag:s.example,2024:2",
            "url": "https://s.example/posts/2",
            "title": "Two",
            "date_modified": "2024-02-01T00:00:00Z",
            "summary": "Just a summary",
        },
    ]
    json_body = json_feed(
        items, title="Same", home_page_url="https://s.example/", authors=[{"name": "Feed Author"}]
    )
    from_json = parse_feed(json_body, SOURCE, "https://s.example/feed.json", now=NOW)
    for fast in (True, False):
        from_atom = parse_feed(atom, SOURCE, "https://s.example/feed.json", now=NOW, fast=fast)
        assert from_json.entries == from_atom.entries
        assert (from_json.title, from_json.link, from_json.author) == (
            from_atom.title,
            from_atom.link,
            from_atom.author,
        )


def test_json_that_is_not_a_json_feed_is_a_clear_error() -> None:
    cases = {
        b'{"error": "rate limited"}': "not a feed (a JSON document that is not a JSON Feed)",
        b'{"version": 1.1, "items": []}': "not a feed (a JSON document that is not a JSON Feed)",
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": 1}': (
            "malformed JSON Feed (Expecting ',' delimiter"
        ),
        b"{oops, an error page}": "not a feed (broken JSON: Expecting property name",
        json_feed("not a list"): "malformed feed (JsonFeedProblem: values of the wrong type "
        "ignored: items is not a list)",
        b'{"version": "https://jsonfeed.org/version/1"}': "malformed feed (JsonFeedProblem: "
        "no items)",
    }
    for body, message in cases.items():
        with pytest.raises(ParseError) as raised:
            parse_feed(body, SOURCE, "https://e.org/api", now=NOW)
        assert str(raised.value).startswith(message), body
        assert "SAX" not in str(raised.value)
    assert parse_feed(json_feed([]), SOURCE, "https://e.org/feed.json", now=NOW).entries == ()


def test_served_as_a_json_feed_without_its_version() -> None:
    body = json.dumps({"title": "No version", "items": [{"id": "1", "content_text": "x"}]})
    feed = parse_feed(
        body.encode(), SOURCE, "https://e.org/f", {"content-type": JSON_FEED}, now=NOW
    )
    assert [e.identity for e in feed.entries] == ["1"]
    with pytest.raises(ParseError, match="not a JSON Feed"):
        parse_feed(body.encode(), SOURCE, "https://e.org/f", {"content-type": "application/json"})


GOOD = {"id": "a", "url": "https://e.org/a", "title": "A", "content_html": "<p>body</p>"}
WRONG_TYPES = [
    ("title", 42, "items[0].title is not a string"),
    ("url", ["https://e.org/x"], "items[0].url is not a string"),
    ("content_html", {"html": "<p>x</p>"}, "items[0].content_html is not a string"),
    ("date_published", 1709251200, "items[0].date_published is not a string"),
    ("tags", "news", "items[0].tags is not a list"),
    ("tags", ["kept", None, {"x": 1}], "items[0].tags[1] is not a string"),
    ("authors", {"name": "A"}, "items[0].authors is not a list"),
    ("authors", ["Alice"], "items[0].authors[0] is not an object"),
    ("author", "Alice", "items[0].author is not an object"),
    ("id", True, "items[0].id is not a string or a number"),
    ("id", {"guid": "a"}, "items[0].id is not a string or a number"),
    ("image", 5, "items[0].image is not a string"),
    ("attachments", {"url": "https://e.org/a.mp3"}, "items[0].attachments is not a list"),
    ("attachments", [{"url": 5}], "items[0].attachments[0].url is not a string"),
    ("attachments", [{"url": "u", "size_in_bytes": "5"}], "size_in_bytes is not a number"),
]


@pytest.mark.parametrize(
    ("key", "value", "message"), WRONG_TYPES, ids=[f"{k}={v!r}" for k, v, _ in WRONG_TYPES]
)
def test_a_value_of_the_wrong_type_costs_that_value(key: str, value: Any, message: str) -> None:
    items = [{**GOOD, key: value}, {**GOOD, "id": "b"}]
    feed = parse_feed(json_feed(items), SOURCE, "https://e.org/feed.json", now=NOW)
    first, second = feed.entries
    assert feed.error is not None and message in feed.error
    assert second.content == "<p>body</p>" and second.link == "https://e.org/a"
    if key == "id":
        assert first.identity == "https://e.org/a"  # falls back to the link
    if key == "tags" and isinstance(value, list):
        assert first.categories == ("kept",)
    if key != "content_html":
        assert first.content == "<p>body</p>"


def test_items_that_are_not_objects_and_wrong_feed_values() -> None:
    body = json_feed([1, "two", None, GOOD], title=7, home_page_url=False, author="me")
    feed = parse_feed(body, SOURCE, "https://e.org/feed.json", now=NOW)
    assert [e.identity for e in feed.entries] == ["a"]
    assert (feed.title, feed.link, feed.author) == (None, "https://e.org/feed.json", None)
    assert feed.error == (
        "malformed feed (JsonFeedProblem: values of the wrong type ignored: items[0] is not an "
        "object, items[1] is not an object, items[2] is not an object and 3 more)"
    )


def test_odd_values_that_are_not_type_errors() -> None:
    items = [
        {"id": 10**40, "date_published": "yesterday", "content_text": "x"},
        {"id": 1.50, "date_modified": "2999-01-01T00:00:00Z", "content_text": "y"},
        {"id": " \ud800 ", "title": "Lone \udfff surrogate", "content_html": "<p>\ud83d</p>"},
        {"id": "", "url": "javascript:alert(1)", "external_url": "https://e.org/ext"},
    ]
    body = json_feed(items).replace(b"1.5,", b"1.50,")
    feed = parse_feed(body, SOURCE, "https://e.org/feed.json", now=NOW)
    big, decimal, lone, empty = feed.entries
    assert (big.identity, big.published) == ("1" + "0" * 40, None)
    assert (decimal.identity, decimal.updated) == ("1.50", NOW)  # the future is clamped
    assert lone.identity == "?" and lone.title == "Lone ? surrogate"
    for entry in feed.entries:  # everything can be written as UTF-8
        assert repr(entry).encode("utf-8")
    # A javascript: url is no link; the identity then falls back to a hash, not external_url.
    assert empty.link is None and empty.identity.startswith("sha256:")
    assert feed.error is None


def test_text_that_is_not_utf8() -> None:
    item = {"id": "1", "title": "中文標題", "content_text": "內容"}
    body = json.dumps({"version": VERSION_11, "items": [item]}, ensure_ascii=False).encode()
    gbk = body.decode().encode("gbk")
    assert gbk != body
    declared = parse_feed(
        gbk, SOURCE, "https://e.org/f", {"content-type": "application/json; charset=GBK"}
    )
    assert declared.entries[0].title == "中文標題"
    assert declared.error == "malformed feed (JsonFeedProblem: not UTF-8; read as gbk, as declared)"
    undeclared = parse_feed(gbk, SOURCE, "https://e.org/f")
    assert "\ufffd" in undeclared.entries[0].title
    assert "not valid UTF-8; undecodable bytes replaced" in (undeclared.error or "")
    trailing = parse_feed(body + b"\n<!-- cached 0.2s -->", SOURCE, "https://e.org/f")
    assert trailing.entries[0].title == "中文標題"
    assert "text after the JSON document ignored" in (trailing.error or "")


def test_nesting_up_to_max_body_is_refused_quickly() -> None:
    head = b'{"version": "https://jsonfeed.org/version/1.1", "items": ['
    for opener in (b"[", b'{"a":'):
        body = head + opener * ((15 * 2**20 - len(head)) // len(opener))
        started = time.monotonic()
        with pytest.raises(ParseError) as raised:
            parse_feed(body, SOURCE, "https://e.org/feed.json", now=NOW)
        assert time.monotonic() - started < 5
        assert str(raised.value) == "malformed JSON Feed (arrays or objects nested too deep)"
    # Nesting the reader can hold costs only the value it is in.
    deep = json.loads("[" * 200 + "]" * 200)
    feed = parse_feed(json_feed([{**GOOD, "title": deep}]), SOURCE, "https://e.org/f", now=NOW)
    assert feed.entries[0].content == "<p>body</p>"
    assert "items[0].title is not a string" in (feed.error or "")


def test_a_max_body_sized_feed_of_many_items() -> None:
    items = []
    for index in range(125_000):
        url = f"https://e.org/posts/{index}"
        items.append({"id": url, "url": url, "title": "Item", "content_text": f"Post {index}."})
    body = json_feed(items)
    assert 14 * 2**20 < len(body) < 15 * 2**20
    started = time.monotonic()
    feed = parse_feed(body, SOURCE, "https://e.org/feed.json", now=NOW)
    seconds = time.monotonic() - started
    print(f"{len(items):,} items, {len(body) / 2**20:.1f} MiB: {seconds:.2f} s")
    assert len(feed.entries) == 125_000 and feed.error is None
    assert feed.entries[-1].content == "<p>Post 124999.</p>"
    assert seconds < 60


# -- discovery and a whole pass ------------------------------------------------------------


def test_feed_links_include_json_feeds() -> None:
    html = (
        b'<html><head><link rel="alternate" type="application/json" href="/wp-json/wp/v2/p/5">'
        b'<link rel="alternate" type="application/feed+json" title="JSON" href="/feed.json">'
        b"</head></html>"
    )
    links = feed_links(html, "https://site.example/post")
    assert [(link.url, link.media_type) for link in links] == [
        ("https://site.example/wp-json/wp/v2/p/5", "application/json"),
        ("https://site.example/feed.json", "application/feed+json"),
    ]


def test_add_a_page_that_advertises_a_json_feed(tmp_path: Path, feed_server: FeedServer) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("sources: []\n", encoding="utf-8")
    # WordPress advertises its REST API as application/json on every page, before the feed.
    head = (
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/5">'
        '<link rel="alternate" type="application/feed+json" title="Notes" href="/feed.json">'
    )
    page = f"<!DOCTYPE html><html><head><title>Notes</title>{head}</head><body></body></html>"
    feed_server.serve("/", page.encode(), content_type="text/html; charset=utf-8")
    api = feed_server.serve("/wp-json/wp/v2/pages/5", b'{"id": 5}', content_type="application/json")
    body = (DATA / "jsonfeed11.json").read_bytes()
    feed_server.serve("/feed.json", body, content_type=JSON_FEED)
    result = run_cli("add", "--config", str(config), "--name", "notes", feed_server.url("/"))
    assert result.returncode == 0, result.stderr
    assert "It advertises 2 feed(s):" in result.stdout
    assert f"{feed_server.url('/feed.json')}  application/feed+json  (Notes)" in result.stdout
    assert "3 entries" in result.stdout
    assert load_config(config).sources[0].url == feed_server.url("/feed.json")
    assert api.requests == 0  # the JSON Feed was tried first and worked


def test_a_pass_over_a_json_feed_source(feed_server: FeedServer, make_config, pipeline_for) -> None:
    feed_server.serve("/feed.json", (DATA / "jsonfeed11.json").read_bytes(), content_type=JSON_FEED)
    config = make_config([{"name": "notes", "url": feed_server.url("/feed.json")}])
    pipeline = pipeline_for(config)
    (result,) = pipeline.update_all()
    assert (result.status, result.new, result.error) == ("new", 3, None)
    assert len(list(config.paths.documents.glob("*.md"))) == 3
    merged = json.loads((config.paths.public / "feed.json").read_bytes())
    assert {item["title"] for item in merged["items"]} >= {"Timetable 58: Second Thoughts"}
    (again,) = pipeline.update_all()
    assert (again.status, again.new) == ("not-modified", 0)
