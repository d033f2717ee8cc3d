"""Fetched bytes -> normalised `Entry` values, with feedparser; no I/O.

feedparser's own sanitiser and relative-URI resolution are switched off: the sanitiser strips
the `referrerpolicy`, `loading` and `srcset` the document format needs and is most of
feedparser's run time. `sanitize` cleans each entry once instead.
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser
import feedparser.encodings
import feedparser.mixin

from aggregator.errors import ParseError
from aggregator.models import Entry, ParsedFeed, Source
from aggregator.sources.markup_bounds import within_bounds
from aggregator.sources.parse_fast import parse_plain_feed
from aggregator.sources.parse_json import read_json_feed
from aggregator.sources.sanitize import absolute_url, clean_html, plain_text, valid_url
from aggregator.text import XML_INVALID, decimal_number

IMAGE_TYPES = ("image/",)
# feedparser's fallbacks when the declared encoding fails (single-byte, Latin script); and
# the encodings (as `codecs` names them) a detector may find instead: the legacy CJK ones
# real feeds are mislabelled in, and the single-byte ones of other scripts (Cyrillic, Greek,
# Hebrew, Arabic, Thai), whose letters a Latin fallback turns into accented junk.
LAST_RESORT_ENCODINGS = {"windows-1252", "iso-8859-2"}
DETECTABLE_ENCODINGS = {
    codecs.lookup(name).name
    for name in (
        "gb18030", "gbk", "gb2312", "hz", "big5", "big5hkscs", "cp950",
        "shift_jis", "cp932", "euc_jp", "iso2022_jp", "euc_kr", "cp949", "johab",
        "koi8_r", "koi8_u", "cp1251", "iso8859_5", "cp866", "mac_cyrillic",
        "cp1253", "iso8859_7", "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp874", "tis_620",
    )
}  # fmt: skip
DETECT_BYTES = 256 * 1024
# An entry's id is its identity, and must be what the publisher wrote: feedparser resolves a
# guid or Atom id that is not a URL (`<guid>12345</guid>`, Reddit's `t3_42r7mv`) against the
# feed's own URL, so the same item got a second identity when the feed moved. `id` is the only
# element taken out of feedparser's resolution (links, enclosures and images are still
# resolved); tests/test_parse.py holds feedparser to it.
feedparser.mixin._FeedParserMixin.can_be_relative_uri = (
    feedparser.mixin._FeedParserMixin.can_be_relative_uri - {"id"}
)
# feedparser guesses an undecodable feed's encoding with chardet whenever chardet happens to
# be installed (readability-lxml brings it): then a GBK feed declared as UTF-8 came out as
# ISO-8859-1 mojibake with no warning, where without it feedparser falls back to
# windows-1252, which `_misread_encoding` knows to read again with our own detector. Reading
# must not depend on what else is installed; tests/test_parse.py holds feedparser to it.
feedparser.encodings.lazy_chardet_encoding = None


# Dates before this are a broken feed's zero value, not news; after now+1 day, a typo.
EARLIEST = datetime(1980, 1, 1, tzinfo=UTC)
MAX_TTL_MINUTES = 366 * 24 * 60


def parse_feed(
    body: bytes,
    source: Source,
    url: str,
    headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
    *,
    fast: bool = True,
) -> ParsedFeed:
    """Parse one feed document into entries; raise ParseError when nothing is recoverable.
    `fast=False` always takes feedparser's own path (tests compare the two)."""
    response_headers = {"content-location": url}
    if headers:
        for key in ("content-type", "content-language"):
            if key in headers:
                response_headers[key] = headers[key]
    refused = _quadratic_encoding(body, response_headers)
    if refused:
        raise ParseError(f"not a feed (it says it is encoded as {refused!r}, which no feed is)")
    body = _drop_invalid_references(_defuse_entities(body))
    # A body starting with `{` is JSON: read as a JSON Feed, or refused in plain words.
    parsed = (
        read_json_feed(body, response_headers)
        or (fast and parse_plain_feed(body, response_headers))
        or _feedparser(body, response_headers)
    )
    misread = _misread_encoding(parsed)
    if misread:
        guess = _detected_encoding(body)
        if guess:
            charset = {"content-type": f"application/xml; charset={guess}"}
            parsed = _feedparser(body, {**response_headers, **charset})
        read_as = guess or f"{parsed.get('encoding')}; text may be garbled"
        if _declares_encoding(body, response_headers):
            misread = f"wrong encoding: declared as {misread}, read as {read_as}"
        else:
            misread = f"no encoding declared and not UTF-8 (the default): read as {read_as}"
    problem = "; ".join(filter(None, [misread, _bozo_message(parsed)])) or None
    version = parsed.get("version") or ""
    if not parsed.entries and (problem or not version):
        raise ParseError(
            _not_a_feed(body)
            or problem
            or "not a feed (no RSS, Atom, RDF or JSON Feed document found)"
        )
    feed = parsed.feed
    feed_link = absolute_url(feed.get("link"), url) or url
    feed_author = plain_text(feed.get("author")) or None
    now = now or datetime.now(UTC)
    entries: dict[str, Entry] = {}
    skipped: list[str] = []
    as_text = 0
    for raw in parsed.entries:
        try:
            entry = normalise_entry(raw, source, feed_link, feed_author, now)
        except Exception as exc:  # a library's bug on one hostile entry costs that entry only
            skipped.append(f"{type(exc).__name__}: {exc}")
            continue
        if "<" not in entry.content:  # what clean_html leaves of markup kept as text
            original = _longest_content(raw)
            as_text += "<" in original and not within_bounds(original)
        entries.setdefault(entry.identity, entry)  # first wins: feeds list newest first
    if skipped:
        count = f"{len(skipped)} entries" if len(skipped) > 1 else "1 entry"
        note = f"{count} could not be read ({skipped[0][:200]})"
        if not entries:
            raise ParseError(note)
        problem = f"{problem}; {note}" if problem else note
    if as_text:
        count = f"{as_text} entries" if as_text > 1 else "1 entry"
        note = f"{count} nested or reopened HTML elements beyond any article; kept as text"
        problem = f"{problem}; {note}" if problem else note
    return ParsedFeed(
        entries=tuple(entries.values()),
        title=plain_text(feed.get("title")) or None,
        link=feed_link,
        author=feed_author,
        ttl=_ttl(feed.get("ttl")),
        error=problem,
    )


