"""How much of one poll is kept: bounds on an entry's title, author, categories and content,
and on the number of entries taken from one feed.

A feed under `max_body` can still be 14 MB of one title, or 100,000 tiny entries; every
entry kept is stored, written as a document and published in several feeds, so one such
feed grew a site by 200 MB. What is cut is cut here, after parsing and before storing, and
said on the source as a warning (README "Security and reliability").
"""

from __future__ import annotations

from dataclasses import replace
from html import escape

from aggregator.models import Entry, EntryLimits, ParsedFeed
from aggregator.sources.sanitize import plain_text

ELLIPSIS = "…"


def limit_feed(parsed: ParsedFeed, limits: EntryLimits) -> ParsedFeed:
    """`parsed` within `limits`, with what was cut added to its warning."""
    cut: dict[str, int] = {}
    entries = parsed.entries
    if len(entries) > limits.entries:
        cut[f"entries beyond the first {limits.entries}"] = len(entries) - limits.entries
        entries = entries[: limits.entries]
    bounded = []
    for entry in entries:
        limited, what = limit_entry(entry, limits)
        for name in what:
            cut[name] = cut.get(name, 0) + 1
        bounded.append(limited)
    if not cut:
        return parsed
    note = "cut to the configured limits: " + ", ".join(
        f"{name} ({count})" for name, count in cut.items()
    )
    error = f"{parsed.error}; {note}" if parsed.error else note
    return replace(parsed, entries=tuple(bounded), error=error)


def limit_entry(entry: Entry, limits: EntryLimits) -> tuple[Entry, list[str]]:
    """`entry` within `limits`, and the names of what was cut."""
    cut: list[str] = []
    changes: dict[str, object] = {}
    if len(entry.title) > limits.title:
        changes["title"] = shorten(entry.title, limits.title)
        cut.append("titles")
    if entry.author and len(entry.author) > limits.author:
        changes["author"] = shorten(entry.author, limits.author)
        cut.append("authors")
    categories = entry.categories[: limits.categories]
    if len(categories) < len(entry.categories):
        cut.append("categories beyond the limit")
    if any(len(name) > limits.category for name in categories):
        categories = tuple(shorten(name, limits.category) for name in categories)
        cut.append("category names")
    if categories != entry.categories:
        changes["categories"] = categories
    if len(entry.content) > limits.content:
        # Cut as text: a cut through markup would leave it unbalanced, and an entry this
        # long is an attack or an archive, not an article to lay out.
        text = shorten(plain_text(entry.content), limits.content - len("<p></p>"))
        changes["content"] = f"<p>{escape(text, quote=False)}</p>"
        cut.append("contents")
    return (replace(entry, **changes) if changes else entry), cut


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, cut at a word when there is one near the end."""
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - len(ELLIPSIS))]
    space = head.rfind(" ")
    if space > len(head) * 3 // 4:
        head = head[:space]
    return head.rstrip() + ELLIPSIS
