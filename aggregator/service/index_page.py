"""The status page at `/` of the built-in server: every feed (with autodiscovery tags so a
feed reader given the server's address finds them), each source's state, the latest entries.

`render_index` is pure: plain values in, HTML bytes out, everything a feed controls escaped.
`index_page_for` gathers those values from a config and a store, for the daemon to hand to
the server (which caches the bytes). Links are relative, so the page works wherever the
server is mounted. The page holds no clock of its own (no "generated at"), so that the same
state gives the same bytes and the same ETag, and a browser's revalidation gets a 304.

The page speaks the reader's language: the server negotiates one from Accept-Language
(ui_text.py holds the words and the negotiation) and caches a page per language, unless the
config's `ui_language` fixes one; `<html lang>` says which. Only our own words are translated:
titles, names, errors and entries are shown as sent (escaped, redacted) in every language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from aggregator.config.settings import Config
from aggregator.models import (
    ALL_PUBLISHED,
    MediaType,
    Publishing,
    Source,
    SourceStatus,
    StoredEntry,
)
from aggregator.outputs.feed_groups import FeedLink, configured_groups, published_feeds
from aggregator.outputs.feeds import FeedInfo
from aggregator.outputs.redact import public_url, redact_text
from aggregator.service.ui_text import ENGLISH, TEXTS, LocalizedPage, UiText
from aggregator.store.database import Store
from aggregator.store.rows import SourceState

LATEST = 20
STYLE_TEMPLATE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.2rem .5rem;"
    "border-bottom:1px solid #ddd;vertical-align:top}th{border-bottom-color:#999}"
    ".error{color:#b00;overflow-wrap:anywhere}.muted{color:#777}.formats{white-space:nowrap}"
    # A phone's width: each source becomes a block of lines instead of a six-column row.
    "@media (max-width:40rem){.sources tr:first-child{display:none}"
    ".sources tr{display:block;padding:.4rem 0;border-bottom:1px solid #ddd}"
    ".sources td{display:inline;border:0;padding:0 .5rem 0 0}"
    ".sources td:first-child,.sources td:last-child{display:block}"
    '.sources td:nth-child(3)::before{content:"{fetched}"}'
    '.sources td:nth-child(4)::after{content:"{entries}"}}'
)
FORMAT_NAMES = {
    MediaType.RSS: "RSS",
    MediaType.ATOM: "Atom",
    MediaType.JSON_FEED: "JSON",
}


def render_index(
    title: str,
    feeds: Sequence[FeedLink],
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    latest: Sequence[StoredEntry],
    publishing: Publishing = ALL_PUBLISHED,
    language: str = ENGLISH,
    hooks: Sequence[Mapping[str, Any]] = (),
) -> bytes:
    """The whole page, in `language` (one of ui_text.LANGUAGES). `feeds` come from
    `feed_groups.published_feeds` (merged first, then three per category and per source);
    `states` are the stored states by source name."""
    text = TEXTS[language]
    folders: dict[str, list[FeedLink]] = {}  # "" (merged), "category/<slug>", "source/<name>"
    for link in feeds:
        folders.setdefault(link.path.rpartition("/")[0], []).append(link)
    head = [
        "<!DOCTYPE html>",
        f'<html lang="{text.language}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        *(
            f'<link rel="alternate" type="{escape(link.media_type)}" '
            f'title="{escape(link.title)}" href="{escape(link.url_path)}">'
            for link in feeds
            if advertised(link)
        ),
        f"<style>{style(text)}</style>",
        "</head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{text.intro}</p>',
    ]
    return "\n".join(
        [
            *head,
            *_publishing_section(publishing, text),
            *_feeds_section(title, folders, text),
            *_sources_section(sources, states, folders, text),
            *_hooks_section(hooks, text),
            *_latest_section(latest, sources, text),
            "</body></html>",
            "",
        ]
    ).encode("utf-8")


def index_page_for(
    config: Config,
    store: Store,
    publishing: Publishing | None = None,
    latest: int = LATEST,
    preferred: str = ENGLISH,
    hooks: Sequence[Mapping[str, Any]] = (),
) -> LocalizedPage:
    """The page for the current config and database (one quick query for states, one for
    the latest entries), in the config's `ui_language` if it fixes one, else in `preferred`
    (the language the server negotiated with the reader's browser)."""
    language = config.ui_language or preferred
    feed = config.feed
    info = FeedInfo(feed.title, feed.link, feed.description, feed.rss_name, feed.atom_name)
    links = published_feeds(info, configured_groups(config))
    states = {state.name: state for state in store.source_states()}
    if publishing is None:
        publishing = Publishing(None, *store.document_failures())
    newest = store.newest_entries(latest)
    page = render_index(
        feed.title, links, config.sources, states, newest, publishing, language, hooks
    )
    return LocalizedPage(page, language)


def style(text: UiText) -> str:
    """The stylesheet, with the narrow layout's words in the page's language."""
    return STYLE_TEMPLATE.replace("{fetched}", text.fetched_before).replace(
        "{entries}", text.entries_after
    )


def _publishing_section(publishing: Publishing, text: UiText) -> list[str]:
    """A warning at the top while outputs are not being written."""
    lines = []
    if publishing.failure:
        problem = escape(redact_text(publishing.failure) or "")
        lines.append(f'<p class="error">{text.publishing_failing}{problem}</p>')
    if publishing.documents_failing:
        count = text.documents_failing.format(count=int(publishing.documents_failing))
        lines.append(f'<p class="error">{count}{escape(publishing.document_error or "")}</p>')
    return lines


def advertised(link: FeedLink) -> bool:
    """Whether a feed gets a `<link rel="alternate">` in the head: the merged feeds and each
    category's, which a reader offers as a choice. One per source would be thousands of
    tags for a large config; those feeds are linked in the page body instead."""
    return not link.path.startswith("source/")


def _feeds_section(
    title: str, folders: Mapping[str, Sequence[FeedLink]], text: UiText
) -> list[str]:
    """One row for the merged feed and one per category; each source's feeds are in its
    row of the sources table, so a thousand sources do not push everything else down."""
    lines = [
        f"<h2>{text.feeds}</h2>",
        "<table>",
        f"<tr><th>{text.feed}</th><th>{text.formats}</th></tr>",
    ]
    for folder, links in folders.items():
        if folder.startswith("source/"):
            continue
        if folder:
            name = links[0].title.rsplit(" (", 1)[0].removeprefix(f"{title}: ")
            label = f'<span class="muted">{text.category}</span> {escape(name)}'
        else:
            label = text.merged
        lines.append(f"<tr><td>{label}</td>{_formats(links, text)}</tr>")
    lines.append("</table>")
    return lines


def _sources_section(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    folders: Mapping[str, Sequence[FeedLink]],
    text: UiText,
) -> list[str]:
    headings = (
        text.source, text.status, text.last_fetch, text.entries, text.feeds, text.last_error
    )  # fmt: skip
    lines = [
        f"<h2>{text.sources}</h2>",
        '<table class="sources">',
        "<tr>" + "".join(f"<th>{heading}</th>" for heading in headings) + "</tr>",
    ]
    for source in sources:
        state = states.get(source.name)
        status = (
            SourceStatus.DISABLED
            if not source.enabled
            else (state.status if state else SourceStatus.NEW)
        )
        css = ' class="error"' if status in {SourceStatus.ERROR, SourceStatus.GONE} else ""
        label = source.title or (state.title if state else None) or source.name
        url = public_url((state.current_url if state else None) or source.url, source.public_url)
        problem = escape(redact_text(state.error) or "") if state else ""
        lines.append(
            f'<tr><td><a href="{escape(url)}">{escape(label)}</a>'
            f' <span class="muted">{escape(source.name)}</span></td>'
            f"<td{css}>{escape(text.status_word(status))}</td>"
            f"<td>{text.when(state.last_fetch if state else None)}</td>"
            f"<td>{state.entries if state else 0}</td>"
            f"{_formats(folders.get(f'source/{source.name}', ()), text)}"
            f'<td class="error">{problem}</td></tr>'
        )
    lines.append("</table>")
    return lines


def _hooks_section(hooks: Sequence[Mapping[str, Any]], text: UiText) -> list[str]:
    """Each publish hook's last run (HookRunner.statuses()): the user's own commands, but
    their output is escaped like any other text."""
    if not hooks:
        return []
    lines = [
        f"<h2>{text.hooks}</h2>",
        '<table class="hooks">',
        f"<tr><th>{text.hook_name}</th><th>{text.status}</th><th>{text.hook_ran}</th>"
        f"<th>{text.hook_output}</th></tr>",
    ]
    for hook in hooks:
        run = hook.get("last_run") or {}
        outcome = run.get("outcome")
        word = text.hook_outcomes.get(outcome, outcome) if outcome else text.never
        css = ' class="error"' if outcome and outcome != "ok" else ""
        started = run.get("started")
        when = text.when(datetime.fromisoformat(started)) if started else text.never
        last = (run.get("output") or [""])[-1]
        lines.append(
            f"<tr><td>{escape(hook['name'])}</td><td{css}>{escape(word)}</td>"
            f'<td>{when}</td><td class="muted">{escape(last)}</td></tr>'
        )
    lines.append("</table>")
    return lines


def _formats(links: Sequence[FeedLink], text: UiText) -> str:
    """A table cell with one link per format of one feed."""
    anchors = " ".join(
        f'<a href="{escape(link.url_path)}" type="{escape(link.media_type)}">'
        f"{FORMAT_NAMES.get(link.media_type, text.feed_label)}</a>"
        for link in links
    )
    return f'<td class="formats">{anchors}</td>'


def _latest_section(
    latest: Sequence[StoredEntry], sources: Sequence[Source], text: UiText
) -> list[str]:
    titles = {source.name: source.title for source in sources}
    lines = [f"<h2>{text.latest}</h2>", "<ul>"]
    for stored in latest:
        entry = stored.entry
        label = titles.get(entry.source) or stored.source_title or entry.source
        title = escape(entry.title) if entry.title else text.untitled
        linked = f'<a href="{escape(entry.link)}">{title}</a>' if entry.link else title
        lines.append(
            f'<li><span class="muted">{text.when(stored.date)} · {escape(label)}</span>'
            f" {linked}</li>"
        )
    if not latest:
        lines.append(f'<li class="muted">{text.nothing_yet}</li>')
    lines.append("</ul>")
    return lines
