"""Front matter for Hugo and Jekyll, beside the Hexo format of `documents.render_document`.

`documents_format` in config.yaml picks one renderer for every document; file names and the
body (the entry's HTML in a `<div>`) stay the same in every format, so switching format and
running `aggregator render --all` rewrites the same files in place. Each renderer quotes
everything a feed controls and defuses the template syntax its generator would otherwise
execute inside a post: Hugo's shortcodes (`{{<`, `{{%`), Liquid's `{{` and `{%` in Jekyll.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from .documents import quoted, render_document, scalar
from .models import Source, StoredEntry
from .sanitize import plain_text, strip_blank_lines

Renderer = Callable[[StoredEntry, Source | None], str]

HUGO_TEMPLATE = re.compile(r"\{(?=\{)")
LIQUID_TEMPLATE = re.compile(r"\{(?=[{%])")


def render_hugo(stored: StoredEntry, source: Source | None) -> str:
    """YAML front matter Hugo reads: title, RFC 3339 date, categories taxonomy, `images`
    (what Hugo's Open Graph and Twitter card templates use)."""
    categories, image, author = _facts(stored, source)
    lines = [
        "---",
        f"title: {quoted(stored.entry.title)}",
        f"date: {rfc3339(stored.date)}",
        "categories:",
        *(f" - {scalar(name)}" for name in categories),
    ]
    if image:
        lines += ["images:", f" - {quoted(image)}"]
    lines.append(f"author: {scalar(author)}")
    return _finish(lines, HUGO_TEMPLATE.sub("&#123;", strip_blank_lines(stored.entry.content)))


def render_jekyll(stored: StoredEntry, source: Source | None) -> str:
    """YAML front matter Jekyll reads for a post: `layout: post`, title, date in Jekyll's own
    `YYYY-MM-DD HH:MM:SS +0000` form, categories."""
    categories, image, author = _facts(stored, source)
    lines = [
        "---",
        "layout: post",
        f"title: {quoted(stored.entry.title)}",
        f"date: {stored.date.astimezone(UTC):%Y-%m-%d %H:%M:%S +0000}",
        "categories:",
        *(f" - {scalar(name)}" for name in categories),
    ]
    if image:
        lines.append(f"image: {quoted(image)}")
    lines.append(f"author: {scalar(author)}")
    return _finish(lines, LIQUID_TEMPLATE.sub("&#123;", strip_blank_lines(stored.entry.content)))


RENDERERS: dict[str, Renderer] = {
    "hexo": render_document,
    "hugo": render_hugo,
    "jekyll": render_jekyll,
}


def renderer_for(documents_format: str) -> Renderer:
    """The renderer for a validated `documents_format` (config.py allows only these keys)."""
    return RENDERERS[documents_format]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _facts(stored: StoredEntry, source: Source | None) -> tuple[list[str], str | None, str]:
    """Categories, image and author, decided exactly as the Hexo format decides them."""
    entry = stored.entry
    label = (source.title if source else None) or stored.source_title or entry.source
    categories = list(source.categories) if source and source.categories else [label]
    image = entry.image or (source.image if source else None)
    return categories, image, plain_text(entry.author) or label


def _finish(lines: list[str], body: str) -> str:
    return "\n".join([*lines, "---", "", "<div>", *([body] if body else []), "</div>", ""])
