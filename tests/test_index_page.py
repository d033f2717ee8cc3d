"""The status page: every published feed linked and auto-discoverable, each source's state,
the latest entries, and nothing a feed sent left unescaped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from feedworld import rsshub_feed, rsshub_item

from aggregator.config.settings import Config
from aggregator.models import Entry, Publishing, Source, SourceStatus, StoredEntry
from aggregator.outputs.feed_groups import feed_groups, published_feeds
from aggregator.outputs.feeds import FeedInfo
from aggregator.poll.pipeline import Pipeline
from aggregator.service.index_page import index_page_for, render_index
from aggregator.service.ui_text import LANGUAGES, TEXTS, LocalizedPage, negotiate
from aggregator.sources.discover import feed_links as advertised_feeds
from aggregator.store.database import Store
from aggregator.store.rows import SourceState


class Page(HTMLParser):
    """The tags of a page, to check it parses and to read its links."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.anchors: list[str | None] = []
        self.scripts = 0
        self.feed(data.decode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))
        elif tag == "a":
            self.anchors.append(dict(attrs).get("href"))
        elif tag == "script":
            self.scripts += 1


@pytest.fixture
def passed(feed_server, make_config) -> Iterator[tuple[Config, Store]]:
    feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
    feed_server.serve("/broken", b"nope", status=500)
    config = make_config(
        [
            {"name": "news", "url": feed_server.url("/news"), "categories": ["新闻", "World"]},
            {"name": "broken", "url": feed_server.url("/broken"), "title": "Broken <b>"},
            {"name": "paused", "url": feed_server.url("/paused"), "enabled": False},
        ]
    )
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store)
    pipeline.update_all()
    pipeline.close()
    yield config, store
    store.close()


def test_page_links_every_published_feed(passed: tuple[Config, Store]) -> None:
    config, store = passed
    page = index_page_for(config, store)
    parsed = Page(page)
    alternates = [link for link in parsed.links if link.get("rel") == "alternate"]
    # Advertised in the head: merged + 2 categories, three formats each (the source feeds
    # would be thousands of tags for a large config).
    assert len(alternates) == 3 * (1 + 2)
    assert not [link for link in alternates if "source/" in (link["href"] or "")]
    for link in alternates:
        href = link["href"]
        assert href and href in parsed.anchors
    # Linked in the body: every feed publish() wrote, the 3 sources' too.
    feeds = [href for href in parsed.anchors if href and href.endswith((".xml", ".json"))]
    assert len(feeds) == 3 * (1 + 2 + 3)
    for href in feeds:
        path = href.replace("%E6%96%B0%E9%97%BB", "新闻")
        assert (config.paths.public / path).is_file(), href  # published, so servable
    assert {link["type"] for link in alternates} == {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
    }
    # A reader's autodiscovery (ours, as `add` uses it) finds the feeds, merged first.
    found = advertised_feeds(page, "http://127.0.0.1:8080/")
    assert [f.url for f in found[:3]] == [
        "http://127.0.0.1:8080/feed.xml",
        "http://127.0.0.1:8080/atom.xml",
        "http://127.0.0.1:8080/feed.json",
    ]
    assert found[3].url == "http://127.0.0.1:8080/category/%E6%96%B0%E9%97%BB/feed.xml"


def test_page_shows_sources_and_latest_entries(passed: tuple[Config, Store]) -> None:
    config, store = passed
    text = index_page_for(config, store).decode("utf-8")
    assert "<td>ok</td>" in text and "<td>3</td>" in text
    assert '<td class="error">error</td>' in text and "HTTP 500" in text
    assert "<td>disabled</td>" in text
    assert "Broken &lt;b&gt;" in text and "Broken <b>" not in text
    assert text.count("新闻标题 第") == 3
    assert text.index("新闻标题 第0条") < text.index("新闻标题 第2条")  # newest first


NASTY = '"><script>alert(1)</script>'