def normalise_entry(
    raw: Mapping[str, Any],
    source: Source,
    feed_link: str,
    feed_author: str | None,
    now: datetime,
) -> Entry:
    """One feedparser entry as an `Entry`; pure, so it can be tested without a feed."""
    resolved = absolute_url(raw.get("link"), feed_link)
    # FeedBurner's proxy links are dead since 2021; its origLink is the article's own.
    link = valid_url(absolute_url(raw.get("feedburner_origlink"), feed_link) or resolved)
    base = link or feed_link
    title = plain_text(raw.get("title"))
    # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed.
    published = _date(dict.get(raw, "published_parsed"), now)
    updated = _date(dict.get(raw, "updated_parsed"), now)
    content, content_image = clean_html(_longest_content(raw), base)
    # After cleaning, since HTML references (`&#1;`) decode to them too.
    content = XML_INVALID.sub("", content)
    # The link as read (not as published) when there is no id: what earlier releases kept.
    identity = (raw.get("id") or "").strip() or resolved
    if not identity:
        stamp = (published or updated).isoformat() if (published or updated) else ""
        known_as = plain_text(raw.get("title"), as_of_0_3=True)
        digest = hashlib.sha256(f"{known_as}\0{stamp}\0{content}".encode()).hexdigest()
        identity = f"sha256:{digest[:32]}"
    author = plain_text(raw.get("author")) or source.author or feed_author
    if not title:
        title = _title_from_content(content) or link or "(untitled)"
    return Entry(
        source=source.name,
        identity=identity,
        link=link,
        title=title,
        author=author,
        published=published,
        updated=updated,
        content=content,
        image=content_image or _media_image(raw, base),
        categories=_categories(raw),
    )


