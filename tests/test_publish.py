"""The merged feed: valid RSS 2.0 and Atom 1.0, newest first, stable ids, byte-stable output."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from xml.etree import ElementTree

import feedparser
from invariants import check_feeds_as_feedgen_writes_them

from aggregator.models import Entry, Source, StoredEntry
from aggregator.outputs.feeds import FeedInfo, Fragments, build_feeds, item_id, publish_feeds

INFO = FeedInfo("Merged", "https://feeds.example.org/", "All of it")
SOURCES = {"a": Source("a", "https://a.example/feed", title="Source A")}
ATOM = "{http://www.w3.org/2005/Atom}"


def stored(index: int, *, author: str | None = "Ann", content: str = "<p>x &amp; y</p>"):
    date = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=index)
    entry = Entry(
        "a",
        f"id-{index}",
        f"https://a.example/{index}",
        f"Title {index} <&>",
        author,
        date,
        None,
        content,
        None,
        ("cat",),
    )
    return StoredEntry(
        index, entry, date, date, f"{index}.md", "Source A", "https://a.example/feed"
    )


def entries() -> list[StoredEntry]:
    return [stored(3), stored(2, author=None), stored(1, content="")]


def test_both_feeds_parse_cleanly_with_items_newest_first() -> None:
    rss, atom = build_feeds(INFO, entries(), SOURCES)
    for data, version in ((rss, "rss20"), (atom, "atom10")):
        parsed = feedparser.parse(data)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.version == version
        assert [e.title for e in parsed.entries] == ["Title 3 <&>", "Title 2 <&>", "Title 1 <&>"]
        assert parsed.entries[0].id == item_id("a", "id-3")
        assert parsed.entries[0].link == "https://a.example/3"
        first = parsed.entries[0]
        html = first.content[0].value if "content" in first else first.summary
        assert html == "<p>x &amp; y</p>"


def test_self_links_and_required_elements() -> None:
    rss, atom = build_feeds(INFO, entries(), SOURCES)
    channel = ElementTree.fromstring(rss).find("channel")
    assert channel.findtext("link") == "https://feeds.example.org/"
    self_link = channel.find(f"{ATOM}link")
    assert self_link.get("href") == "https://feeds.example.org/feed.xml"
    assert self_link.get("rel") == "self"
    for item in channel.findall("item"):
        assert item.find("guid").get("isPermaLink") == "false"
        assert item.findtext("source") == "Source A"
        assert item.find("source").get("url") == "https://a.example/feed"

    feed = ElementTree.fromstring(atom)
    assert feed.findtext(f"{ATOM}id") == "https://feeds.example.org/atom.xml"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links["self"] == "https://feeds.example.org/atom.xml"
    assert feed.find(f"{ATOM}author") is not None  # entries without an author are covered
    for item in feed.findall(f"{ATOM}entry"):
        for required in ("id", "title", "updated"):
            assert item.findtext(f"{ATOM}{required}")
        assert item.find(f"{ATOM}source/{ATOM}title").text == "Source A"


def test_output_is_byte_stable(tmp_path: Path) -> None:
    assert build_feeds(INFO, entries(), SOURCES) == build_feeds(INFO, entries(), SOURCES)
    assert publish_feeds(tmp_path, INFO, entries(), SOURCES) is True
    first = (tmp_path / "feed.xml").stat().st_mtime_ns
    assert publish_feeds(tmp_path, INFO, entries(), SOURCES) is False
    assert (tmp_path / "feed.xml").stat().st_mtime_ns == first


def test_empty_feed_is_valid() -> None:
    rss, atom = build_feeds(INFO, [], SOURCES)
    assert not feedparser.parse(rss).bozo
    assert not feedparser.parse(atom).bozo


def test_feeds_from_fragments_are_what_feedgen_writes_whole() -> None:
    hub = FeedInfo("合并 <&>", "https://feeds.example.org/", "全部 ]]>", hub="https://hub.example/")
    odd = stored(6, author='Zoë "Z" <z@x> & co\t', content="a\r\nb\t]]> <![CDATA[ x")
    elsewhere = timezone(timedelta(hours=5, minutes=30))
    odd = replace(
        odd,
        entry=replace(
            odd.entry,
            source="b",
            link=None,
            title="",
            categories=('tab\there\n"q" <&>', "中文", ""),
            updated=datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=elsewhere),
        ),
        date=datetime(2024, 2, 29, 18, 29, 59, 999999, tzinfo=UTC),
        source_title=None,
        source_url='https://b.example/feed?a=1&b="2"',
    )
    unlisted = replace(stored(7), entry=replace(stored(7).entry, source="gone"))
    varied = [
        stored(5, content="<p>中文 <img src='https://img.example/a.jpg'> ]]&gt;</p>"),
        odd,
        unlisted,
        replace(unlisted, id=8, source_url=None, source_title=None),
        *entries(),
    ]
    sources = {**SOURCES, "b": Source("b", "https://b.example/feed")}
    for info in (INFO, hub):
        check_feeds_as_feedgen_writes_them(info, varied, sources, Fragments())
        check_feeds_as_feedgen_writes_them(info, [], sources, Fragments())


def test_fragments_are_reused_until_what_they_are_built_from_changes() -> None:
    fragments = Fragments()
    first = entries()
    build_feeds(INFO, first, SOURCES, fragments)
    # The same row and version: the kept fragment is used (the store raises the version
    # whenever it changes an entry, so different content under one version never happens).
    edited = replace(first[0], entry=replace(first[0].entry, content="<p>edited</p>"))
    rss, _ = build_feeds(INFO, [edited, *first[1:]], SOURCES, fragments)
    assert b"edited" not in rss
    # A new version, a renamed source or a new row reusing the id: built again, so the
    # edited content shows.
    for changed, sources in (
        (replace(edited, version=2), SOURCES),
        (edited, {"a": Source("a", "https://a.example/feed", title="Renamed")}),
        (replace(edited, first_seen=edited.first_seen + timedelta(days=1)), SOURCES),
    ):
        fresh = Fragments()
        build_feeds(INFO, first, SOURCES, fresh)
        feeds = build_feeds(INFO, [changed, *first[1:]], sources, fresh)
        assert b"edited" in feeds[0] and b"edited" in feeds[1]
        assert feeds == build_feeds(INFO, [changed, *first[1:]], sources)
    # Only the entries of the latest publish are kept.
    build_feeds(INFO, first[:1], SOURCES, fragments)
    assert len(fragments) == 1


def test_characters_xml_cannot_hold_are_left_out_not_fatal() -> None:
    """A row stored before such characters were dropped at parse time, or written by hand,
    must not make every later merged feed unwritable (lxml refuses the whole document)."""
    bad = stored(9, content="<p>a\x01b\ufffe</p>")
    bad = replace(bad, entry=replace(bad.entry, title="T\x0bitle", categories=("c\x00at",)))
    rss, atom = build_feeds(INFO, [bad, *entries()], SOURCES)
    for data in (rss, atom):
        parsed = feedparser.parse(data)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.entries[0].title == "Title"
        assert [tag.term for tag in parsed.entries[0].tags] == ["cat"]


def test_item_ids_are_the_uuid5_readers_already_have() -> None:
    """Ids published by earlier versions must never change (readers would show every entry
    again): still `uuid5(NAMESPACE_URL, "aggregator:<source>:<identity>")`."""

    for source, identity in [("a", "id-1"), ("半岛", "https://x.example/新闻?a=1&b=2"), ("", "")]:
        name = f"aggregator:{source}:{identity}"
        assert item_id.__wrapped__(source, identity) == uuid.uuid5(uuid.NAMESPACE_URL, name).urn
