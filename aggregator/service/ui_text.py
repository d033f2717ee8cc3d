"""The words of the index page in each language it speaks, and which one a request gets.

`negotiate` reads an Accept-Language header (RFC 9110 12.5.4, ranges matched as RFC 4647
does): q-values (0 refuses), `*`, and a region or script the page does not have falling back
to its language (en-GB reads en). Chinese comes in two scripts: zh-Hant (Traditional) for
zh-Hant, zh-TW, zh-HK and zh-MO, zh-Hans (Simplified) for the rest of zh. No header, or
nothing the page speaks: English. `config_language` reads the config's `ui_language`, which
fixes one language for every reader.

Every text here is ours and goes into the page as it is: `intro` is HTML, the others plain
text holding nothing that HTML or a CSS string would read as markup (checked by
tests/test_index_page.py). What a feed sends is escaped by index_page.py as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aggregator.text import accept_weight

ENGLISH = "en"
SIMPLIFIED = "zh-Hans"
TRADITIONAL = "zh-Hant"
LANGUAGES = (ENGLISH, SIMPLIFIED, TRADITIONAL)  # on a tie, the earlier wins; English is default
RANGE = re.compile(r"\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*")  # a language-range, lowercased
TRADITIONAL_SUBTAGS = frozenset({"hant", "tw", "hk", "mo"})
SIMPLIFIED_SUBTAGS = frozenset({"hans", "cn", "sg", "my"})
# `ui_language` values, as a person writes them, and the language each one fixes.


def matches(language_range: str) -> tuple[tuple[str, ...], int]:
    """The page's languages a (lowercased, valid) range covers, and how specifically: 2 names
    the language with a region or script, 1 the language alone, 0 is `*`."""
    if language_range == "*":
        return LANGUAGES, 0
    primary, *subtags = language_range.split("-")
    specific = 2 if subtags else 1
    if primary == "en":
        return (ENGLISH,), specific
    if primary != "zh":
        return (), specific
    # The script decides when given (zh-Hans-TW is Simplified); else the region.
    for subtag in subtags:
        if subtag == "hant":
            return (TRADITIONAL,), 2
        if subtag == "hans":
            return (SIMPLIFIED,), 2
    if TRADITIONAL_SUBTAGS.intersection(subtags):
        return (TRADITIONAL,), 2
    if SIMPLIFIED_SUBTAGS.intersection(subtags):
        return (SIMPLIFIED,), 2
    return (SIMPLIFIED, TRADITIONAL), 1  # zh, or a region the page has no script for


def negotiate(header: str | None) -> str:
    """The language of the page for a request's Accept-Language header.

    Each of the page's languages takes the q of the most specific range covering it (so
    `zh-TW;q=0, zh` refuses Traditional but takes Simplified, and `en;q=0, *` refuses
    English); of those above 0 the highest wins, a tie going to the one named first in the
    header, then to `LANGUAGES`' order. A range that is not one, or a q that is not a qvalue
    (which refuses its range, as for Accept-Encoding), is skipped."""
    if not header:
        return ENGLISH
    best: dict[str, tuple[int, float, int]] = {}  # language -> (specific, q, position)
    for position, part in enumerate(header.split(",")):
        language_range, _, params = part.partition(";")
        language_range = language_range.strip().lower()
        if not RANGE.fullmatch(language_range):
            continue
        quality = accept_weight(params)
        covered, specific = matches(language_range)
        for language in covered:
            held = best.get(language)
            if held is None or (specific, quality) > held[:2]:
                best[language] = (specific, quality, position)
    ranked = [
        (-quality, position, LANGUAGES.index(language), language)
        for language, (_, quality, position) in best.items()
        if quality > 0
    ]
    return min(ranked)[-1] if ranked else ENGLISH


@dataclass(frozen=True)
class UiText:
    """Every word the index page says, in one language. `intro` is HTML (ours)."""

    language: str  # BCP 47: <html lang> and Content-Language
    intro: str
    publishing_failing: str  # followed by the redacted reason
    documents_failing: str  # {count}; followed by the reason
    feeds: str
    feed: str
    formats: str
    category: str
    merged: str
    sources: str
    source: str
    status: str
    last_fetch: str
    entries: str
    last_error: str
    latest: str
    untitled: str
    nothing_yet: str
    never: str
    fetched_before: str  # the narrow layout's words around a fetch time and a count (CSS)
    entries_after: str
    feed_label: str  # a link to a feed of a format without a name of its own
    statuses: Mapping[str, str]  # SourceStatus value -> word
    hooks: str = "Publish hooks"
    hook_name: str = "Hook"
    hook_ran: str = "Last run"
    hook_output: str = "Last output"
    hook_outcomes: Mapping[str, str] = field(default_factory=dict)  # HookOutcome value -> word

    def when(self, moment: datetime | None) -> str:
        """A moment in UTC, or that there was none."""
        if moment is None:
            return self.never
        moment = moment.astimezone(UTC)
        if self.language == ENGLISH:
            return moment.strftime("%Y-%m-%d %H:%M UTC")
        return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M} UTC"

    def status_word(self, status: str) -> str:
        return self.statuses.get(status, status)


TEXTS = {
    ENGLISH: UiText(
        language=ENGLISH,
        intro="Every feed this server publishes, the state of each source and the newest "
        'entries. Machine-readable: <a href="status">status</a> (JSON).',
        publishing_failing="Publishing is failing: ",
        documents_failing="{count} documents cannot be written (retried at each republish): ",
        feeds="Feeds",
        feed="Feed",
        formats="Formats",
        category="category",
        merged="All sources, merged",
        sources="Sources",
        source="Source",
        status="Status",
        last_fetch="Last fetch",
        entries="Entries",
        last_error="Last error",
        latest="Latest entries",
        untitled="(untitled)",
        nothing_yet="nothing stored yet",
        never="never",
        fetched_before="fetched ",
        entries_after=" entries",
        feed_label="feed",
        hooks="Publish hooks",
        hook_ran="Last run",
        hook_output="Last output",
        hook_outcomes={
            "ok": "ok",
            "failed": "failed",
            "timeout": "timed out",
            "not-started": "could not start",
        },
        statuses={
            "new": "new",
            "ok": "ok",
            "warning": "warning",
            "error": "error",
            "gone": "gone",
            "disabled": "disabled",
        },
    ),
    SIMPLIFIED: UiText(
        language=SIMPLIFIED,
        intro="本服务器发布的每个订阅源、每个来源的状态和最新的条目。"
        '机器可读：<a href="status">status</a>（JSON）。',
        publishing_failing="发布失败：",
        documents_failing="{count} 篇文档无法写入（每次重新发布时重试）：",
        feeds="订阅源",
        feed="订阅源",
        formats="格式",
        category="分类",
        merged="全部来源（合并）",
        sources="来源",
        source="来源",
        status="状态",
        last_fetch="上次抓取",
        entries="条目",
        last_error="最近的错误",
        latest="最新条目",
        untitled="（无标题）",
        nothing_yet="尚无条目",
        never="从未",
        fetched_before="抓取于 ",
        entries_after=" 条",
        feed_label="订阅源",
        hooks="发布钩子",
        hook_ran="上次运行",
        hook_output="最后输出",
        hook_outcomes={
            "ok": "成功",
            "failed": "失败",
            "timeout": "超时",
            "not-started": "无法启动",
        },
        statuses={
            "new": "新来源",
            "ok": "正常",
            "warning": "警告",
            "error": "错误",
            "gone": "已失效",
            "disabled": "已停用",
        },
    ),
    TRADITIONAL: UiText(
        language=TRADITIONAL,
        intro="本伺服器發布的每個訂閱源、每個來源的狀態和最新的條目。"
        '機器可讀：<a href="status">status</a>（JSON）。',
        publishing_failing="發布失敗：",
        documents_failing="{count} 篇文件無法寫入（每次重新發布時重試）：",
        feeds="訂閱源",
        feed="訂閱源",
        formats="格式",
        category="分類",
        merged="全部來源（合併）",
        sources="來源",
        source="來源",
        status="狀態",
        last_fetch="上次抓取",
        entries="條目",
        last_error="最近的錯誤",
        latest="最新條目",
        untitled="（無標題）",
        nothing_yet="尚無條目",
        never="從未",
        fetched_before="抓取於 ",
        entries_after=" 條",
        feed_label="訂閱源",
        hooks="發佈鉤子",
        hook_ran="上次執行",
        hook_output="最後輸出",
        hook_outcomes={
            "ok": "成功",
            "failed": "失敗",
            "timeout": "逾時",
            "not-started": "無法啟動",
        },
        statuses={
            "new": "新來源",
            "ok": "正常",
            "warning": "警告",
            "error": "錯誤",
            "gone": "已失效",
            "disabled": "已停用",
        },
    ),
}


class LocalizedPage(bytes):
    """A built page's bytes, and the language they are in (`language`): the one asked for,
    or the one the config fixes."""

    language: str

    def __new__(cls, body: bytes, language: str) -> LocalizedPage:
        page = super().__new__(cls, body)
        page.language = language
        return page
