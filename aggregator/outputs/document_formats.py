"""Front matter for Hugo and Jekyll, beside the Hexo format of `documents.render_document`.

`documents_format` in config.yaml picks one renderer for every document; file names and the
body (the entry's HTML in a `<div>`) stay the same in every format, so switching format and
running `aggregator render --all` rewrites the same files in place. Every renderer shares
`documents`' guarantees: quoted YAML, template tags defused in body and front matter (Hugo's
shortcodes `{{<`/`{{%`, Liquid's `{{`/`{%`), attribute-safe URLs, config.yaml's
`documents_timezone` and `front_matter`.

Jekyll's own needs: its default permalink (`/:categories/:year/:month/:day/:title.html`)
makes each category a folder and parses it as a URL, so `Varthabharathi : Kanrnataka's ...`
aborts the build (`Invalid scheme format`) and `/` or `|` make odd folders; categories are
written with letters, digits, spaces, `-`, `_` and `.` only. Jekyll's own excerpt is the
first paragraph rendered, which for a body in one `<div>` is the whole post: an explicit
`excerpt` is written, the entry's text bounded and HTML-escaped (`documents.excerpt_of`).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime

from aggregator.models import Source, StoredEntry
from aggregator.outputs.documents import (
    DEFAULT_OPTIONS,
    DocumentOptions,
    EntryFacts,
    Line,
    compose,
    quoted,
    render_document,
    scalar,
    wall_time,
    yaml_list,
)
from aggregator.text import rfc3339_utc

Renderer = Callable[[StoredEntry, Source | None], str]

# Kept in a Jekyll category besides letters, digits and marks (the vowel signs of Indic
# scripts); apostrophes are dropped ("Kanrnataka's" -> "Kanrnatakas"), anything else is a space.
CATEGORY_KEEPS = frozenset("-_.")
APOSTROPHES = frozenset("'’‘`´ʼ")


def render_hugo(
    stored: StoredEntry, source: Source | None, options: DocumentOptions = DEFAULT_OPTIONS
) -> str:
    """YAML front matter Hugo reads: title, RFC 3339 date, categories taxonomy, `images`
    (what Hugo's Open Graph and Twitter card templates use)."""
    facts = EntryFacts(stored, source)
    lines: list[Line] = [
        ("title", f" {quoted(facts.title)}"),
        ("date", f" {rfc3339(stored.date, options.timezone)}"),
        ("categories", yaml_list(facts.categories)),
    ]
    if facts.image:
        lines.append(("images", f"\n - {quoted(facts.image)}"))
    lines.append(("author", f" {scalar(facts.author)}"))
    return compose(lines, facts, options)


def render_jekyll(
    stored: StoredEntry, source: Source | None, options: DocumentOptions = DEFAULT_OPTIONS
) -> str:
    """YAML front matter Jekyll reads for a post: `layout: post`, title, date in Jekyll's own
    `YYYY-MM-DD HH:MM:SS +0000` form, categories that make good folders, an excerpt."""
    facts = EntryFacts(stored, source)
    lines: list[Line] = [
        ("layout", " post"),
        ("title", f" {quoted(facts.title)}"),
        ("date", f" {jekyll_date(stored.date, options.timezone)}"),
        ("categories", yaml_list(jekyll_categories(facts.categories))),
    ]
    if facts.image:
        lines.append(("image", f" {quoted(facts.image)}"))
    lines.append(("author", f" {scalar(facts.author)}"))
    if facts.excerpt:
        lines.append(("excerpt", f" {quoted(facts.excerpt)}"))
    return compose(lines, facts, options)


RENDERERS: dict[str, Callable[..., str]] = {
    "hexo": render_document,
    "hugo": render_hugo,
    "jekyll": render_jekyll,
}


def renderer_for(documents_format: str, options: DocumentOptions = DEFAULT_OPTIONS) -> Renderer:
    """The renderer for a validated `documents_format` (config.py allows only these keys),
    with the configured options; picklable, for the worker processes that write documents."""
    render = RENDERERS[documents_format]
    return render if options == DEFAULT_OPTIONS else functools.partial(render, options=options)


def rfc3339(moment: datetime, zone: str | None = None) -> str:
    if zone is None:
        return rfc3339_utc(moment)
    return wall_time(moment, zone).isoformat(timespec="seconds")


def jekyll_date(moment: datetime, zone: str | None) -> str:
    local = moment.astimezone(UTC) if zone is None else wall_time(moment, zone)
    return f"{local:%Y-%m-%d %H:%M:%S %z}"


def jekyll_categories(names: list[str]) -> list[str]:
    """Categories that make good folders under Jekyll's default permalink: letters, digits
    and marks of any script, spaces, `-`, `_`, `.`; no leading or trailing dot or dash, no
    empty or repeated name."""
    result: list[str] = []
    for name in names:
        kept = "".join(
            "" if ch in APOSTROPHES else ch if _category_char(ch) else " " for ch in name
        )
        cleaned = " ".join(kept.split()).strip(" .-_")
        if cleaned and cleaned not in result:
            result.append(cleaned)
    return result


def _category_char(ch: str) -> bool:
    return ch in CATEGORY_KEEPS or unicodedata.category(ch)[0] in "LMN"
