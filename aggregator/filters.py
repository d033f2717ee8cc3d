"""Per-source filters: which parsed entries a source keeps; pure, so tested without a feed.

The rule, as documented for config.yaml: each pattern of `include` and `exclude` is a Python
regular expression searched anywhere (`re.search`; case-sensitive unless it starts with
`(?i)`) in the entry's title, in the plain text of its content, and in each of its own
categories. With `include`, an entry is kept only when some include pattern matches; any
matching `exclude` pattern drops it, include or not. Filters decide what is stored: an
entry already stored stays when a filter is added later.

`keep: N` caps what a source keeps: after each poll that stored something, all but its N
newest entries (by date: published, else updated, else first seen) are deleted with their
documents. Of a fetched feed only the N newest entries are considered at all, so entries
the cap would delete at once are not stored and deleted again on every poll.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from .models import Entry, Source
from .sanitize import plain_text


def select_entries(
    entries: Sequence[Entry], source: Source, now: datetime
) -> tuple[tuple[Entry, ...], int]:
    """(entries the source keeps, in feed order; how many its filters and cap dropped)."""
    kept = tuple(entries)
    if source.include or source.exclude:
        kept = tuple(entry for entry in kept if keeps(entry, source.include, source.exclude))
    if source.keep is not None and len(kept) > source.keep:
        # sorted() is stable, so entries of the same date keep their feed order.
        by_date = sorted(kept, key=lambda e: e.published or e.updated or now, reverse=True)
        chosen = {id(entry) for entry in by_date[: source.keep]}
        kept = tuple(entry for entry in kept if id(entry) in chosen)
    return kept, len(entries) - len(kept)


def keeps(entry: Entry, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether one entry passes an include / exclude pair of pattern lists."""
    fields = (entry.title, plain_text(entry.content), *entry.categories)
    if include and not _any_match(include, fields):
        return False
    return not (exclude and _any_match(exclude, fields))


def _any_match(patterns: Iterable[str], fields: Sequence[str]) -> bool:
    # re caches compiled patterns; config.py has already compiled each one once.
    return any(re.search(pattern, text) for pattern in patterns for text in fields)
