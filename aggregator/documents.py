"""Stored entries -> front-matter documents for a static site (Hexo's format by default).

The format is fixed by `shared/examples/seed-document.md`: keys `title`, `categories`,
`headimg`, `author`, `comments`, `date`, `thumbnail` in that order; `date` in RFC 822 GMT;
the body is the entry's HTML inside `<div>`. Everything a feed controls is quoted or checked
so that the YAML stays valid and the file name can never leave the documents folder.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

from .atomic import write_atomic
from .errors import OutputError
from .models import Source, StoredEntry
from .sanitize import strip_blank_lines

MAX_SLUG_BYTES = 120  # with date, hash and ".md" the name stays far below 255 bytes
PLAIN_SCALAR = re.compile(r"^[^\W\d_][\w .·・\-]*(?<![ ])$")
YAML_KEYWORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
# Hexo runs every post through Nunjucks; these would be taken as template tags.
NUNJUCKS = re.compile(r"\{(?=[{%#])")


def document_name(source: str, identity: str, title: str, date: datetime) -> str:
    """`YYYY-MM-DD-<slug of the title>-<8 hex>.md`: readable, unique per (source, identity),
    and made of nothing a feed could turn into a path."""
    digest = hashlib.sha256(f"{source}\0{identity}".encode()).hexdigest()[:8]
    return f"{date:%Y-%m-%d}-{slugify(title)}-{digest}.md"


def slugify(title: str) -> str:
    """Letters and digits of any script (Chinese stays readable), joined by single dashes."""
    text = unicodedata.normalize("NFKC", title).lower()
    slug = re.sub(r"[\W_]+", "-", text).strip("-")
    encoded = slug.encode("utf-8")[:MAX_SLUG_BYTES]
    slug = encoded.decode("utf-8", "ignore").strip("-")
    return slug or "entry"


def render_document(stored: StoredEntry, source: Source | None) -> str:
    """The whole document text for one entry, front matter first."""
    entry = stored.entry
    source_label = (source.title if source else None) or stored.source_title or entry.source
    categories = list(source.categories) if source and source.categories else [source_label]
    image = entry.image or (source.image if source else None)
    author = _one_line(entry.author or "") or source_label
    lines = ["---", f"title: {quoted(entry.title)}", "categories:"]
    lines += [f" - {scalar(name)}" for name in categories]
    if image:
        lines.append(f"headimg: {quoted(image)}")
    lines += [
        f"author: {scalar(author)}",
        "comments: false",
        f"date: {rfc822(stored.date)}",
    ]
    if image:
        lines.append(f"thumbnail: {quoted(image)}")
    body = NUNJUCKS.sub("&#123;", strip_blank_lines(entry.content))
    lines += (
        ["---", "", "<div>", body, "</div>", ""] if body else ["---", "", "<div>", "</div>", ""]
    )
    return "\n".join(lines)


def rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def quoted(text: str) -> str:
    """A YAML single-quoted scalar: only `'` needs escaping (doubled) once text is one line."""
    return "'" + _one_line(text).replace("'", "''") + "'"


def scalar(text: str) -> str:
    """Plain when YAML would read it back as the same string, single-quoted otherwise."""
    text = _one_line(text)
    if PLAIN_SCALAR.match(text) and text.lower() not in YAML_KEYWORDS:
        return text
    return quoted(text)


def _one_line(text: str) -> str:
    folded = " ".join(text.split())
    if not folded.isprintable():  # rare: control or format characters inside a word
        folded = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return folded.encode("utf-8", "replace").decode("utf-8")


def write_documents(
    folder: Path,
    stored: Iterable[StoredEntry],
    sources: Mapping[str, Source],
    render: Callable[[StoredEntry, Source | None], str] = render_document,
    only_if_changed: bool = True,
) -> list[int]:
    """Write each entry's document if its content changed; return the ids of the entries
    whose documents are now on disk, so the store can mark them done. `render` picks the
    front-matter format (see `document_formats`). `only_if_changed=False` skips reading
    the file first: for documents of new or changed entries, which almost never exist
    with the same text (looking up a missing file is a tenth of its creation's cost)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create documents folder {folder}: {exc}") from exc
    done: list[int] = []
    for item in stored:
        data = render(item, sources.get(item.entry.source)).encode("utf-8")
        path = safe_path(folder, item.document)
        try:
            write_atomic(path, data, only_if_changed=only_if_changed)
        except OSError as exc:
            raise OutputError(f"cannot write document {path}: {exc.strerror or exc}") from exc
        done.append(item.id)
    return done


def safe_path(folder: Path, name: str) -> Path:
    """`folder / name`, refusing any name that is not a plain file name inside `folder`."""
    if (
        not name
        or "/" in name
        or "\\" in name
        or "\0" in name
        or name.startswith(".")
        or len(name.encode("utf-8")) > 255
    ):
        raise OutputError(f"refusing unsafe document name {name!r}")
    return folder / name


def remove_documents(folder: Path, names: Iterable[str]) -> int:
    """Delete the documents of pruned or purged entries; a file already gone is fine."""
    removed = 0
    for name in names:
        path = safe_path(folder, name)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot remove document {path}: {exc.strerror or exc}") from exc
        removed += 1
    return removed