# feedparser re-declares the plain-text entities of an internal DTD subset for its lenient
# fallback parser, which expands them without expat's amplification limit: a 100 kB entity
# used 50,000 times is 5 GB. Only character-reference entities (`<!ENTITY nbsp "&#160;">`)
# cannot expand beyond their reference, so they are the only declarations kept. The head and
# the declaration pattern are feedparser's own (`sanitizer.replace_doctype`).
ENTITY_DECLARATION = re.compile(r"<!ENTITY([^>]*?)>")
CHARACTER_ENTITY = re.compile(r"\s+\w+\s+(\"&#(\d+|x[0-9A-Fa-f]+);\"|'&#(\d+|x[0-9A-Fa-f]+);')\s*")
FIRST_ELEMENT = re.compile(r"<\w", re.ASCII)
# The only character references that can be invalid (the rest, such as &#20013;, never reach
# Python): one or two digits (controls), surrogates, U+FFFE/FFFF, and beyond U+10FFFF.
SUSPECT_REFERENCE = re.compile(
    rb"&#(?:[xX]0*([0-9a-fA-F]{1,2}|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF]|[0-9a-fA-F]{6,})"
    rb"|0*(\d{1,2}|5[5-7]\d{3}|6553[45]|\d{7,}));"
)
WIDE_ENCODINGS = (  # (how the document starts, codec, BOM bytes to keep)
    (b"\xff\xfe\x00\x00", "utf-32-le", 4),
    (b"\x00\x00\xfe\xff", "utf-32-be", 4),
    (b"\xff\xfe", "utf-16-le", 2),
    (b"\xfe\xff", "utf-16-be", 2),
    (b"<\x00\x00\x00", "utf-32-le", 0),
    (b"\x00\x00\x00<", "utf-32-be", 0),
    (b"<\x00", "utf-16-le", 0),
    (b"\x00<", "utf-16-be", 0),
)


def _defuse_entities(body: bytes) -> bytes:
    """`body` without entity declarations that could expand to more than their reference."""
    codec, bom = "latin-1", 0  # latin-1 maps bytes to characters one to one
    for start, wide, length in WIDE_ENCODINGS:
        if body.startswith(start):
            codec, bom = wide, length
            break
    if codec == "latin-1" and b"<!ENTITY" not in body:
        return body
    text = body[bom:].decode(codec, errors="replace")
    first = FIRST_ELEMENT.search(text)
    end = first.start() + 1 if first else len(text)
    head = ENTITY_DECLARATION.sub(
        lambda match: match.group(0) if CHARACTER_ENTITY.fullmatch(match.group(1)) else "",
        text[:end],
    )
    if head == text[:end]:
        return body
    return body[:bom] + (head + text[end:]).encode(codec, errors="replace")


# How an HTML page starts, with or without its optional <html> (an IIS "Document Moved"
# page begins with <head>), and markup no feed has at its top.
HTML_START = re.compile(rb"<(?:!doctype\s+html|html|head|body|title|meta|h1|p|div|center)[\s>]")
XML_DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*\bencoding\s*=", re.IGNORECASE)
XML_ENCODING_NAME = re.compile(rb"^<\?xml[^>]*\bencoding\s*=\s*[\"']([^\"'>]{1,64})", re.IGNORECASE)
CHARSET_NAME = re.compile(r"charset\s*=\s*[\"']?([^\"';,\s]{1,64})", re.IGNORECASE)
# Python's decoders of these take time quadratic in the text; no feed is written in one.
QUADRATIC_CODECS = {"punycode", "idna"}


def _not_a_feed(body: bytes) -> str | None:
    """What a body that is no feed is instead, in words a user can act on; None when it
    looks like a feed document (then what is wrong with it is the parser's complaint)."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "not a feed (an empty answer)"
    if HTML_START.match(head) or b"<html" in head:
        return "not a feed (an HTML page; give the feed's own URL)"
    if not head.startswith((b"<", b"{", b"[")) and b"<" not in head[:256]:
        text = " ".join(body[:200].decode("utf-8", "replace").split())
        return f"not a feed (plain text: {text[:80]!r})"
    return None


def _quadratic_encoding(body: bytes, headers: Mapping[str, str]) -> str | None:
    """The encoding the answer says it is in, when Python decodes it in quadratic time: a
    feed encoded as punycode (2.5 MB) took the parsers 14 minutes to read."""
    declared = CHARSET_NAME.search(headers.get("content-type", ""))
    prolog = XML_ENCODING_NAME.match(body.lstrip()[:200])
    names = [declared.group(1) if declared else None]
    names.append(prolog.group(1).decode("latin-1") if prolog else None)
    for name in filter(None, names):
        try:
            if codecs.lookup(name).name in QUADRATIC_CODECS:
                return name
        except LookupError:
            continue
    return None


def _declares_encoding(body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the answer says its encoding: a charset, a byte-order mark or a prolog."""
    if "charset=" in headers.get("content-type", "").lower():
        return True
    if body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    return bool(XML_DECLARED_ENCODING.match(body.lstrip()[:200]))