def nasty_page(*extra: object) -> bytes:
    """The page when a feed (and a publishing failure) says hostile things everywhere."""
    entry = Entry("s", "1", 'https://x.example/?a=1&b="2"', NASTY, None, None, None, "", None)
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    stored = StoredEntry(1, entry, moment, moment, "x.md", source_title=NASTY)
    source = Source("s", "https://x.example/feed", categories=(NASTY,))
    state = SourceState("s", source.url, status="error", error=NASTY, entries=1)
    links = published_feeds(FeedInfo(NASTY, "http://h/", "d"), feed_groups([source]))
    return render_index(NASTY, links, [source], {"s": state}, [stored], *extra)


def test_whatever_a_feed_sends_is_escaped() -> None:
    page = nasty_page()
    parsed = Page(page)
    assert parsed.scripts == 0
    assert 'https://x.example/?a=1&b="2"' in parsed.anchors
    assert b"<script>" not in page


def test_an_empty_database_gives_a_page(tmp_path: Path, make_config) -> None:
    config = make_config([{"name": "a", "url": "http://127.0.0.1:9/"}])
    store = Store(config.paths.database)
    try:
        text = index_page_for(config, store).decode("utf-8")
    finally:
        store.close()
    assert "nothing stored yet" in text
    assert "<td>new</td>" in text


