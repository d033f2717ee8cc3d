"""A fast reading of plain RSS 2.0 that gives exactly what feedparser gives, or nothing.

feedparser walks a feed through SAX callbacks in Python: ~18 ms of CPU for a feed of 50
entries, a third of a cold poll. Most real feeds are plain, well-formed RSS 2.0 (RSSHub's,
WordPress's), and for those lxml builds the whole tree in C in well under a millisecond.
This module reads such a feed with lxml and repeats, for the elements `parse` uses, what
feedparser does to their text (strip, relative links against the base, its UTF-8 mojibake
repair, its Windows-1252 mapping, guid as link, the order rules of description and
content:encoded). Encoding detection, DOCTYPE handling, base URI and date parsing are
feedparser's own functions, called as feedparser calls them.

Anything outside that narrow shape (another element, an attribute, a namespace, markup
inside an element, a duplicate, a document lxml or feedparser's encoding step finds fault
with) returns None, and the caller hands the feed to feedparser: broken and unusual feeds
keep feedparser's recovery. tests/test_parse_fast.py checks that both give the same entries
on every feed of the test corpus and on generated ones.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.encodings import convert_to_utf8
from feedparser.exceptions import CharacterEncodingOverride, NonXMLContentType
from feedparser.html import _cp1252
from feedparser.sanitizer import replace_doctype
from feedparser.urls import _urljoin, make_safe_absolute_uri
from feedparser.util import FeedParserDict
from lxml import etree

CONTENT = "http://purl.org/rss/1.0/modules/content/"
DUBLIN_CORE = "http://purl.org/dc/elements/1.1/"
ATOM = "http://www.w3.org/2005/atom"
# What feedparser keeps of a channel that `parse` reads; the rest of this list is ignored
# by both readers. image, skipHours and skipDays may hold their own plain children.
CHANNEL_READ = {"title", "link", "ttl", "managingeditor", "author", DUBLIN_CORE + "creator"}
CHANNEL_IGNORED = {
    "description", "language", "copyright", "lastbuilddate", "pubdate", "generator", "docs",
    "webmaster", "category", "rating", "image", "skiphours", "skipdays",
}  # fmt: skip
CHANNEL_NESTED = {"image", "skiphours", "skipdays"}
NESTED_CHILDREN = {"url", "title", "link", "width", "height", "description", "hour", "day"}
ITEM_ELEMENTS = {
    "title", "link", "description", "guid", "pubdate", "author", "category", "comments",
    "enclosure", CONTENT + "encoded", DUBLIN_CORE + "creator",
}  # fmt: skip
ATTRIBUTES = {
    "guid": {"ispermalink"},
    "category": {"domain"},
    "enclosure": {"url", "length", "type"},
}
REPEATABLE = {"category", "enclosure"}
# What feedparser's encoding step may note and still read the feed with its XML parser: a
# Content-Type that is not an XML one, an encoding other than the declared one. The note is
# kept in the result, as feedparser keeps it.
TOLERATED = (NonXMLContentType, CharacterEncodingOverride)
WINDOWS_1252_RANGE = re.compile("[\x80-\x9f]")  # the keys of feedparser's _cp1252
LINK_REFERENCE = re.compile("&([A-Za-z0-9_]+);")
PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, strip_cdata=True
)


class NotPlain(Exception):
    """The feed is outside what this reader repeats exactly: feedparser reads it."""


def parse_plain_rss(body: bytes, response_headers: Mapping[str, str]) -> Any | None:
    """feedparser's result (the parts `parse` reads) for a plain RSS 2.0 feed, else None.
    The feed and its entries are plain dicts under feedparser's own key names: `parse`
    reads no alias (`guid`, `description`...), and a dict's get is 10x cheaper."""
    result = FeedParserDict(bozo=False, entries=[], feed=FeedParserDict(), headers={})
    result["headers"].update(response_headers)
    try:
        data = convert_to_utf8(result["headers"], body, result)
        noted = result.get("bozo_exception")
        if not result.get("encoding") or (noted is not None and not isinstance(noted, TOLERATED)):
            return None  # feedparser would not use its XML parser
        version, data, entities = replace_doctype(data)
        if version or entities or b"<!DOCTYPE" in data[:4096]:
            return None
        location = result["headers"].get("content-location", "")
        base = make_safe_absolute_uri("", location) or make_safe_absolute_uri(location) or ""
        for _ in range(4):  # what feedparser does at each level down to an item's link
            base = make_safe_absolute_uri(base, base) or base
        root = etree.fromstring(data, PARSER)
        feed, entries = _read_rss(root, base)
    except Exception:  # NotPlain, a syntax error, or any fault in feedparser's helpers:
        return None  # feedparser's whole path decides what such a feed gives
    result["feed"] = feed
    result["entries"] = entries
    result["version"] = "rss20"
    return result