def _drop_invalid_references(body: bytes) -> bytes:
    """`body` without character references to what XML forbids: a lone surrogate (`&#xD800;`)
    makes feedparser's lenient parser raise and lose the whole feed, a control character
    makes expat give up on an otherwise good one."""
    return SUSPECT_REFERENCE.sub(_keep_if_valid, body)


def _keep_if_valid(match: re.Match[bytes]) -> bytes:
    hexadecimal, decimal = match.groups()
    code = int(hexadecimal, 16) if hexadecimal is not None else int(decimal)
    valid = (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )
    return match.group(0) if valid else b""


def _feedparser(body: bytes, response_headers: Mapping[str, str]) -> Any:
    try:
        return feedparser.parse(
            body,
            response_headers=dict(response_headers),
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser promises never to raise; be sure anyway.
        raise ParseError(f"feedparser failed: {exc}") from exc


def _misread_encoding(parsed: Any) -> str | None:
    """The declared encoding when it did not decode the bytes and feedparser fell back to a
    Western single-byte encoding, which never fails but garbles any other script."""
    exc = parsed.get("bozo_exception")
    if isinstance(exc, feedparser.CharacterEncodingOverride) and (
        parsed.get("encoding") in LAST_RESORT_ENCODINGS
    ):
        declared = re.search(r"declared as (\S+),", str(exc))
        return declared.group(1) if declared else "another"
    return None


def _detected_encoding(body: bytes) -> str | None:
    """The encoding a detector finds in `body`, if it is one of `DETECTABLE_ENCODINGS`.
    feedparser's last resort is a Latin single-byte encoding, so a multi-byte finding, or
    one whose letters are of another script, is more likely to be right; a Latin finding
    would only trade one guess for another."""
    import charset_normalizer  # only for the rare mislabelled feed: 4 MB a parser process

    best = charset_normalizer.from_bytes(body[:DETECT_BYTES]).best()
    if best is None:
        return None
    try:
        name = codecs.lookup(best.encoding).name
    except LookupError:
        return None
    return name if name in DETECTABLE_ENCODINGS else None


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    # A declared/actual encoding mismatch is recovered from completely; not worth a warning.
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return None
    name = type(exc).__name__ if exc is not None else "error"
    text = str(getattr(exc, "getMessage", lambda: exc)()) if exc is not None else ""
    return f"malformed feed ({name}: {text})" if text else f"malformed feed ({name})"


def _longest_content(raw: Mapping[str, Any]) -> str:
    candidates = [item.get("value") or "" for item in raw.get("content") or []]
    candidates.append(raw.get("summary") or "")
    best = max(candidates, key=len)
    return best.strip()


def _date(value: Any, now: datetime) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        return None
    if moment < EARLIEST:
        return None
    # A date in the future is clamped so that it cannot pin an entry to the top of the feed.
    return min(moment, now)


def _media_image(raw: Mapping[str, Any], base: str) -> str | None:
    for key in ("media_thumbnail", "media_content"):
        for item in raw.get(key) or []:
            medium = item.get("medium") or ""
            kind = item.get("type") or ""
            if key == "media_thumbnail" or medium == "image" or kind.startswith(IMAGE_TYPES):
                url = valid_url(absolute_url(item.get("url"), base))
                if url:
                    return url
    for link in raw.get("links") or []:
        if link.get("rel") == "enclosure" and (link.get("type") or "").startswith(IMAGE_TYPES):
            url = valid_url(absolute_url(link.get("href"), base))
            if url:
                return url
    return None


def _categories(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """The tags' names, each once, in order (a dict keeps both in linear time)."""
    names = (plain_text(tag.get("label") or tag.get("term")) for tag in raw.get("tags") or [])
    return tuple(dict.fromkeys(name for name in names if name))


def _title_from_content(content: str, limit: int = 80) -> str:
    text = plain_text(content)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _ttl(value: Any) -> int | None:
    """The feed's `<ttl>` in seconds: whole minutes, at most a year (23 digits overflowed
    SQLite's integer and stopped the pass; the schedule caps any hint at `max_interval`)."""
    minutes = decimal_number(None if value is None else str(value), MAX_TTL_MINUTES)
    return minutes * 60 if minutes else None
