"""The real `aggregator update`, twice, over a corpus shaped like what publishers really send.

tests/data/real/ holds one file per publisher shape (a podcast, Reddit's Atom and RSS, a
newspaper and a mirror of it, FeedBurner, WordPress, Craigslist's RDF, a Latin-1 feed with no
declaration, a GBK feed declared gb2312, JSON Feed 1.0 and 1.1, and four answers that are not
feeds), each beside `<name>.expected.json`: facts written by hand from the feed, not from our
code. A local HTTP server serves them all, with ETags and 304s as real servers do; the CLI runs
in a subprocess on a config with one source per file, once, then again after two sources moved
(301) and nothing else changed. Each behaviour is its own test on the two passes' results.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Feed, run_cli
from feedworld import DATA
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

REAL = DATA / "real"
# Corpus file -> source name. The mirror's name sorts before the newspaper's, so that which
# source an article shared by both is attributed to is seen not to follow the poll order.
SOURCES = {
    "podcast.rss": "podcast",
    "reddit.atom": "reddit-atom",
    "reddit.rss": "reddit-rss",
    "newspaper.rss": "newspaper",
    "mirror.rss": "a-mirror",
    "feedburner.atom": "feedburner",
    "wordpress.rss": "wordpress",
    "craigslist.rdf": "craigslist",
    "latin1-nodecl.rss": "latin1-nodecl",
    "gbk.rss": "gbk",
    "jsonfeed11.json": "jsonfeed11",
    "jsonfeed10.json": "jsonfeed10",
    "iis-moved.html": "iis-moved",
    "maintenance.html": "maintenance",
    "empty.txt": "empty",
    "plain.txt": "plain",
}
CATEGORIES = {
    "podcast": ["Podcasts"],
    "newspaper": ["News", "Newspaper"],
    "a-mirror": ["News", "Mirror"],
}
MOVED = ("reddit.atom", "podcast.rss")  # served at a new path for pass 2, the old one 301s
SEED = DATA / "aljazeera.expected.md"
REQUIRED_KEYS = {"title", "categories", "author", "comments", "date"}


def expected(file: str) -> dict[str, Any]:
    return json.loads((REAL / f"{file}.expected.json").read_text(encoding="utf-8"))


FEEDS = [file for file in SOURCES if expected(file)["kind"] == "feed"]
NOT_FEEDS = [file for file in SOURCES if expected(file)["kind"] == "not-a-feed"]


class Site:
    """Every corpus file at /real/<file>, as a server with ETags answers (304 to a matching
    If-None-Match); a path may instead answer 301 to another URL. Requests are logged."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.routes: dict[str, Feed | str] = {}
        self.log: list[tuple[str, int]] = []
        server.expect_request(re.compile("^/")).respond_with_handler(self.respond)

    def serve(self, path: str, body: bytes, content_type: str) -> None:
        self.routes[path] = Feed(body=body, content_type=content_type)

    def move(self, path: str, new_path: str, body: bytes) -> None:
        old = self.routes[path]
        assert isinstance(old, Feed)
        self.serve(new_path, body, old.content_type)
        self.routes[path] = self.url(new_path)

    def url(self, path: str) -> str:
        return self.server.url_for(path)

    def respond(self, request: Request) -> Response:
        route = self.routes.get(request.path)
        if route is None:
            response = Response("not found", status=404, content_type="text/plain")
        elif isinstance(route, str):
            response = Response(status=301, headers={"Location": route})
        else:
            response = route.respond(request)
        self.log.append((request.path, response.status_code))
        return response


NEWER = {
    b"updated": b"2024-03-06T00:00:00+00:00",
    b"lastBuildDate": b"Wed, 06 Mar 2024 00:00:00 +0000",
}