def _read_rss(root: Any, base: str) -> tuple[dict, list[dict]]:
    if root.tag != "rss" or set(root.attrib) != {"version"}:
        raise NotPlain
    if not root.attrib["version"].startswith("2.") or _has_text(root.text):
        raise NotPlain
    channels = list(root)
    if len(channels) != 1 or channels[0].tag != "channel" or channels[0].attrib:
        raise NotPlain
    feed: dict[str, Any] = {}
    entries = []
    seen: set[str] = set()
    for child in channels[0]:
        name = _name(child)
        if name == "item":
            if child.attrib or _has_text(child.text):
                raise NotPlain
            entries.append(_read_item(child, base))
            continue
        if name == ATOM + "link":  # RSSHub's self link; any other atom:link moves feed.link
            if child.get("rel", "").lower() != "self" or len(child) or _has_text(child.text):
                raise NotPlain
            continue
        if name in CHANNEL_NESTED:
            _check_nested(child)
            continue
        _check_plain(child, name)
        if name in CHANNEL_IGNORED:
            continue
        if name not in CHANNEL_READ or name in seen:
            raise NotPlain
        seen.add(name)
        text = (child.text or "").strip()
        if name == "link":
            feed["link"] = LINK_REFERENCE.sub(r"&\g<1>", _finish(_resolve(text, base)))
        elif name in ("title", "ttl"):
            feed[name] = _finish(text)
        elif "author" in feed:  # managingEditor, author and dc:creator all set it
            raise NotPlain
        else:
            feed["author"] = _finish(text)
    return feed, entries


def _read_item(item: Any, base: str) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    categories: list[str] = []
    links: list[dict[str, str]] = []
    for child in item:
        name = _name(child)
        if name not in ITEM_ELEMENTS or (name in seen and name not in REPEATABLE):
            raise NotPlain
        seen.add(name)
        _check_plain(child, name)
        text = (child.text or "").strip()
        if name == "enclosure":
            attributes = {key.lower(): value for key, value in child.attrib.items()}
            if "url" in attributes:
                attributes["href"] = attributes.pop("url")
            if "type" in attributes:
                attributes["type"] = attributes["type"].lower()
            links.append({**attributes, "rel": "enclosure"})
        elif name == "title":
            entry["title"] = _finish(text)
        elif name == "link":
            value = _finish(_resolve(text, base)).replace("&amp;", "&")
            entry["link"] = LINK_REFERENCE.sub(r"&\g<1>", value)
        elif name == "guid":
            permalink = {k.lower(): v for k, v in child.attrib.items()}.get("ispermalink", "true")
            value = _finish(_resolve(text, base) if permalink == "true" else text)
            entry["id"] = value
            if permalink == "true":
                entry.setdefault("link", value)
        elif name == "pubdate":
            entry["published"] = _finish(text)
            entry["published_parsed"] = _parse_date(entry["published"])
        elif name == "description":
            entry["summary"] = _finish(text)
        elif name == CONTENT + "encoded":
            value = _finish(text)
            entry["content"] = [{"value": value, "type": "text/html"}]
            entry.setdefault("summary", value)
        elif name in ("author", DUBLIN_CORE + "creator"):
            if "author" in entry:
                raise NotPlain
            entry["author"] = _finish(text)
        elif name == "category" and text:
            categories.append(_finish(text))
    if categories:
        entry["tags"] = [{"term": term, "scheme": None, "label": None} for term in categories]
    if links:
        entry["links"] = links
    return entry


def _name(element: Any) -> str:
    """feedparser's view of an element's name: the namespace and the name in lower case."""
    tag = element.tag
    if not isinstance(tag, str):  # a comment or a processing instruction
        raise NotPlain
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace.lower() + local.lower()
    return tag.lower()


def _check_plain(element: Any, name: str) -> None:
    """Text only, and no attribute but the few that `_read_item` reads."""
    if len(element):
        raise NotPlain
    if element.attrib:
        allowed = ATTRIBUTES.get(name, set())
        if any(key.lower() not in allowed for key in element.attrib):
            raise NotPlain


def _check_nested(element: Any) -> None:
    if element.attrib or _has_text(element.text):
        raise NotPlain
    for child in element:
        if _name(child) not in NESTED_CHILDREN:
            raise NotPlain
        _check_plain(child, "")
        if _has_text(child.tail):
            raise NotPlain


def _has_text(text: str | None) -> bool:
    return bool(text and text.strip())


def _resolve(uri: str, base: str) -> str:
    return _urljoin(base, uri) if uri else uri


def _finish(text: str) -> str:
    """What feedparser does to every text after reading it: repair UTF-8 read as Latin-1,
    map the Windows-1252 range to its characters."""
    if text.isascii():  # nothing to repair or map (the checks are C; the work is not)
        return text
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_cp1252) if WINDOWS_1252_RANGE.search(text) else text
