"""Stored entries -> front-matter documents for a static site (Hexo's format by default).

The format is fixed by `shared/examples/seed-document.md`: keys `title`, `categories`,
`headimg`, `author`, `comments`, `date`, `thumbnail` in that order; `date` in RFC 822 GMT;
the body is the entry's HTML inside `<div>`. Everything a feed controls is quoted or checked
so that the YAML stays valid and the file name can never leave the documents folder.

What every format (this one, `document_formats`' Hugo and Jekyll) also guarantees:

- No template engine of the generators sees a tag. Hexo runs Nunjucks over every post
  (Hexo 7 whatever it holds: a lone `#}` stops the build), Jekyll runs Liquid, Hugo looks for
  shortcodes. In the body every brace of an opener or closer (`{{ }} {% %} {# #}`, so
  Hugo's `{{< >}}` and `{{% %}}` too) is written as a character reference (`&#123;`,
  `&#125;`), which the page shows as the brace. A front-matter string holding one is written
  double-quoted with the braces as YAML escapes (`\\x7B`): the file has no opener or closer,
  and the generator reads the same text (themes print it escaped or not; an HTML reference
  would be shown as such by the ones that escape).
- URLs in front matter (images, links) have quotes, angle brackets, spaces, backticks and
  the like percent-encoded (RFC 3986 allows it; the URL leads to the same place), so a theme
  that writes them into an HTML attribute unescaped (Volantis) cannot be made to run code.
- `DocumentOptions` (config.yaml's `documents_timezone` and `front_matter`) can write dates
  as wall time in a zone (for Hexo's `timezone`) and add, replace or drop keys; with none set,
  the seed format is written byte for byte.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import html
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from aggregator.errors import OutputError
from aggregator.models import Entry, Source, StoredEntry
from aggregator.outputs.atomic import write_atomic
from aggregator.store.reader import entries_by_id, open_reader
from aggregator.text import html_block, one_line, slugify

MAX_SLUG_BYTES = 120  # with date, hash and ".md" the name stays far below 255 bytes
PLAIN_SCALAR = re.compile(r"^[^\W\d_][\w .·・\-]*(?<![ ])$")
YAML_KEYWORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
# What Nunjucks (Hexo), Liquid (Jekyll) or Hugo's shortcodes take for a tag's opener or
# closer; and the brace of each, to be written so that none of them sees it.
TEMPLATE_TOKEN = re.compile(r"\{[{%#]|[}%#]\}")
MAX_CATEGORY_BYTES = 120  # a folder name, with room for what a generator adds to it
# Members of every JavaScript object: a generator's lookup by category name finds them.
OBJECT_MEMBERS = frozenset({
    "constructor", "__proto__", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
    "toString", "toLocaleString", "valueOf", "__defineGetter__", "__defineSetter__",
    "__lookupGetter__", "__lookupSetter__",
})  # fmt: skip
START_TAG = re.compile(r"<[A-Za-z][^<>]*>")  # in sanitised HTML, values hold no raw < >
TEMPLATE_BRACE = re.compile(r"\{(?=[{%#])|(?<=[}%#])\}")
BRACE_REFERENCE = {"{": "&#123;", "}": "&#125;"}
# What may not stay as it is in a URL written into front matter: what ends or breaks out of
# an HTML attribute (quotes, angle brackets, backtick, whitespace), braces (template tags)
# and what RFC 3986 never allows unencoded.
URL_UNSAFE = re.compile(r"[\x00-\x20\"'<>\\^`{|}\x7f]")
# Look-alikes for what breaks out of an HTML attribute or a script's string, for themes that
# print titles unescaped (`{safe_title}`); `"` becomes opening and closing quotes in turn.
SAFE_TITLE = str.maketrans({"'": "’", "<": "‹", ">": "›", "`": "‘", "\\": "⧵"})
EXCERPT_CHARS = 300
# The fields a `front_matter` template may use (`DocumentOptions`), and what each is.
TEMPLATE_FIELDS = {
    "title": "the entry's title",
    "safe_title": "the title with quotes, < > ` and \\ as look-alikes (“ ” ’ ‹ › ‘ ⧵)",
    "author": "the entry's author, else the source's",
    "image": "the entry's first image, else the source's image (URL)",
    "link": "the entry's link (URL)",
    "excerpt": f"the entry's text, at most {EXCERPT_CHARS} characters, & < > escaped",
    "source": "the source's name",
    "source_title": "the source's title",
    "categories": "the categories (a list when the value is only {categories})",
}
FRONT_MATTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def document_name(source: str, identity: str, title: str, date: datetime) -> str:
    """`YYYY-MM-DD-<slug of the title>-<8 hex>.md`: readable, unique per (source, identity),
    and made of nothing a feed could turn into a path."""
    digest = hashlib.sha256(f"{source}\0{identity}".encode()).hexdigest()[:8]
    return f"{date:%Y-%m-%d}-{slugify(title, MAX_SLUG_BYTES, 'entry')}-{digest}.md"


# -- options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A front-matter value made of an entry's fields, such as `{image}` or
    `{title} ({source_title})`; `fields` are the names it uses (all in TEMPLATE_FIELDS)."""

    text: str
    fields: tuple[str, ...]


