"""JSON Feed 1.0 and 1.1 sources read into what feedparser gives for RSS and Atom; no I/O.

feedparser 6 reads XML only: it reports a JSON Feed as a SAX error. This module reads one
into feedparser's own key names (`id`, `link`, `content`, `published_parsed`, `tags`,
`media_thumbnail`, enclosure `links`...), so `parse.normalise_entry` turns its items into
`Entry` values unchanged: they are cleaned, dated, identified and deduplicated exactly as
RSS and Atom entries are.

What a JSON Feed says is taken as written: an item's `id` is its identity as the publisher
wrote it (a number's own digits, `1.50` stays `1.50`), never resolved against a URL. Plain
text (`content_text`, `summary`) is escaped into HTML, since it is text, not markup. Dates
go through feedparser's own date parser, so a JSON Feed date reads as the same date would in
Atom.

The body is hostile input. A value of the wrong type (a number for a title, an object for a
list) costs that value only, and an item that is not an object costs that item; each is
counted and reported in the result's `bozo_exception`, as feedparser reports a malformed
XML feed it still read. Nesting deeper than the JSON reader's recursion limit, broken JSON
and JSON that is not a JSON Feed raise ParseError with the reason in plain words: no XML
parser could read a body that starts with `{`, so there is nothing to fall back to.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.util import FeedParserDict

from aggregator.errors import ParseError
from aggregator.models import MediaType

# The start of a JSON object, after an optional UTF-8 byte order mark and JSON whitespace.
JSON_START = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*(?=\{)")
VERSION_MARK = "jsonfeed.org/version/"
VERSIONS = {"1": "json1", "1.1": "json11"}  # later versions read as the newest known
CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
TRAILING = re.compile(r"[^ \t\r\n]")
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
LONGEST_DATE = 100  # characters; no date is longer, and feedparser tries many patterns
NAMED = 3  # wrong values named in the report; the rest are counted


class JsonFeedProblem(ValueError):
    """What was wrong in a JSON Feed that was still read: `parse` reports it as it reports
    feedparser's complaint about a malformed XML feed."""


class JsonNumber(str):
    """A JSON number kept as the digits written: an id of `1.50` or of 10**30 stays as the
    publisher wrote it, where float or int would change or refuse it; no field read here
    needs arithmetic."""


DECODER = json.JSONDecoder(parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=JsonNumber)


def read_json_feed(body: bytes, response_headers: Mapping[str, str]) -> FeedParserDict | None:
    """feedparser's result (the parts `parse` reads) for a JSON Feed; None when the body is
    not a JSON object, so the XML readers take it. ParseError when it is JSON but not a JSON
    Feed, or JSON that cannot be read."""
    start = JSON_START.match(body)
    if start is None:
        return None
    content_type = response_headers.get("content-type", "").lower()
    claims_feed = content_type.startswith(MediaType.JSON_FEED)
    reader = _Reader()
    text = reader.decode(body[start.end() :], content_type)
    document = _load(text, claims_feed, reader)
    version = _version(document, claims_feed)
    entries = [
        reader.entry(item, f"items[{index}]")
        for index, item in enumerate(reader.objects(document, "items", ""))
    ]
    if "items" not in document:
        reader.notes.append("no items")
    result = FeedParserDict(
        bozo=False,
        encoding="utf-8",
        entries=entries,
        feed=reader.feed(document),
        headers=dict(response_headers),
        version=version,
    )
    problem = reader.problem()
    if problem:
        result["bozo"] = True
        result["bozo_exception"] = JsonFeedProblem(problem)
    return result


def _load(text: str, claims_feed: bool, reader: _Reader) -> Any:
    try:
        document, end = DECODER.raw_decode(text)
    except RecursionError:  # json's C reader stops at the interpreter's recursion limit
        reason = "arrays or objects nested too deep"
    except ValueError as exc:  # JSONDecodeError: broken JSON
        reason = str(exc)
    else:
        if TRAILING.search(text, end):
            reader.notes.append("text after the JSON document ignored")
        return document
    if claims_feed or VERSION_MARK in text:
        raise ParseError(f"malformed JSON Feed ({reason})")
    raise ParseError(f"not a feed (broken JSON: {reason})")


def _version(document: Any, claims_feed: bool) -> str:
    """`json1` or `json11`; a document served as a JSON Feed that has items but forgot its
    version is read as one too."""
    version = document.get("version") if isinstance(document, dict) else None
    if type(version) is str and VERSION_MARK in version:
        return VERSIONS.get(version.rsplit("/", 1)[-1].strip(), VERSIONS["1.1"])
    if claims_feed and isinstance(document, dict) and isinstance(document.get("items"), list):
        return VERSIONS["1.1"]
    raise ParseError("not a feed (a JSON document that is not a JSON Feed)")


