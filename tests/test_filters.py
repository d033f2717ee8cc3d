"""Per-source filters (include / exclude regexes) and the `keep` cap, from config to disk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from feedworld import rsshub_feed, rsshub_item

from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.filters import keeps, select_entries
from aggregator.models import Entry, Source

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def entry(title: str, content: str = "", categories: tuple[str, ...] = (), days: int = 0):
    published = NOW - timedelta(days=days)
    return Entry("s", title, None, title, None, published, None, content, None, categories)


def test_patterns_search_title_text_and_categories() -> None:
    sport = entry("Match report", "<p>The <b>final</b> score</p>", ("Sport",))
    assert keeps(sport, ["report"], [])
    assert keeps(sport, ["The final score"], [])  # the text, without the <b> in between
    assert keeps(sport, ["^Sport$"], [])
    assert keeps(sport, ["b>"], []) is False  # tags are not searched
    assert keeps(sport, ["sport"], []) is False  # case-sensitive...
    assert keeps(sport, ["(?i)sport"], [])  # ...unless asked
    assert keeps(sport, [], ["Sport"]) is False
    assert keeps(sport, ["report"], ["score"]) is False  # exclude wins over include
    assert keeps(entry("乌克兰局势"), ["乌克兰"], [])


def test_select_applies_filters_then_the_cap_in_feed_order() -> None:
    entries = [entry(f"news {i}", days=i) for i in (3, 0, 4, 1, 2)]
    entries.append(entry("advert", days=0))
    source = Source("s", "http://x/", include=("news",), keep=3)
    kept, dropped = select_entries(entries, source, NOW)
    assert [e.title for e in kept] == ["news 0", "news 1", "news 2"]
    assert dropped == 3
    plain = Source("s", "http://x/")
    assert select_entries(entries, plain, NOW) == (tuple(entries), 0)


def write_config(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"sources:\n  - name: a\n    url: http://127.0.0.1/\n{source}")
    return path


def test_filters_and_keep_are_read_from_config(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path, "    include: 'Ukraine|乌克兰'\n    exclude: [广告, '(?i)sponsored']\n"
        )
    )
    (source,) = config.sources
    assert source.include == ("Ukraine|乌克兰",)
    assert source.exclude == ("广告", "(?i)sponsored")
    assert source.keep is None
    assert load_config(write_config(tmp_path, "    keep: 500\n")).sources[0].keep == 500


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("    include: ['(unclosed']\n", "sources[0].include (line 4): '(unclosed' is not a valid"),
        ("    exclude: {title: x}\n", "sources[0].exclude (line 4): expected a list"),
        ("    keep: 0\n", "sources[0].keep (line 4): expected a positive whole number"),
        ("    keep: many\n", "sources[0].keep (line 4): expected a positive whole number"),
    ],
)
def test_bad_filter_settings_are_config_errors(tmp_path: Path, setting: str, message: str):
    with pytest.raises(ConfigError) as error:
        load_config(write_config(tmp_path, setting))
    assert message in str(error.value)


def test_filtered_entries_are_never_stored(feed_server, make_config, pipeline_for) -> None:
    items = [rsshub_item(i, title=t) for i, t in enumerate(["乌克兰局势", "广告: 买", "体育"])]
    feed_server.serve("/news", rsshub_feed(items))
    source = {"name": "news", "url": feed_server.url("/news"), "exclude": ["^广告"]}
    config = make_config([source])
    (result,) = pipeline_for(config).update_all()
    assert result.new == 2
    rss = feedparser.parse((config.paths.public / "feed.xml").read_bytes())
    assert [e.title for e in rss.entries] == ["乌克兰局势", "体育"]
    assert len(list(config.paths.documents.glob("*.md"))) == 2


def test_keep_prunes_the_oldest_entries_and_their_documents(
    feed_server, make_config, pipeline_for
) -> None:
    feed = feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(5)]))
    config = make_config([{"name": "news", "url": feed_server.url("/news"), "keep": 3}])
    pipeline = pipeline_for(config)
    pipeline.update_all()
    docs = sorted(p.name for p in config.paths.documents.glob("*.md"))
    assert len(docs) == 3  # only the 3 newest of the feed were stored at all
    assert pipeline.store.count_entries() == 3

    newer = [
        rsshub_item(100 + i, title=f"更新 {i}", date=datetime(2022, 2, 1 + i, tzinfo=UTC))
        for i in range(2)
    ]
    feed.body = rsshub_feed(newer + [rsshub_item(i) for i in range(5)])
    (result,) = pipeline.update_all()
    assert result.new == 2
    assert pipeline.store.count_entries() == 3
    titles = [e.title for e in feedparser.parse(config.paths.public / "feed.xml").entries]
    assert titles == ["更新 1", "更新 0", "新闻标题 第0条"]
    now_docs = sorted(p.name for p in config.paths.documents.glob("*.md"))
    assert len(now_docs) == 3
    assert len(set(docs) & set(now_docs)) == 1  # the two oldest documents are gone
    assert [s.entry.title for s in pipeline.store.search_entries("新闻标题")] == ["新闻标题 第0条"]

    (again,) = pipeline.update_all()  # the same feed again: nothing re-stored and re-pruned
    assert again.new == 0