Constant = bool | int | float
FrontMatterValue = Template | tuple[Template, ...] | Constant | None


@dataclass(frozen=True)
class DocumentOptions:
    """How documents are written beyond their format, from config.yaml.

    `timezone`: an IANA zone name; dates are written as wall time there (what Hexo reads
    when its `timezone` is set). `front_matter`: keys in order, each with a template, a list
    of templates, a constant (true, 3), or None to leave the key out. A key of the format is
    replaced in its place; a new one goes after the format's keys."""

    timezone: str | None = None
    front_matter: tuple[tuple[str, FrontMatterValue], ...] = ()


DEFAULT_OPTIONS = DocumentOptions()


def parse_template(text: str) -> Template:
    """A template from config.yaml, checked: `{field}` names from TEMPLATE_FIELDS only, no
    conversions, formats or attribute access; `{{` and `}}` for literal braces. Raises
    ValueError saying what is wrong."""
    fields: list[str] = []
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a template: {exc} (write {{{{ for a brace)") from None
    known = ", ".join(TEMPLATE_FIELDS)
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            shown = "{" + field + "}"
            raise ValueError(f"unknown field {shown} in {text!r} (fields: {known})")
        if spec or conversion:
            raise ValueError(f"{text!r}: write fields as plain {{{field}}}, without ! or :")
        fields.append(field)
    return Template(text, tuple(dict.fromkeys(fields)))


def parse_front_matter_value(value: object) -> FrontMatterValue:
    """One value of config.yaml's `front_matter` mapping, checked (ValueError otherwise)."""
    if value is None or isinstance(value, bool | int | float):
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty (give null to leave the key out)")
        return parse_template(str(value))  # a plain str, not the YAML loader's subclass
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(parse_template(str(item)) for item in value)
    raise ValueError(
        'expected a template such as "{image}", a list of them, true/false, a number, '
        f"or null to leave the key out; got {type(value).__name__} {value!r}"
    )


# -- facts of an entry -----------------------------------------------------------------------


class EntryFacts:
    """What every format writes of an entry, decided once: one-line texts, attribute-safe
    URLs, the body with template tags defused."""

    def __init__(self, stored: StoredEntry, source: Source | None) -> None:
        entry = stored.entry
        self.source_title = (
            (source.title if source else None) or stored.source_title or entry.source
        )
        self.source = entry.source
        self.title = entry.title
        named = list(source.categories) if source and source.categories else [self.source_title]
        self.categories = [site_category(name, entry.source) for name in named]
        image = shown_image(entry, source)
        self.image = attribute_safe_url(image) if image else None
        self.link = attribute_safe_url(entry.link) if entry.link else None
        self.author = one_line(entry.author or "") or self.source_title
        self.content = entry.content

    @cached_property
    def body(self) -> str:
        return defuse_templates(quiet_attribute_angles(html_block(self.content)))

    @cached_property
    def excerpt(self) -> str:
        return excerpt_of(self.content)

    def field(self, name: str) -> str | list[str]:
        if name == "categories":
            return self.categories
        if name == "safe_title":
            return safe_title(self.title)
        return getattr(self, name) or ""


# -- YAML and text -----------------------------------------------------------------------------


def quoted(text: str) -> str:
    """A YAML string of one line. Single-quoted (only `'` needs escaping, doubled), unless
    it holds a template tag's opener or closer: then double-quoted with every brace as
    `\\x7B`/`\\x7D`, which YAML reads back as the braces."""
    text = one_line(text)
    if TEMPLATE_TOKEN.search(text):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + escaped.replace("{", "\\x7B").replace("}", "\\x7D") + '"'
    return "'" + text.replace("'", "''") + "'"


def scalar(text: str) -> str:
    """Plain when YAML would read it back as the same string, quoted otherwise."""
    text = one_line(text)
    if PLAIN_SCALAR.match(text) and text.lower() not in YAML_KEYWORDS:
        return text
    return quoted(text)


def yaml_list(items: Iterable[str]) -> str:
    """What follows `key:` for a block list of strings (`[]` when empty)."""
    lines = "".join(f"\n - {scalar(item)}" for item in items)
    return lines or " []"


def site_category(name: str, fallback: str) -> str:
    """`name` as a category a site generator can build a page for (`fallback`, the source's
    name, when it has no letter or digit). Hexo names a category's folder after it: past
    255 bytes its whole build failed (a source's title is its category by default, and 86
    Chinese characters are more); two names of punctuation alone wrote one page; and a
    name that is a member of every JavaScript object (`constructor`) failed its lookup."""
    text = one_line(name)
    if not any(char.isalnum() for char in text):
        text = one_line(fallback)
    if len(text.encode("utf-8")) > MAX_CATEGORY_BYTES:
        text = text.encode("utf-8")[: MAX_CATEGORY_BYTES - 3].decode("utf-8", "ignore")
        text = text.rstrip() + "…"
    if text in OBJECT_MEMBERS:
        text = text[0].upper() + text[1:] if text[0].isalpha() else "_" + text
    return text


def quiet_attribute_angles(html: str) -> str:
    """HTML whose attribute values hold no `<` or `>`, as look-alikes (‹ ›): themes read an
    image's `alt` or `title` into a caption as HTML (landscape, Hexo's default theme, did
    with `alt="&lt;img src=x onerror=…&gt;"`, and ran it)."""
    if "&lt;" not in html and "&gt;" not in html:
        return html
    return START_TAG.sub(_quiet_angles, html)


def _quiet_angles(tag: re.Match[str]) -> str:
    return tag.group(0).replace("&lt;", "‹").replace("&gt;", "›")


def defuse_templates(html: str) -> str:
    """HTML in which no template engine finds an opener or closer: their braces as
    character references, which a browser shows as the braces."""
    if "{" not in html and "}" not in html:
        return html
    return TEMPLATE_BRACE.sub(lambda match: BRACE_REFERENCE[match.group(0)], html)


def attribute_safe_url(url: str) -> str:
    """`url` with what could end an HTML attribute or open a template tag percent-encoded
    (UTF-8), and nothing else changed: the seed's `?w=770&resize=770%2C433` stays."""
    if URL_UNSAFE.search(url):
        url = URL_UNSAFE.sub(lambda match: f"%{ord(match.group(0)):02X}", url)
    if not url.isprintable():
        url = "".join(ch if ch.isprintable() else _percent(ch) for ch in url)
    return url


def _percent(ch: str) -> str:
    return "".join(f"%{byte:02X}" for byte in ch.encode("utf-8", "replace"))


def safe_title(title: str) -> str:
    """The title with what breaks out of an HTML attribute or a script's string replaced by
    look-alikes, for themes that print titles unescaped: “quotes”, ’, ‹ ›, ‘, ⧵."""
    text = one_line(title).translate(SAFE_TITLE)
    if '"' not in text:
        return text
    pieces = text.split('"')
    out = [pieces[0]]
    for index, piece in enumerate(pieces[1:]):
        out += ["“" if index % 2 == 0 else "”", piece]
    return "".join(out)


def excerpt_of(fragment: str) -> str:
    """The text of an entry's HTML on one line, at most EXCERPT_CHARS characters (cut at a
    space when there is one near the end, with an ellipsis), with `&`, `<`, `>` escaped:
    an excerpt is HTML to the generators (Jekyll's own is the first paragraph rendered) and
    themes print it as it is (minima, NexT's description), so text that reads `<script>`
    must not become one."""
    if not fragment:
        return ""
    # Imported when first needed: a pass in which nothing changed never loads lexbor
    # (~20 ms of its start, more from a cold disk cache).
    from selectolax.lexbor import LexborHTMLParser

    body = LexborHTMLParser(fragment).body
    text = one_line(body.text(separator=" ") if body is not None else "")
    if len(text) > EXCERPT_CHARS:
        cut = text[: EXCERPT_CHARS - 1]
        space = cut.rfind(" ")
        if space > EXCERPT_CHARS * 2 // 3:
            cut = cut[:space]
        text = cut.rstrip(" ,.;:·、，。") + "…"
    return html.escape(text, quote=False)


def wall_time(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


# -- composing a document -------------------------------------------------------------------

# A front-matter line as (key, what follows "key:"), e.g. ("title", " 'x'") or
# ("categories", "\n - a\n - b").
Line = tuple[str, str]


def compose(lines: Sequence[Line], facts: EntryFacts, options: DocumentOptions) -> str:
    """The whole document: the format's front matter as `options` change it, then the body."""
    if options.front_matter:
        lines = customise(lines, facts, options.front_matter)
    body = facts.body
    return "\n".join(
        [
            "---",
            *(f"{key}:{value}" for key, value in lines),
            "---",
            "",
            "<div>",
            *([body] if body else []),
            "</div>",
            "",
        ]
    )


def customise(
    lines: Sequence[Line], facts: EntryFacts, changes: Sequence[tuple[str, FrontMatterValue]]
) -> list[Line]:
    """The format's lines with config.yaml's `front_matter` applied: a key given None goes,
    a key of the format gets its new value in its place, other keys follow in their order.
    A template that uses a field this entry lacks (an image) leaves its key out."""
    values = {key: render_value(value, facts) for key, value in changes}
    result: list[Line] = []
    for key, text in lines:
        if key not in values:
            result.append((key, text))
        elif (new := values.pop(key)) is not None:
            result.append((key, new))
    result += [(key, text) for key, text in values.items() if text is not None]
    return result


def render_value(value: FrontMatterValue, facts: EntryFacts) -> str | None:
    """What follows `key:` for one configured value; None leaves the key out."""
    if value is None:
        return None
    if isinstance(value, bool):
        return " true" if value else " false"
    if isinstance(value, int | float):
        return f" {value!r}"
    if isinstance(value, Template):
        if value.text == "{categories}":
            return yaml_list(facts.categories) if facts.categories else None
        text = fill(value, facts)
        return None if text is None else f" {quoted(text)}"
    items = [text for text in (fill(template, facts) for template in value) if text]
    return yaml_list(items) if items else None


def fill(template: Template, facts: EntryFacts) -> str | None:
    """The template with the entry's fields, or None when one of them is empty."""
    values = {}
    for name in template.fields:
        found = facts.field(name)
        if not found:
            return None
        values[name] = ", ".join(found) if isinstance(found, list) else found
    return template.text.format_map(values)


# -- the Hexo format -----------------------------------------------------------------------


def render_document(
    stored: StoredEntry, source: Source | None, options: DocumentOptions = DEFAULT_OPTIONS
) -> str:
    """The whole document text for one entry in Hexo's format, front matter first."""
    facts = EntryFacts(stored, source)
    image = facts.image
    lines: list[Line] = [
        ("title", f" {quoted(facts.title)}"),
        ("categories", yaml_list(facts.categories)),
    ]
    if image:
        lines.append(("headimg", f" {quoted(image)}"))
    lines += [
        ("author", f" {scalar(facts.author)}"),
        ("comments", " false"),
        ("date", f" {hexo_date(stored.date, options.timezone)}"),
    ]
    if image:
        lines.append(("thumbnail", f" {quoted(image)}"))
    return compose(lines, facts, options)


def hexo_date(moment: datetime, zone: str | None) -> str:
    """RFC 822 in GMT (the seed's form); with a zone, its wall time without an offset, which
    is what Hexo reads right when its own `timezone` is that zone (it ignores any offset)."""
    if zone is None:
        return rfc822(moment)
    return f"{wall_time(moment, zone):%Y-%m-%d %H:%M:%S}"


# -- files ---------------------------------------------------------------------------------


# Errors of one document's own path: a directory where its file should be, a name the
# file system refuses. The others go on. Any other error (no space, no permission, a
# read-only disk) is the folder's or the disk's, and ends the writing.
ONE_DOCUMENT_ERRORS = {
    errno.EISDIR, errno.ENOTEMPTY, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL,
}  # fmt: skip

# Entries (ids) whose documents failed, each with the reason.
Failures = list[tuple[int, str]]


def shown_image(entry: Entry, source: Source | None) -> str | None:
    """The image a document shows for `entry`: its own, else its source's `image`."""
    return entry.image or (source.image if source else None)


def write_documents(
    folder: Path,
    stored: Iterable[StoredEntry],
    sources: Mapping[str, Source],
    render: Callable[[StoredEntry, Source | None], str] = render_document,
    only_if_changed: bool = True,
) -> tuple[list[int], Failures]:
    """Write each entry's document if its content changed; return the ids of the entries
    whose documents are now on disk, so the store can mark them done, and those that
    failed with why. `render` picks the front-matter format (see `document_formats`).
    `only_if_changed=False` skips reading the file first: for documents of new or changed
    entries, which almost never exist with the same text (looking up a missing file is a
    tenth of its creation's cost)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create documents folder {folder}: {exc}") from exc
    done: list[int] = []
    failed: Failures = []
    for item in stored:
        data = render(item, sources.get(item.entry.source)).encode("utf-8")
        try:
            path = safe_path(folder, item.document)
            write_atomic(path, data, only_if_changed=only_if_changed)
        except (OutputError, OSError) as exc:
            doing = f"cannot write document {folder / item.document}"
            failed.append((item.id, _own_failure(exc, doing)))
            continue
        done.append(item.id)
    return done, failed


def write_documents_of(
    database: Path,
    folder: Path,
    ids: Sequence[int],
    sources: Mapping[str, Source],
    render: Callable[[StoredEntry, Source | None], str] = render_document,
    only_if_changed: bool = True,
) -> tuple[list[int], Failures]:
    """`write_documents` for the entries `ids`, read from `database` here, in whichever
    process this runs (see store/reader.py). An entry deleted meanwhile has no document to
    write, and is neither done nor failed."""
    with contextlib.closing(open_reader(database)) as connection:
        entries = entries_by_id(connection, ids)
    return write_documents(folder, entries, sources, render, only_if_changed)


def _own_failure(exc: OutputError | OSError, doing: str) -> str:
    """Why one document failed, when it is that document's own failure; raise an
    OutputError that ends the writing when it is the folder's or the disk's."""
    if isinstance(exc, OutputError):
        return str(exc)
    problem = f"{doing}: {exc.strerror or exc}"
    if exc.errno not in ONE_DOCUMENT_ERRORS:
        raise OutputError(problem) from exc
    return problem


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


def remove_documents(folder: Path, names: Iterable[str]) -> tuple[int, list[tuple[str, str]]]:
    """Delete the documents of pruned, purged or superseded entries; a file already gone is
    fine. Return how many were removed, and the names that could not be, with why."""
    removed = 0
    failed: list[tuple[str, str]] = []
    for name in names:
        try:
            path = safe_path(folder, name)
            path.unlink()
        except FileNotFoundError:
            continue
        except (OutputError, OSError) as exc:
            failed.append((name, _own_failure(exc, f"cannot remove document {folder / name}")))
            continue
        removed += 1
    return removed, failed
