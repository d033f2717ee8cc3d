"""Per-source filters (include / exclude regexes) and the `keep` cap, from config to disk."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from feedworld import rsshub_feed, rsshub_item
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config.settings import load_config
from aggregator.errors import ConfigError
from aggregator.models import Entry, Source
from aggregator.sources.filters import compile_filter, keeps, select_entries

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


def test_a_backtracking_pattern_takes_linear_time() -> None:
    """`(a+)+$` held Python's `re` (and the daemon's every thread, /healthz too) for 12 s on
    27 `a`s and a `!`, doubling with each letter (issue 13.3). Filters run on RE2: 100,000
    letters in the title, the text and a category take milliseconds. In a subprocess, so
    that an engine that backtracks fails the test at its timeout instead of hanging it."""
    script = (
        "import time\n"
        "from datetime import UTC, datetime\n"
        "from aggregator.sources.filters import keeps\n"
        "from aggregator.models import Entry\n"
        "text = 'a' * 100_000 + '!'\n"
        "entry = Entry('s', text, None, text, None, datetime.now(UTC), None, text, None, (text,))\n"
        "started = time.perf_counter()\n"
        "assert keeps(entry, ['(a+)+$', '(x+x+)+y', '^(a|aa)+$'], []) is False\n"
        "assert keeps(entry, [], ['(a|a)*!$']) is False\n"
        "print(time.perf_counter() - started)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 1.0


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("(?i)sponsored", "SPONSORED post", True),
        ("(?i)ärger", "ÄRGER im Büro", True),
        ("乌克兰|Ukraine", "俄罗斯与乌克兰", True),
        ("^广告", "广告: 买", True),
        ("^广告", "不是广告", False),
        (r"\d+ 人", "٣ 人", True),  # Arabic-Indic digits are digits, as in Python
        (r"^\w+$", "半岛电视台", True),  # Chinese letters are word characters
        (r"^\W+$", "!? —", True),
        (r"新闻\s标题", "新闻\u3000标题", True),  # the ideographic space is a space
        (r"\S+\s\S+", "a\u00a0b", True),
        (r"^\D+$", "abc٣", False),
        (r"[\w-]+-\d", "乌克兰-3", True),
        (r"[\u4e00-\u9fff]{2}", "中文", True),
        (r"\N{IDEOGRAPHIC FULL STOP}$", "结束。", True),
        (r"end\Z", "the end", True),
        (r"\bAI\b", "New AI model", True),
        (r"\bAI\b", "MAIL", False),
    ],
    ids=["ignore-case", "ignore-case-umlaut", "chinese", "anchored", "anchored-not",
         "unicode-digit", "unicode-word", "non-word", "ideographic-space", "non-space",
         "non-digit", "word-in-brackets", "u-escape-range", "named-character", "end-Z",
         "word-boundary", "word-boundary-not"],
)  # fmt: skip
def test_patterns_mean_what_they_mean_in_python(pattern: str, text: str, found: bool) -> None:
    assert keeps(entry(text), [pattern], []) is found
    assert (re.search(pattern, text) is not None) is found  # the documented meaning


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "    include: ['(\\w)\\1']\n",
            r"sources[0].include (line 4): '(\\w)\\1' is not a valid regular expression: "
            r"invalid escape sequence: \1 (backreferences are not supported: filters run in "
            "linear time)",
        ),
        (
            "    exclude: ['x', 'Trump(?! Tower)']\n",
            "sources[0].exclude (line 4): 'Trump(?! Tower)' is not a valid regular expression: "
            "invalid perl operator: (?! (lookaround is not supported",
        ),
        (
            "    include: ['\\w{1000}']\n",
            r"sources[0].include (line 4): '\\w{1000}' is not a valid regular expression: "
            "pattern too large - compile failed",
        ),
        (
            "    include: ['[^\\W\\d]']\n",
            r"sources[0].include (line 4): '[^\\W\\d]' is not a valid regular expression: "
            r"\W inside [...] is not supported",
        ),
    ],
    ids=["backreference", "lookahead", "too-large", "negated-class-in-brackets"],
)
def test_patterns_the_linear_engine_cannot_run_are_config_errors(
    tmp_path: Path, setting: str, message: str
) -> None:
    path = write_config(tmp_path, setting)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: {message}"), str(error.value)


# Patterns built from what both engines read alike; texts without line breaks, as the
# fields filters see are (titles and plain text have their whitespace folded).
ATOMS = ["a", "b", "乌", "克", "1", "٣", " ", "\u3000", ".", r"\d", r"\w", r"\s", r"\D",
         r"\W", r"\S", "[ab]", "[^a]", r"[\w-]", r"[\d\s]", r"\u4e4c"]  # fmt: skip
TEXT = st.text(alphabet="ab乌克1٣ \u3000-!é", max_size=12)


@st.composite
def patterns(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        if depth < 2 and draw(st.booleans()):
            inner = draw(patterns(depth + 1))
            part = f"(?:{inner}|{draw(patterns(depth + 1))})" if draw(st.booleans()) else inner
            part = f"({part})"
        else:
            part = draw(st.sampled_from(ATOMS))
        parts.append(part + draw(st.sampled_from(["", "", "*", "+", "?", "{1,2}"])))
    anchors = draw(st.sampled_from([("", ""), ("^", ""), ("", "$"), ("^", "$")]))
    return anchors[0] + "".join(parts) + anchors[1]


@settings(max_examples=400, deadline=None)
@given(pattern=patterns(), text=TEXT)
def test_filters_match_as_python_re_does(pattern: str, text: str) -> None:
    expected = re.search(pattern, text) is not None
    assert (compile_filter(pattern).search(text.encode()) is not None) is expected