def regenerated(body: bytes) -> bytes:
    """The feed as its new host writes it: the same entries, a newer feed-level timestamp
    (the first <lastBuildDate> or <updated>, which in these feeds is the feed's own). So
    pass 2 parses the moved feeds (a byte-identical body would be skipped as unchanged)
    and their entries' identities are put to the test."""
    new, count = re.subn(
        rb"<(lastBuildDate|updated)>[^<]*</\1>",
        lambda m: b"<%s>%s</%s>" % (m.group(1), NEWER[m.group(1)], m.group(1)),
        body,
        count=1,
    )
    assert count == 1 and new != body
    return new


@dataclass
class Snapshot:
    """What one pass left: the command's result, the database's rows, the files."""

    result: subprocess.CompletedProcess
    sources: dict[str, dict[str, Any]]
    identities: dict[str, list[str]]  # source -> entries.identity
    titles: dict[str, list[str]]  # source -> entries.title
    documents: dict[str, str]  # file name -> text
    public: dict[str, bytes]  # path under public/ -> bytes
    mtimes: dict[str, int] = field(default_factory=dict)  # "documents/x", "public/y" -> ns


@dataclass
class World:
    root: Path
    site: Site
    urls: dict[str, str]  # corpus file -> URL configured
    first: Snapshot
    second: Snapshot
    requests_of_pass_2: list[tuple[str, int]]