class _Reader:
    """Reads values of the expected type and counts the others, for one feed."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.wrong_named: list[str] = []  # the first few, for the report
        self.wrong_count = 0

    def decode(self, data: bytes, content_type: str) -> str:
        """JSON Feed is UTF-8. A feed in another encoding is read in the one its Content-Type
        declares, else with the undecodable bytes replaced; either is noted."""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        declared = CHARSET.search(content_type)
        if declared:
            try:
                text = data.decode(declared.group(1))
            except (LookupError, UnicodeDecodeError):
                pass
            else:
                self.notes.append(f"not UTF-8; read as {declared.group(1)}, as declared")
                return text
        self.notes.append("not valid UTF-8; undecodable bytes replaced")
        return data.decode("utf-8", errors="replace")

    def wrong(self, where: str, expected: str) -> None:
        self.wrong_count += 1
        if len(self.wrong_named) < NAMED:
            self.wrong_named.append(f"{where} is not {expected}")

    def problem(self) -> str | None:
        parts = list(self.notes)
        if self.wrong_count:
            named = ", ".join(self.wrong_named)
            more = self.wrong_count - len(self.wrong_named)
            parts.append(
                f"values of the wrong type ignored: {named}" + (f" and {more} more" if more else "")
            )
        return "; ".join(parts) or None

    def text(self, holder: dict[str, Any], key: str, where: str) -> str | None:
        """A string value, or None (counted when it is there with another type)."""
        value = holder.get(key)
        if value is None:
            return None
        if type(value) is str:  # not JsonNumber: a number is no title
            return _storable(value)
        self.wrong(_at(where, key), "a string")
        return None

    def objects(self, holder: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        """The objects in a list value; anything else in it is counted and dropped."""
        value = holder.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong(_at(where, key), "a list")
            return []
        found = []
        for index, member in enumerate(value):
            if isinstance(member, dict):
                found.append(member)
            else:
                self.wrong(f"{_at(where, key)}[{index}]", "an object")
        return found

    def feed(self, document: dict[str, Any]) -> dict[str, Any]:
        feed: dict[str, Any] = {}
        _put(feed, "title", self.text(document, "title", ""))
        _put(feed, "link", self.text(document, "home_page_url", ""))
        _put(feed, "author", self.author(document, ""))
        return feed

    def author(self, holder: dict[str, Any], where: str) -> str | None:
        """1.1's first author with a name, else 1.0's `author` (1.1 feeds often carry both)."""
        for index, person in enumerate(self.objects(holder, "authors", where)):
            name = self.text(person, "name", f"{_at(where, 'authors')}[{index}]")
            if name:
                return name
        person = holder.get("author")
        if isinstance(person, dict):
            return self.text(person, "name", _at(where, "author"))
        if person is not None:
            self.wrong(_at(where, "author"), "an object")
        return None

    def entry(self, item: dict[str, Any], where: str) -> dict[str, Any]:
        """One item under feedparser's key names, with only the keys that have a value."""
        entry: dict[str, Any] = {}
        _put(entry, "id", self.identity(item, where))
        link = self.text(item, "url", where)
        _put(entry, "link", link or self.text(item, "external_url", where))
        _put(entry, "title", self.text(item, "title", where))
        markup = self.text(item, "content_html", where)
        if markup:
            entry["content"] = [{"type": "text/html", "value": markup}]
        else:
            plain = self.text(item, "content_text", where)
            if plain:
                entry["content"] = [{"type": "text/html", "value": _paragraphs(plain)}]
        summary = self.text(item, "summary", where)
        if summary:
            entry["summary"] = html.escape(summary, quote=False)
        for key, name in (("date_published", "published"), ("date_modified", "updated")):
            written = self.text(item, key, where)
            if written:
                entry[name] = written
                _put(entry, f"{name}_parsed", _date(written))
        _put(entry, "author", self.author(item, where))
        tags = self.tags(item, where)
        if tags:
            entry["tags"] = [{"term": tag, "scheme": None, "label": None} for tag in tags]
        images = [self.text(item, key, where) for key in ("image", "banner_image")]
        thumbnails = [{"url": url} for url in images if url]
        if thumbnails:
            entry["media_thumbnail"] = thumbnails
        enclosures = self.enclosures(item, where)
        if enclosures:
            entry["links"] = enclosures
        return entry

    def identity(self, item: dict[str, Any], where: str) -> str | None:
        value = item.get("id")
        if value is None:
            return None
        if isinstance(value, str):  # a string, or a number as written
            return _storable(str(value))
        self.wrong(f"{where}.id", "a string or a number")
        return None

    def tags(self, item: dict[str, Any], where: str) -> list[str]:
        value = item.get("tags")
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong(f"{where}.tags", "a list")
            return []
        tags = []
        for index, tag in enumerate(value):
            if type(tag) is str:
                tags.append(_storable(tag))
            else:
                self.wrong(f"{where}.tags[{index}]", "a string")
        return tags

    def enclosures(self, item: dict[str, Any], where: str) -> list[dict[str, str]]:
        links = []
        for index, attachment in enumerate(self.objects(item, "attachments", where)):
            place = f"{where}.attachments[{index}]"
            url = self.text(attachment, "url", place)
            if not url:
                continue
            size = attachment.get("size_in_bytes")
            if size is not None and not isinstance(size, JsonNumber):
                self.wrong(f"{place}.size_in_bytes", "a number")
            links.append(
                {
                    "rel": "enclosure",
                    "href": url,
                    "type": self.text(attachment, "mime_type", place) or "",
                    "length": str(size) if isinstance(size, JsonNumber) else "",
                }
            )
        return links


def _at(where: str, key: str) -> str:
    """Where a value is, as a reader of the JSON would write it: `items[3].title`."""
    return f"{where}.{key}" if where else key


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _storable(text: str) -> str:
    """`text` with lone surrogates (a JSON `\\ud800` escape) replaced: no UTF-8 file, HTML
    cleaner or database row can hold them. Ordinary text is returned as it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")
    return text


def _paragraphs(text: str) -> str:
    """Plain text as HTML paragraphs: blank lines part them, line breaks are kept."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return "".join(
        "<p>" + html.escape(part.strip(), quote=False).replace("\n", "<br>") + "</p>"
        for part in PARAGRAPH_BREAK.split(text)
        if part.strip()
    )


def _date(written: str) -> Any:
    """An RFC 3339 date as feedparser gives one: a time.struct_time in UTC, else None."""
    if len(written) > LONGEST_DATE:
        return None
    try:
        return _parse_date(written.strip())
    except Exception:  # feedparser's date handlers promise not to raise; be sure anyway
        return None
