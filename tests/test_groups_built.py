"""Group feeds (per category, per source) and the merged feeds are rebuilt only when what
they are made from moved, also across processes: a fresh Pipeline must not rebuild every
unchanged feed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from feedworld import rsshub_feed, rsshub_item

from aggregator.config.settings import Config, load_config
from aggregator.outputs import feed_groups, publisher
from aggregator.poll.pipeline import Pipeline
from aggregator.store.database import Store


def run_pass(config: Config) -> None:
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store, parse_processes=0)
    try:
        pipeline.update_all()
    finally:
        pipeline.close()
        store.close()


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders of the group feeds built, in order."""
    folders: list[str] = []
    publish_group: Callable = feed_groups.publish_group

    def counting(public, info, group, entries, sources) -> bool:  # type: ignore[no-untyped-def]
        folders.append(group.folder)
        return publish_group(public, info, group, entries, sources)

    monkeypatch.setattr(feed_groups, "publish_group", counting)
    return folders


@pytest.fixture
def merged_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many entries each build of the merged RSS and Atom feeds had."""
    sizes: list[int] = []
    publish_feeds: Callable = publisher.publish_feeds

    def counting(public, info, entries, sources, fragments) -> bool:  # type: ignore[no-untyped-def]
        sizes.append(len(entries))
        return publish_feeds(public, info, entries, sources, fragments)

    monkeypatch.setattr(publisher, "publish_feeds", counting)
    return sizes


def test_a_fresh_pipeline_rebuilds_the_merged_feeds_only_when_they_moved(
    feed_server, make_config, merged_built
) -> None:
    feed_server.serve("/a", rsshub_feed([rsshub_item(i) for i in range(3)]))
    sources = [{"name": "a", "url": feed_server.url("/a")}]
    config = make_config(sources)
    public = config.paths.public
    run_pass(config)
    assert merged_built == [3]
    rss = (public / "feed.xml").read_bytes()

    run_pass(config)  # nothing moved: not even built to be compared
    assert merged_built == [3]

    (public / "feed.json").unlink()  # a file lost: all built again
    run_pass(config)
    assert merged_built == [3, 3]
    assert (public / "feed.json").is_file() and (public / "feed.xml").read_bytes() == rss

    feed_server.serve("/a", rsshub_feed([rsshub_item(i) for i in range(4)]))
    run_pass(config)
    assert merged_built == [3, 3, 4]

    run_pass(make_config(sources, feed={"title": "Another title"}))  # a setting it shows
    assert merged_built == [3, 3, 4, 4]
    assert b"Another title" in (public / "feed.xml").read_bytes()


def test_a_fresh_pipeline_rebuilds_only_what_moved(feed_server, make_config, built) -> None:
    items = [rsshub_item(i) for i in range(3)]
    feed_server.serve("/a", rsshub_feed(items))
    feed_server.serve("/b", rsshub_feed([rsshub_item(10 + i) for i in range(2)]))
    sources = [
        {"name": "a", "url": feed_server.url("/a"), "categories": ["news"]},
        {"name": "b", "url": feed_server.url("/b"), "categories": ["news"]},
    ]
    config = make_config(sources)
    run_pass(config)
    assert sorted(built) == ["category/news", "source/a", "source/b"]

    built.clear()
    run_pass(config)  # a new process, nothing changed: nothing rebuilt
    assert built == []

    feed_server.serve("/a", rsshub_feed([rsshub_item(7), *items]))
    built.clear()
    run_pass(config)
    assert sorted(built) == ["category/news", "source/a"]

    sources[1]["title"] = "Another title"  # a setting the feed shows
    built.clear()
    run_pass(make_config(sources))
    assert sorted(built) == ["category/news", "source/b"]


def test_a_lost_feed_folder_is_rebuilt(feed_server, make_config, built) -> None:
    feed_server.serve("/a", rsshub_feed([rsshub_item(1)]))
    config = make_config([{"name": "a", "url": feed_server.url("/a")}])
    run_pass(config)
    for path in (config.paths.public / "source" / "a").iterdir():
        path.unlink()
    (config.paths.public / "source" / "a").rmdir()
    built.clear()
    run_pass(config)
    assert "source/a" in built
    assert (config.paths.public / "source" / "a").is_dir()


def test_group_signatures_move_with_their_sources_entries_only(feed_server, make_config) -> None:
    items = [rsshub_item(i) for i in range(3)]
    feed_server.serve("/a", rsshub_feed(items))
    feed_server.serve("/b", rsshub_feed([rsshub_item(10)]))
    config = make_config(
        [{"name": "a", "url": feed_server.url("/a")}, {"name": "b", "url": feed_server.url("/b")}]
    )
    run_pass(config)
    store = Store(config.paths.database)
    groups = (["a"], ["b"], ["a", "b"], ["b", "nobody"], ["nobody"], [])

    def signatures() -> list[str]:
        seen = store.entries_signatures()
        return [feed_groups.group_signature(seen, group) for group in groups]

    def moved(before: list[str], after: list[str]) -> list[bool]:
        return [old != new for old, new in zip(before, after, strict=True)]

    with_a = [True, False, True, False, False, False]

    try:
        first = signatures()
        assert len(set(first)) == len(groups)
        # Documents written again and a poll's new state do not move any group.
        store.mark_documents(store.owed_documents().done[:1])
        store.save_state(store.source_state("a"))
        assert signatures() == first
        # A changed entry of a moves a's groups only; so does pruning one of its entries.
        items[1] = rsshub_item(1, body="<p>更正</p>")
        feed_server.serve("/a", rsshub_feed(items))
        run_pass(config)
        changed = signatures()
        assert moved(first, changed) == with_a
        assert store.prune_source("a", 2)
        pruned = signatures()
        assert moved(changed, pruned) == with_a
        # b deleted and made again, still configured: its groups move although it is back
        # where a source without entries starts.
        store.delete_source("b")
        store.sync_sources([("b", feed_server.url("/b"))])
        assert moved(pruned, signatures()) == [False, True, True, True, False, False]
    finally:
        store.close()


def test_one_pipeline_rebuilds_only_the_groups_of_sources_that_moved(
    feed_server, make_config, built
) -> None:
    """The daemon publishes after every burst of polls with the same publisher: a pass
    looks at the groups of the sources whose entries moved since the last one, and only
    those are built again."""
    feed_server.serve("/a", rsshub_feed([rsshub_item(1)]))
    feed_server.serve("/b", rsshub_feed([rsshub_item(10)]))
    sources = [
        {"name": "a", "url": feed_server.url("/a"), "categories": ["news"]},
        {"name": "b", "url": feed_server.url("/b"), "categories": ["sport"]},
    ]
    config = make_config(sources)
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store, parse_processes=0)
    try:
        pipeline.update_all()
        assert sorted(built) == ["category/news", "category/sport", "source/a", "source/b"]
        built.clear()
        pipeline.update_all()
        assert built == []
        feed_server.serve("/b", rsshub_feed([rsshub_item(11), rsshub_item(10)]))
        pipeline.update_all()
        assert sorted(built) == ["category/sport", "source/b"]
        built.clear()
        pipeline.update_all()
        assert built == []
    finally:
        pipeline.close()
        store.close()


def test_documents_and_group_feeds_written_in_the_parser_processes_are_those_written_here(
    feed_server, tmp_path
) -> None:
    """A cold pass hands its documents and group feeds to the parser processes, which read
    their entries from the database themselves (store/reader.py): every file is what this
    process writes from the entries the store reads, one article once per category among
    its sources."""
    count = publisher.GROUPS_IN_WORKERS + 4
    # When a feed says it was updated: the time its newest entry was first seen, today.
    today = datetime.now(UTC)
    iso, rfc822 = rf"{today:%Y-%m-%d}T[0-9:.]+(?:\+00:00|Z)", rf"{today:%a, %d %b %Y} [0-9:]+ \S+"
    built_today = re.compile(f"{iso}|{rfc822}".encode())
    shared = "https://example.com/one-story-everyone-carries"
    sources = []
    for index in range(count):
        items = [rsshub_item(100 * index + i) for i in range(9)]
        items.append(rsshub_item(90_000 + index, link=shared, date=today))
        feed_server.serve(f"/f{index}", rsshub_feed(items, title=f"源 {index}"))
        category = ["news", "sport"][index % 2]
        sources.append({"name": f"s{index}", "url": feed_server.url(f"/f{index}"),
                        "categories": [category, "all"]})  # fmt: skip

    def written(folder: Path, parse_processes: int) -> dict[str, bytes]:
        path = folder / "config.yaml"
        data = {"database": "data/test.db", "sources": sources}
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        config = load_config(path)
        store = Store(config.paths.database)
        pipeline = Pipeline(config, store, parse_processes=parse_processes)
        try:
            pipeline.update_all()
        finally:
            pipeline.close()
            store.close()
        public, documents = config.paths.public, config.paths.documents
        return {
            str(file.relative_to(folder)): built_today.sub(b"(today)", file.read_bytes())
            for file in sorted([*public.rglob("*"), *documents.rglob("*")])
            if file.is_file() and file.parent != public
        }

    (tmp_path / "pool").mkdir()
    (tmp_path / "here").mkdir()
    in_workers = written(tmp_path / "pool", parse_processes=2)
    here = written(tmp_path / "here", parse_processes=0)
    feeds = [name for name in here if name.startswith("public/")]
    assert len(feeds) == 3 * (count + 3)  # three files per source and per category
    # A document per entry (more than a job's share), but one for the article they share.
    assert len(here) - len(feeds) == 9 * count + 1 > publisher.DOCUMENT_CHUNK
    assert in_workers == here
    everyone = here["public/category/all/feed.xml"].decode()
    assert everyone.count(shared) == 1
    assert here["public/source/s5/feed.xml"].count(shared.encode()) == 1