def snapshot(root: Path, result: subprocess.CompletedProcess) -> Snapshot:
    mtimes = {
        str(path.relative_to(root)): path.stat().st_mtime_ns
        for folder in ("documents", "public")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }
    database = sqlite3.connect(f"file:{root / 'state/agg.db'}?mode=ro", uri=True)
    database.row_factory = sqlite3.Row
    try:
        sources = {row["name"]: dict(row) for row in database.execute("SELECT * FROM sources")}
        identities: dict[str, list[str]] = {}
        titles: dict[str, list[str]] = {}
        for row in database.execute("SELECT source, identity, title FROM entries ORDER BY id"):
            identities.setdefault(row["source"], []).append(row["identity"])
            titles.setdefault(row["source"], []).append(row["title"])
    finally:
        database.close()
    return Snapshot(
        result=result,
        sources=sources,
        identities=identities,
        titles=titles,
        documents={
            path.name: path.read_text(encoding="utf-8")
            for path in sorted((root / "documents").glob("*.md"))
        },
        public={
            str(path.relative_to(root / "public")): path.read_bytes()
            for path in sorted((root / "public").rglob("*"))
            if path.is_file()
        },
        mtimes=mtimes,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("real")
    server = HTTPServer(host="127.0.0.1", port=0)
    site = Site(server)
    server.start()
    try:
        urls = {}
        for file in SOURCES:
            site.serve(f"/real/{file}", (REAL / file).read_bytes(), expected(file)["content_type"])
            urls[file] = site.url(f"/real/{file}")
        sources = []
        for file, name in SOURCES.items():
            source: dict[str, Any] = {"name": name, "url": urls[file]}
            if name in CATEGORIES:
                source["categories"] = CATEGORIES[name]
            sources.append(source)
        config = root / "config.yaml"
        settings = {
            "database": "state/agg.db",
            "documents": "documents",
            "workers": 4,
            "feed": {"folder": "public", "max_items": 1000},
            "sources": sources,
        }
        config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")

        first = snapshot(root, run_cli("update", "--config", str(config), timeout=60))
        for file in MOVED:
            site.move(f"/real/{file}", f"/moved/{file}", regenerated((REAL / file).read_bytes()))
        logged = len(site.log)
        second = snapshot(root, run_cli("update", "--config", str(config), timeout=60))
        yield World(root, site, urls, first, second, site.log[logged:])
    finally:
        server.clear()
        server.stop()


def front_matter(text: str) -> dict[str, Any]:
    """The YAML between a document's first two `---` lines."""
    lines = text.split("\n")
    assert lines[0] == "---", text[:200]
    end = lines.index("---", 1)
    matter = yaml.safe_load("\n".join(lines[1:end]))
    assert isinstance(matter, dict), text[:200]
    return matter


def seed_keys() -> list[str]:
    """The front matter's keys in the order of the seed document."""
    return list(front_matter(SEED.read_text(encoding="utf-8").lstrip()))


def items(feed: bytes) -> list[etree._Element]:
    """The <item>s of an RSS feed, the <entry>s of an Atom one."""
    root = etree.fromstring(feed)
    return [e for e in root.iter() if etree.QName(e).localname in ("item", "entry")]


def item_titles(feed: bytes) -> list[str]:
    found = []
    for item in items(feed):
        title = next(e for e in item if etree.QName(e).localname == "title")
        found.append(title.text or "")
    return found


def item_ids(feed: bytes) -> list[str]:
    """The ids of a published feed's items: RSS <guid>, Atom <id>, JSON Feed `id`."""
    if feed.lstrip().startswith(b"{"):
        return [item["id"] for item in json.loads(feed)["items"]]
    found = []
    for item in items(feed):
        for child in item:
            if etree.QName(child).localname in ("guid", "id"):
                found.append(child.text or "")
    return found


def published_urls(path: str, data: bytes) -> Iterator[str]:
    """Every URL a published feed file holds: RSS <link> text and url/href attributes; in
    JSON Feed every `url` and `*_url` value."""
    if path.endswith(".json"):
        stack: list[Any] = [json.loads(data)]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key, inner in value.items():
                    if (key == "url" or key.endswith("_url")) and isinstance(inner, str):
                        yield inner
                    else:
                        stack.append(inner)
            elif isinstance(value, list):
                stack.extend(value)
        return
    for element in etree.fromstring(data).iter():
        if not isinstance(element.tag, str):
            continue
        if etree.QName(element).localname == "link" and (element.text or "").strip():
            yield element.text or ""
        for name, value in element.attrib.items():
            if etree.QName(name).localname in ("href", "url"):
                yield value


def feed_files(snap: Snapshot) -> list[str]:
    return [path for path in snap.public if path.endswith(("feed.xml", "atom.xml", "feed.json"))]


# -- 1. a failed source stays failed until a feed is read again --------------------------------


def test_update_exits_1_while_sources_fail(world: World) -> None:
    for result in (world.first.result, world.second.result):
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("file", NOT_FEEDS)
def test_not_a_feed_is_named_so(world: World, file: str) -> None:
    state = world.first.sources[SOURCES[file]]
    assert state["status"] == "error"
    assert state["error"].startswith(expected(file)["error_starts_with"]), state["error"]
    assert state["consecutive_errors"] == 1


@pytest.mark.parametrize("file", NOT_FEEDS)
def test_failed_source_stays_failed_while_unchanged(world: World, file: str) -> None:
    """Pass 2 finds the same answer (a 304 if the client sends the ETag it was given, else
    the same body): still no feed has been read, so the source is still failing, with the
    same error and one more in a row."""
    before, after = world.first.sources[SOURCES[file]], world.second.sources[SOURCES[file]]
    assert (after["status"], after["error"], after["consecutive_errors"]) == (
        "error",
        before["error"],
        2,
    )


# -- 2. entries of one source are never hidden because they share a link ----------------------


@pytest.mark.parametrize(
    "path",
    [
        "source/podcast/feed.xml",
        "source/podcast/atom.xml",
        "feed.xml",
        "atom.xml",
        "category/podcasts/feed.xml",
    ],
)
def test_episodes_sharing_a_link_are_all_published(world: World, path: str) -> None:
    episodes = set(expected("podcast.rss")["titles"])
    for snap in (world.first, world.second):
        titles = [title for title in item_titles(snap.public[path]) if title in episodes]
        assert sorted(titles) == sorted(episodes), f"{len(titles)} of 30 episodes in {path}"


def test_episodes_sharing_a_link_are_all_in_the_source_json_feed(world: World) -> None:
    for snap in (world.first, world.second):
        assert len(json.loads(snap.public["source/podcast/feed.json"])["items"]) == 30


# -- 3. the same article through two sources is one document ----------------------------------

SHARED = expected("newspaper.rss")["shared_with_mirror"]


@pytest.mark.parametrize("title", SHARED)
def test_shared_article_is_one_document(world: World, title: str) -> None:
    for snap in (world.first, world.second):
        holding = [name for name, text in snap.documents.items() if title in text]
        assert len(holding) == 1, holding


@pytest.mark.parametrize("title", SHARED)
def test_shared_article_is_attributed_to_the_first_source_by_name(world: World, title: str) -> None:
    attributions = []
    for snap in (world.first, world.second):
        matters = [front_matter(text) for text in snap.documents.values() if title in text]
        attributions.append([matter["categories"] for matter in matters])
    # a-mirror sorts before newspaper, on both passes, whichever was polled first.
    assert attributions == [[CATEGORIES["a-mirror"]], [CATEGORIES["a-mirror"]]]


@pytest.mark.parametrize("title", SHARED)
def test_shared_article_is_once_in_the_merged_feed(world: World, title: str) -> None:
    for snap in (world.first, world.second):
        for path in ("feed.xml", "atom.xml"):
            assert item_titles(snap.public[path]).count(title) == 1, path


# -- 4. identity does not depend on the feed's URL --------------------------------------------


def test_moved_feeds_were_fetched_at_their_new_address(world: World) -> None:
    """The setup of the tests below: pass 2 met the 301s and read the moved feeds' bodies."""
    for file in MOVED:
        assert (f"/real/{file}", 301) in world.requests_of_pass_2
        assert (f"/moved/{file}", 200) in world.requests_of_pass_2


@pytest.mark.parametrize("file", MOVED)
def test_moved_feed_adds_no_entry(world: World, file: str) -> None:
    name = SOURCES[file]
    assert world.first.identities[name], name
    assert sorted(world.second.identities[name]) == sorted(world.first.identities[name])
    assert world.second.sources[name]["status"] in ("ok", "warning")


def test_moved_feeds_add_no_document_and_no_merged_item(world: World) -> None:
    added = sorted(set(world.second.documents) - set(world.first.documents))
    assert added == []
    assert len(world.second.documents) == len(world.first.documents)
    for path in ("feed.xml", "atom.xml", "feed.json"):
        before, after = item_ids(world.first.public[path]), item_ids(world.second.public[path])
        assert len(after) == len(before), path
        assert sorted(set(after) - set(before)) == [], path


def test_reddit_identities_are_the_ids_as_written(world: World) -> None:
    ids = expected("reddit.atom")["ids"]
    assert all(not i.startswith("http") for i in ids)
    assert sorted(world.first.identities["reddit-atom"]) == sorted(ids)
    assert sorted(world.second.identities["reddit-atom"]) == sorted(ids)


# -- 5. JSON Feeds are read --------------------------------------------------------------------


@pytest.mark.parametrize("file", ["jsonfeed10.json", "jsonfeed11.json"])
def test_json_feed_is_read(world: World, file: str) -> None:
    name = SOURCES[file]
    state = world.first.sources[name]
    assert state["status"] == "ok", state["error"]
    assert len(world.first.identities.get(name, [])) == expected(file)["entries"]


# -- 6. every URL published is valid -----------------------------------------------------------


def test_no_published_url_holds_a_space(world: World) -> None:
    for snap in (world.first, world.second):
        files = feed_files(snap)
        assert "feed.xml" in files and "atom.xml" in files and "feed.json" in files
        spaced = [
            (path, url)
            for path in files
            for url in published_urls(path, snap.public[path])
            if re.search(r"\s", url)
        ]
        assert spaced == []


@pytest.mark.parametrize("path", ["feed.xml", "atom.xml", "feed.json", "source/newspaper/feed.xml"])
def test_spaced_link_is_published_percent_encoded(world: World, path: str) -> None:
    (encoded,) = expected("newspaper.rss")["links_needing_encoding"].values()
    for snap in (world.first, world.second):
        assert encoded in set(published_urls(path, snap.public[path]))


# -- 7. a Latin-1 feed with no declaration -----------------------------------------------------


def test_latin1_titles_read_right(world: World) -> None:
    titles = {front_matter(text)["title"] for text in world.first.documents.values()}
    missing = [t for t in expected("latin1-nodecl.rss")["titles"] if t not in titles]
    assert missing == []


def test_latin1_warning_does_not_claim_a_utf8_declaration(world: World) -> None:
    state = world.first.sources["latin1-nodecl"]
    assert state["status"] in ("ok", "warning")
    warning = (state["error"] or "").lower()
    if "encoding" in warning:
        assert "declared as utf-8" not in warning, warning


# -- 8. a pass with nothing new rewrites nothing -----------------------------------------------


def test_second_pass_rewrites_nothing(world: World) -> None:
    """Every file of documents/ and public/ keeps its mtime on pass 2, except those that name
    a moved source's old address. A 301 moves the source: published feeds name each item's
    origin by its source's current URL (RSS <source url>, Atom <source>, JSON `_source`), so
    the feeds carrying a moved source's items (merged, its categories', its own) may change
    once to name the new address. Nothing else depends on a source's URL: documents do not
    name it, the moved feeds' entries are the same, and every other source's answer is the
    same as on pass 1; so every other file, every document included, must not be written
    again, and no file may appear or disappear."""
    old = [world.urls[file].encode() for file in MOVED]
    may_change = {
        f"public/{path}"
        for path, data in world.first.public.items()
        if any(url in data for url in old)
    }
    assert not any(name.startswith("documents/") for name in may_change)
    before = {k: v for k, v in world.first.mtimes.items() if k not in may_change}
    after = {k: v for k, v in world.second.mtimes.items() if k not in may_change}
    changes = {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "rewritten": sorted(k for k in set(before) & set(after) if after[k] != before[k]),
    }
    assert changes == {"added": [], "removed": [], "rewritten": []}


# -- 9. documents are valid front matter in the seed's order ---------------------------------


def test_documents_front_matter_in_seed_order(world: World) -> None:
    order = seed_keys()
    assert set(order) >= REQUIRED_KEYS
    for snap in (world.first, world.second):
        assert snap.documents
        for name, text in snap.documents.items():
            assert text.startswith("---\n"), name
            matter = front_matter(text)
            keys = list(matter)
            assert keys == [key for key in order if key in matter], (name, keys)
            assert set(keys) >= REQUIRED_KEYS, (name, keys)
            assert ("headimg" in matter) == ("thumbnail" in matter), name
            assert isinstance(matter["title"], str) and matter["title"].strip(), name
            assert isinstance(matter["categories"], list), name
            assert all(isinstance(c, str) for c in matter["categories"]), name
            assert parsedate_to_datetime(str(matter["date"])).tzinfo is not None, name


# -- the corpus as its publishers wrote it ----------------------------------------------------


@pytest.mark.parametrize("file", FEEDS)
def test_feed_read_as_published(world: World, file: str) -> None:
    facts, name = expected(file), SOURCES[file]
    state = world.first.sources[name]
    assert state["status"] in ("ok", "warning"), state["error"]
    titles = world.first.titles.get(name, [])
    assert len(titles) == facts["entries"]
    assert sorted(titles) == sorted(facts["titles"])


@pytest.mark.parametrize("file", FEEDS)
def test_identities_are_the_publishers_ids(world: World, file: str) -> None:
    """README: an entry is stored per (source, entry id): the feed's id/guid, else its link."""
    name = SOURCES[file]
    assert sorted(world.first.identities.get(name, [])) == sorted(expected(file)["ids"])