NEGOTIATION_CASES = [
    # id, Accept-Language -> the page's language
    ("no header", None, "en"),
    ("empty", "", "en"),
    ("English", "en", "en"),
    ("English of a region", "en-GB", "en"),
    ("Chinese", "zh", "zh-Hans"),
    ("China", "zh-CN", "zh-Hans"),
    ("Singapore", "zh-SG", "zh-Hans"),
    ("Simplified script", "zh-Hans", "zh-Hans"),
    ("script and region", "zh-Hans-CN", "zh-Hans"),
    ("Taiwan", "zh-TW", "zh-Hant"),
    ("Hong Kong", "zh-HK", "zh-Hant"),
    ("Macao", "zh-MO", "zh-Hant"),
    ("Traditional script", "zh-Hant", "zh-Hant"),
    ("the script beats the region", "zh-Hans-TW", "zh-Hans"),
    ("case", "ZH-tw", "zh-Hant"),
    ("a Chinese browser", "zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
    ("an English browser knowing Chinese", "en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    ("q decides, not order", "en;q=0.5, zh-CN", "zh-Hans"),
    ("equal q: the first named", "zh-TW, en", "zh-Hant"),
    ("equal q, English first", "en, zh", "en"),
    ("Chinese of no script: Simplified", "zh-Latn", "zh-Hans"),
    ("only languages the page lacks", "fr-FR, de;q=0.5", "en"),
    ("lacking, then Chinese", "fr, zh-TW;q=0.2", "zh-Hant"),
    ("star", "*", "en"),
    ("star after one lacking", "fr, *;q=0.5", "en"),
    ("star, English refused", "en;q=0, *", "zh-Hans"),
    ("Chinese refused, star", "zh;q=0, *", "en"),
    ("the specific range wins over the general", "zh-TW;q=0, zh", "zh-Hans"),
    ("zh refused but zh-TW wanted", "zh;q=0, zh-TW", "zh-Hant"),
    ("everything refused", "en;q=0, zh;q=0", "en"),
    ("q=0.000 refuses", "zh;q=0.000, en;q=0.1", "en"),
    ("a bad q refuses its range", "zh;q=high, en;q=0.1", "en"),
    ("q over 1 refuses", "zh;q=2, en;q=0.1", "en"),
    ("spaces and empty members", " , zh-CN ; q=0.7 ,, en;q=0.6", "zh-Hans"),
    ("not a language range", "zh_CN, <script>", "en"),
    ("other parameters", "zh-CN;foo=bar", "zh-Hans"),
]


@pytest.mark.parametrize(
    ("header", "expected"),
    [case[1:] for case in NEGOTIATION_CASES],
    ids=[case[0] for case in NEGOTIATION_CASES],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def sample_page(language: str | None) -> str:
    """A page with a source of each status; `language` None: the default."""
    moment = datetime(2024, 3, 5, 6, 7, tzinfo=UTC)
    entry = Entry("s", "1", "https://x.example/1", "", None, None, None, "", None)
    stored = StoredEntry(1, entry, moment, moment, "x.md")
    sources = [
        Source(name, f"https://x.example/{name}", enabled=name != "off")
        for name in ("s", "bad", "gone", "fresh", "warn", "off")
    ]
    states = {
        "s": SourceState("s", "https://x.example/s", status="ok", entries=1, last_fetch=moment),
        "bad": SourceState("bad", "https://x.example/bad", status="error", error="HTTP 500"),
        "gone": SourceState("gone", "https://x.example/gone", status="gone"),
        "warn": SourceState("warn", "https://x.example/warn", status="warning"),
    }
    links = published_feeds(FeedInfo("Feeds", "http://h/", "d"), feed_groups(sources))
    publishing = Publishing(None, 2, "disk full")
    if language is None:
        return render_index("Feeds", links, sources, states, [stored], publishing).decode()
    return render_index("Feeds", links, sources, states, [stored], publishing, language).decode(
        "utf-8"
    )


def cells(page: str, status_column: int) -> list[str]:
    """One column of the sources table, as text."""
    table = page.split('<table class="sources">')[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]
    return [row[status_column] for row in rows]


@pytest.mark.parametrize(
    ("language", "words", "statuses", "times"),
    [
        (
            "en",
            ["<h2>Feeds</h2>", "<h2>Sources</h2>", "<h2>Latest entries</h2>", "(untitled)",
             "<th>Last fetch</th>", "All sources, merged", "2 documents cannot be written",
             'content:"fetched "'],
            ["ok", "error", "gone", "new", "warning", "disabled"],
            ["2024-03-05 06:07 UTC", "never"],
        ),
        (
            "zh-Hans",
            ["<h2>订阅源</h2>", "<h2>来源</h2>", "<h2>最新条目</h2>", "（无标题）",
             "<th>上次抓取</th>", "全部来源（合并）", "2 篇文档无法写入", 'content:"抓取于 "'],
            ["正常", "错误", "已失效", "新来源", "警告", "已停用"],
            ["2024年3月5日 06:07 UTC", "从未"],
        ),
        (
            "zh-Hant",
            ["<h2>訂閱源</h2>", "<h2>來源</h2>", "<h2>最新條目</h2>", "（無標題）",
             "<th>上次抓取</th>", "全部來源（合併）", "2 篇文件無法寫入", 'content:"抓取於 "'],
            ["正常", "錯誤", "已失效", "新來源", "警告", "已停用"],
            ["2024年3月5日 06:07 UTC", "從未"],
        ),
    ],
    ids=["English", "Simplified", "Traditional"],
)  # fmt: skip
def test_the_page_in_each_language(
    language: str, words: list[str], statuses: list[str], times: list[str]
) -> None:
    page = sample_page(language)
    assert f'<html lang="{language}">' in page
    for word in words:
        assert word in page, word
    assert cells(page, 1) == statuses  # s, bad, gone, fresh (never polled), warn, off
    assert cells(page, 2)[:2] == times
    assert "disk full" in page and "HTTP 500" in page  # a reason is shown as it was sent
    assert Page(page.encode()).scripts == 0
    others = {"en": "Latest entries", "zh-Hans": "最新条目", "zh-Hant": "最新條目"}
    assert [word for code, word in others.items() if word in page] == [others[language]]


def test_english_is_the_default_and_reads_as_before() -> None:
    """English, the default, says word for word what the page said before it spoke other
    languages (a browser's cached copy and other tests' expectations stay right)."""
    page = sample_page(None)
    assert page == sample_page("en")
    for line in [
        '<html lang="en"><head><meta charset="utf-8">',
        '<p class="muted">Every feed this server publishes, the state of each source and the'
        ' newest entries. Machine-readable: <a href="status">status</a> (JSON).</p>',
        "<tr><th>Source</th><th>Status</th><th>Last fetch</th><th>Entries</th><th>Feeds</th>"
        "<th>Last error</th></tr>",
        '<p class="error">2 documents cannot be written (retried at each republish): disk full</p>',
        '.sources td:nth-child(3)::before{content:"fetched "}'
        '.sources td:nth-child(4)::after{content:" entries"}}',
        '<li><span class="muted">2024-03-05 06:07 UTC · s</span> '
        '<a href="https://x.example/1">(untitled)</a></li>',
    ]:
        assert line in page, line


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_word_is_there_and_safe_as_it_is(language: str) -> None:
    """Our words go into the page unescaped: none may read as markup, in HTML or in the
    stylesheet's strings; every status has its word."""
    text = TEXTS[language]
    assert text.language == language
    assert set(text.statuses) == {status.value for status in SourceStatus}
    for field in fields(text):
        value = getattr(text, field.name)
        for word in value.values() if isinstance(value, dict) else [value]:
            if field.name == "intro":
                word = word.replace('<a href="status">', "").replace("</a>", "")
            assert not set(word) & set("<>&\"'\\"), (field.name, word)
    assert text.documents_failing.format(count=3).startswith("3")


def test_nasty_text_is_escaped_in_chinese_too() -> None:
    page = nasty_page(Publishing(NASTY, 1, NASTY), "zh-Hans")
    assert Page(page).scripts == 0 and b"<script>" not in page
    assert "错误" in page.decode()


@pytest.mark.parametrize(
    ("fixed", "preferred", "expected"),
    [
        (None, "en", "en"),
        (None, "zh-Hant", "zh-Hant"),
        ("zh-Hans", "en", "zh-Hans"),
        ("en", "zh-Hans", "en"),
    ],
    ids=["browser English", "browser Traditional", "config Chinese", "config English"],
)
def test_the_config_fixes_the_language_or_the_browser_chooses(
    passed: tuple[Config, Store], fixed: str | None, preferred: str, expected: str
) -> None:
    config, store = passed
    page = index_page_for(replace(config, ui_language=fixed), store, preferred=preferred)
    assert isinstance(page, LocalizedPage) and page.language == expected
    assert f'<html lang="{expected}">'.encode() in page
    assert "新闻标题 第0条" in page.decode()  # entries as sent, whatever the language


def test_the_hooks_last_runs_in_each_language() -> None:
    """The page shows each publish hook's last run; its output is the user's command's, and
    is escaped like any feed's text."""
    hooks = [
        {
            "name": "generate",
            "last_run": {
                "outcome": "failed",
                "started": "2026-12-02T10:00:00Z",
                "output": ["ok so far", "<script>alert(1)</script> ERROR"],
            },
        },
        {"name": "deploy", "last_run": None},
    ]
    english = render_index("T", [], [], {}, [], language="en", hooks=hooks).decode()
    assert "<h2>Publish hooks</h2>" in english
    assert '<td class="error">failed</td><td>2026-12-02 10:00 UTC</td>' in english
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ERROR" in english and "<script>" not in english
    assert "<td>deploy</td><td>never</td><td>never</td>" in english
    chinese = render_index("T", [], [], {}, [], language="zh-Hans", hooks=hooks).decode()
    assert (
        "<h2>发布钩子</h2>" in chinese
        and ">失败<" in chinese
        and "2026年12月2日 10:00 UTC" in chinese
    )
    assert "<h2>Publish hooks</h2>" not in render_index("T", [], [], {}, [], language="en").decode()


def test_every_language_a_config_may_name_is_one_of_the_page() -> None:
    from aggregator.config.settings import UI_LANGUAGE_NAMES
    from aggregator.service.ui_text import LANGUAGES

    assert set(UI_LANGUAGE_NAMES.values()) == set(LANGUAGES)
