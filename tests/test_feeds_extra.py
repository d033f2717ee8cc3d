"""Outputs beyond the merged RSS/Atom: JSON Feed 1.1, one feed per category and per source,
attribution of each entry to its source, and WebSub (hub advertised, hub pinged)."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from feedworld import rsshub_feed, rsshub_item
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.errors import ConfigError
from aggregator.models import Source
from aggregator.outputs.feed_groups import category_slug, feed_groups, published_feeds
from aggregator.outputs.feeds import FeedInfo, item_id
from aggregator.service.index_page import index_page_for

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def two_sources(feed_server) -> list[dict]:
    news = [rsshub_item(i, title=f"新闻 {i}") for i in range(3)]
    feed_server.serve("/news", rsshub_feed(news, title="半岛电视台 - 新闻"))
    blog = [
        rsshub_item(10 + i, title=f"Blog post {i}", guid=f"blog-{i}", body=f"<p>post {i}</p>")
        for i in range(2)
    ]
    feed_server.serve("/blog", rsshub_feed(blog, title="A blog"))
    return [
        {
            "name": "news",
            "url": feed_server.url("/news"),
            "title": "半岛电视台",
            "categories": ["新闻", "Tech"],
        },
        {"name": "blog", "url": feed_server.url("/blog"), "categories": ["Tech"]},
    ]


def titles(path: Path) -> list[str]:
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return [entry.title for entry in parsed.entries]


def test_every_category_and_source_gets_rss_atom_and_json(
    two_sources, make_config, pipeline_for
) -> None:
    config = make_config(two_sources)
    pipeline_for(config).update_all()
    public = config.paths.public

    assert titles(public / "category" / "新闻" / "feed.xml") == ["新闻 0", "新闻 1", "新闻 2"]
    tech = public / "category" / "tech"
    assert len(titles(tech / "feed.xml")) == len(titles(tech / "atom.xml")) == 5
    assert titles(public / "source" / "blog" / "atom.xml") == ["Blog post 0", "Blog post 1"]
    assert len(titles(public / "source" / "news" / "feed.xml")) == 3
    for folder in ("category/新闻", "category/tech", "source/news", "source/blog"):
        assert sorted(p.name for p in (public / folder).iterdir()) == [
            "atom.xml",
            "feed.json",
            "feed.xml",
        ]

    # Self links point at each file's own public URL (percent-encoded), ids are the merged ids.
    atom = feedparser.parse((public / "category" / "新闻" / "atom.xml").read_bytes())
    self_link = next(link.href for link in atom.feed.links if link.rel == "self")
    assert self_link == "http://127.0.0.1:8080/category/%E6%96%B0%E9%97%BB/atom.xml"
    merged_ids = {e.id for e in feedparser.parse((public / "atom.xml").read_bytes()).entries}
    assert {e.id for e in atom.entries} <= merged_ids


def test_category_and_source_feeds_can_be_switched_off(
    two_sources, make_config, pipeline_for
) -> None:
    """At thousands of sources a feed per source is thousands of files: `feed.source_feeds:
    false` (and `category_feeds`) leave them out, and remove those already written."""
    config = make_config(two_sources)
    pipeline_for(config).update_all()
    public = config.paths.public
    assert (public / "source" / "news" / "feed.xml").exists()
    config = make_config(two_sources, feed={"source_feeds": False})
    pipeline_for(config).update_all()
    assert not (public / "source" / "news").exists()
    assert titles(public / "category" / "tech" / "feed.xml")
    config = make_config(two_sources, feed={"source_feeds": False, "category_feeds": False})
    pipeline_for(config).update_all()
    assert not (public / "category" / "tech").exists()
    assert len(titles(public / "feed.xml")) == 5
    links = index_page_for(config, pipeline_for(config).store).decode()
    assert "category/" not in links and "source/" not in links


def test_the_feed_switches_must_be_booleans(make_config) -> None:
    with pytest.raises(ConfigError, match=r"feed\.source_feeds"):
        make_config([], feed={"source_feeds": "sometimes"})


def test_json_feed_is_valid_1_1_with_the_same_ids(two_sources, make_config, pipeline_for) -> None:
    config = make_config(two_sources)
    pipeline_for(config).update_all()
    data = json.loads((config.paths.public / "feed.json").read_text(encoding="utf-8"))
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    assert data["feed_url"] == "http://127.0.0.1:8080/feed.json"
    assert data["home_page_url"] == "http://127.0.0.1:8080/"
    assert "hubs" not in data
    items = data["items"]
    assert len(items) == 5
    rss = feedparser.parse((config.paths.public / "feed.xml").read_bytes())
    assert [item["id"] for item in items] == [entry.id for entry in rss.entries]
    dates = [item["date_published"] for item in items]
    assert dates == sorted(dates, reverse=True)  # newest first
    first = next(item for item in items if item["title"] == "新闻 0")
    assert first["id"] == item_id("news", first["url"])
    assert first["content_html"].startswith("<p>白宫宣布")
    assert first["image"].startswith("https://chinese.aljazeera.net/wp-content/uploads/")
    assert first["date_published"] == "2022-01-28T04:45:33Z"
    assert first["_source"]["title"] == "半岛电视台"
    assert first["_source"]["url"].endswith("/news")

    group = json.loads((config.paths.public / "source/blog/feed.json").read_text("utf-8"))
    assert group["feed_url"] == "http://127.0.0.1:8080/source/blog/feed.json"
    assert [item["title"] for item in group["items"]] == ["Blog post 0", "Blog post 1"]


def test_each_merged_entry_names_its_source_in_atom_and_rss(
    two_sources, make_config, pipeline_for
) -> None:
    config = make_config(two_sources)
    pipeline_for(config).update_all()
    atom = ET.parse(config.paths.public / "atom.xml").getroot()
    origins = {}
    for entry in atom.iter(f"{ATOM}entry"):
        source = entry.find(f"{ATOM}source")
        assert source is not None
        title = entry.findtext(f"{ATOM}title")
        origins[title] = (source.findtext(f"{ATOM}title"), source.find(f"{ATOM}link"))
    assert origins["新闻 0"][0] == "半岛电视台"  # the configured title wins
    assert origins["新闻 0"][1].get("href").endswith("/news")
    assert origins["Blog post 0"][0] == "A blog"  # else the feed's own title

    rss = ET.parse(config.paths.public / "feed.xml").getroot()
    for item in rss.iter("item"):
        source = item.find("source")
        assert source is not None
        assert source.get("url").endswith(("/news", "/blog"))
        assert source.text in {"半岛电视台", "A blog"}


def test_outputs_are_not_rewritten_when_nothing_changed(
    two_sources, make_config, pipeline_for
) -> None:
    config = make_config(two_sources)
    pipeline_for(config).update_all()
    files = sorted(config.paths.public.rglob("*.*"))
    before = {path: path.stat().st_mtime_ns for path in files}
    assert (
        pipeline_for(config).publisher.publish() is False
    )  # a fresh pipeline rebuilds, same bytes
    assert {path: path.stat().st_mtime_ns for path in files} == before


def test_group_of_a_category_no_longer_configured_is_removed(
    two_sources, make_config, pipeline_for
) -> None:
    config = make_config(two_sources)
    pipeline_for(config).update_all()
    (config.paths.public / "category" / "tech" / "notes.txt").write_text("mine")
    two_sources[0]["categories"] = ["Tech"]
    two_sources[1]["categories"] = []
    pipeline_for(make_config(two_sources)).publisher.publish()
    public = config.paths.public
    assert not (public / "category" / "新闻").exists()
    assert (public / "category" / "tech" / "notes.txt").exists()  # not ours: left alone
    assert len(titles(public / "category" / "tech" / "feed.xml")) == 3


def test_group_feed_follows_new_entries(feed_server, two_sources, make_config, pipeline_for):
    config = make_config(two_sources)
    pipeline = pipeline_for(config)
    pipeline.update_all()
    fresh = datetime(2022, 2, 1, tzinfo=UTC)
    blog = [rsshub_item(20, title="Fresh post", guid="blog-fresh", body="<p>x</p>", date=fresh)]
    feed_server.serve("/blog", rsshub_feed(blog, title="A blog"))
    pipeline.update_all()
    public = config.paths.public
    assert titles(public / "source" / "blog" / "feed.xml")[0] == "Fresh post"
    assert "Fresh post" in titles(public / "category" / "tech" / "atom.xml")
    assert "Fresh post" not in titles(public / "category" / "新闻" / "atom.xml")


class Hub:
    """A WebSub hub on 127.0.0.1 that records publish pings."""

    def __init__(self, server: HTTPServer, status: int = 204) -> None:
        self.pings: list[dict[str, str]] = []
        self.status = status
        server.expect_request("/hub", method="POST").respond_with_handler(self.respond)
        self.url = server.url_for("/hub")

    def respond(self, request: Request) -> Response:
        self.pings.append(dict(request.form))
        return Response(status=self.status)


def test_hub_is_advertised_and_pinged_after_a_publish_that_changed(
    feed_server, two_sources, make_config, pipeline_for
) -> None:
    hub = Hub(feed_server.server)
    config = make_config(two_sources, feed={"hub": hub.url, "link": "http://example.test/"})
    pipeline = pipeline_for(config)
    pipeline.update_all()
    base = "http://example.test/"
    assert hub.pings == [
        {"hub.mode": "publish", "hub.url": base + "feed.xml"},
        {"hub.mode": "publish", "hub.url": base + "atom.xml"},
        {"hub.mode": "publish", "hub.url": base + "feed.json"},
    ]
    atom = feedparser.parse((config.paths.public / "atom.xml").read_bytes())
    assert {"rel": "hub", "href": hub.url} in [
        {"rel": link.rel, "href": link.href} for link in atom.feed.links
    ]
    rss = ET.parse(config.paths.public / "feed.xml").getroot()
    rss_hubs = [link.get("href") for link in rss.iter(f"{ATOM}link") if link.get("rel") == "hub"]
    assert rss_hubs == [hub.url]
    data = json.loads((config.paths.public / "feed.json").read_text(encoding="utf-8"))
    assert data["hubs"] == [{"type": "WebSub", "url": hub.url}]
    # Group feeds are not announced, so they do not advertise the hub.
    group = (config.paths.public / "source" / "news" / "atom.xml").read_text(encoding="utf-8")
    assert 'rel="hub"' not in group

    pipeline.update_all()  # nothing new: no ping
    assert len(hub.pings) == 3


def test_a_failing_hub_is_logged_and_never_fatal(
    feed_server, two_sources, make_config, pipeline_for, caplog
) -> None:
    hub = Hub(feed_server.server, status=500)
    config = make_config(two_sources, feed={"hub": hub.url})
    with caplog.at_level(logging.WARNING, logger="aggregator.outputs.websub"):
        results = pipeline_for(config).update_all()
    assert all(result.status == "new" for result in results)
    assert len(hub.pings) == 3
    assert "websub ping failed" in caplog.text and "HTTP 500" in caplog.text
    assert (config.paths.public / "atom.xml").exists()


def test_a_hub_that_is_not_listening_is_not_fatal(
    two_sources, make_config, pipeline_for, caplog
) -> None:
    config = make_config(two_sources, feed={"hub": "http://127.0.0.1:9/hub"})
    with caplog.at_level(logging.WARNING, logger="aggregator.outputs.websub"):
        pipeline_for(config).update_all()
    assert caplog.text.count("websub ping failed") == 3


def test_groups_and_links_are_plain_data() -> None:
    sources = [
        Source("a", "http://x/a", title="A", categories=("Tech", "新闻")),
        Source("b", "http://x/b", categories=("tech", "../..")),
    ]
    groups = feed_groups(sources)
    assert [(g.kind, g.slug, g.sources) for g in groups] == [
        ("category", "tech", ("a", "b")),  # Tech and tech share one feed
        ("category", "新闻", ("a",)),
        ("category", "category", ("b",)),  # nothing usable in "../.."
        ("source", "a", ("a",)),
        ("source", "b", ("b",)),
    ]
    assert category_slug("C++ / Rust!") == "c-rust"
    links = published_feeds(FeedInfo("All", "http://h/", "d"), groups)
    assert [link.path for link in links[:3]] == ["feed.xml", "atom.xml", "feed.json"]
    assert links[6].url_path == "category/%E6%96%B0%E9%97%BB/feed.xml"
    assert links[6].title == "All: 新闻 (RSS)"
    assert len(links) == 3 + 3 * len(groups)


def test_the_json_feed_name_cannot_be_given_to_another_format(make_config) -> None:
    with pytest.raises(ConfigError) as error:
        make_config([], feed={"rss": "feed.json", "atom": "atom.xml"})
    assert "feed.rss (line" in str(error.value)
    assert "feed.json is taken by the merged JSON Feed" in str(error.value)
