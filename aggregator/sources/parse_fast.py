"""A fast reading of plain RSS 2.0 and Atom 1.0 that gives exactly what feedparser gives, or
nothing.

feedparser walks a feed through SAX callbacks in Python: ~18 ms of CPU for a feed of 50
entries, a third of a cold poll. Most real feeds are plain, well-formed RSS 2.0 (RSSHub's,
WordPress's) or Atom 1.0 (Blogger's, GitHub's), and for those lxml builds the whole tree in
C in well under a millisecond. This module reads such a feed with lxml and repeats, for the
elements `parse` uses, what feedparser does to their text (strip, relative links against
the base, its UTF-8 mojibake repair, its Windows-1252 mapping, guid or id as link, the
order rules of summary and content, Atom's last alternate link and "name (email)"
authors). Encoding detection, DOCTYPE handling, base URI, URL joining and date parsing are
feedparser's own functions, called as feedparser calls them.

Anything outside that narrow shape (another element, an attribute, a namespace, markup
inside an element, a duplicate, xml:base, a name libxml2 and expat could read differently,
a document lxml or feedparser's encoding step finds fault with) returns None, and the
caller hands the feed to feedparser: broken and unusual feeds keep feedparser's recovery.
tests/test_parse_fast.py checks that both give the same entries on every feed of the test
corpus and on generated, hostile and mutated ones.
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

from aggregator.errors import ParseError

# Namespaces as `_name` writes them (lower case, in braces): a name is the namespace and
# the local name, so "{dc}creator" can never be taken for a look-alike namespace's element.
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DUBLIN_CORE = "{http://purl.org/dc/elements/1.1/}"
ATOM = "{http://www.w3.org/2005/atom}"
ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
HTML_TYPES = {"application/xhtml+xml", "text/html"}  # feedparser's html_types
TEXT_TYPES = {"text", "html", "text/plain", "text/html"}  # not xhtml: that is markup inside
ATOM_FEED_IGNORED = {"subtitle", "updated", "generator", "icon", "logo", "rights", "category"}
ATOM_ENTRY_IGNORED = {"rights"}
AUTHOR_PARTS = {"name", "email", "uri"}
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
NON_ASCII_PREFIX = re.compile(rb"xmlns:[^=\s>]*[\x80-\xff]")
LINK_REFERENCE = re.compile("&([A-Za-z0-9_]+);")
PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, strip_cdata=True
)


class NotPlain(Exception):
    """The feed is outside what this reader repeats exactly: feedparser reads it."""


def parse_plain_feed(body: bytes, response_headers: Mapping[str, str]) -> Any | None:
    """feedparser's result (the parts `parse` reads) for a plain RSS 2.0 or Atom 1.0 feed,
    else None.
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
        if NON_ASCII_PREFIX.search(data):
            return None
        root = etree.fromstring(data, PARSER)
        _check_names(root)
        if root.tag == ATOM_FEED:
            version, (feed, entries) = "atom10", _read_atom(root, base)
        else:
            version, (feed, entries) = "rss20", _read_rss(root, base)
    except etree.XMLSyntaxError as exc:
        if "Excessive depth" in str(exc):
            # No feed nests elements 256 deep; feedparser would walk every level in Python
            # (a million of them took it 29 s).
            raise ParseError("not a feed (elements nested more than 256 deep)") from None
        return None  # feedparser's whole path decides what such a feed gives
    except Exception:  # NotPlain, or any fault in feedparser's helpers: the same
        return None
    result["feed"] = feed
    result["entries"] = entries
    result["version"] = version
    return result


def _check_names(root: Any) -> None:
    """What libxml2 and expat (feedparser's parser) could disagree on, refused: names
    outside ASCII (libxml2 follows XML 1.0's fifth edition, expat the fourth), prefixed
    attribute names (an undeclared prefix is an error to expat only), and processing
    instructions or comments anywhere."""
    if next(root.itersiblings(preceding=True), None) is not None:
        raise NotPlain
    if next(root.itersiblings(), None) is not None:
        raise NotPlain
    for element in root.iter():
        tag = element.tag
        if not isinstance(tag, str) or not tag.isascii():
            raise NotPlain
        prefix = element.prefix
        if prefix is not None and not prefix.isascii():
            raise NotPlain
        for key in element.attrib:
            if key != XML_LANG and (":" in key or "{" in key or not key.isascii()):
                raise NotPlain


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
            value = _finish(text)  # an id as written: see parse.py on `can_be_relative_uri`
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


# -- Atom 1.0 ---------------------------------------------------------------------------------


def _read_atom(root: Any, base: str) -> tuple[dict, list[dict]]:
    if set(root.attrib) - {XML_LANG} or _has_text(root.text):
        raise NotPlain
    feed: dict[str, Any] = {}
    entries = []
    seen: set[str] = set()
    for child in root:
        name = _atom_name(child)
        if name == "entry":
            if set(child.attrib) - {XML_LANG} or _has_text(child.text):
                raise NotPlain
            entries.append(_read_entry(child, base))
        elif name == "link":
            _read_link(child, base, feed)
        elif name in ATOM_FEED_IGNORED:
            _check_ignored(child)
        elif name in seen:
            raise NotPlain
        else:
            seen.add(name)
            _read_atom_common(child, name, base, feed)
    return feed, entries


def _read_entry(element: Any, base: str) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    tags: list[dict[str, str | None]] = []
    for child in element:
        name = _atom_name(child)
        if name == "link":
            _read_link(child, base, entry)
        elif name == "category":
            attributes = _attributes(child)
            if len(child) or _has_text(child.text) or set(attributes) - {"term", "scheme", "label"}:
                raise NotPlain
            tag = {key: attributes.get(key) for key in ("term", "scheme", "label")}
            if any(tag.values()) and tag not in tags:
                tags.append(tag)
        elif name in ATOM_ENTRY_IGNORED:
            _check_ignored(child)
        elif name in seen:
            raise NotPlain
        else:
            seen.add(name)
            if name in ("summary", "content"):
                text = _text_construct(child)
                if name == "summary":
                    entry["summary"] = text
                else:
                    entry["content"] = [{"value": text, "type": "text/html"}]
                    entry.setdefault("summary", text)
            elif name in ("updated", "published"):
                _check_text_only(child)
                entry[name] = _finish((child.text or "").strip())
                entry[f"{name}_parsed"] = _parse_date(entry[name])
            else:
                _read_atom_common(child, name, base, entry)
    if tags:
        entry["tags"] = tags
    return entry


def _read_atom_common(element: Any, name: str, base: str, context: dict[str, Any]) -> None:
    """What a feed and an entry share: title, id (which is also the link until a real one
    comes), author."""
    if name == "title":
        context["title"] = _text_construct(element)
    elif name == "id":
        if _attributes(element):  # an xml:base here would move the id's own base
            raise NotPlain
        _check_text_only(element)
        value = _finish((element.text or "").strip())  # as written, like a guid
        context["id"] = value
        context.setdefault("link", value)
    elif name == "author":
        context["author"] = _read_author(element)
    else:
        raise NotPlain


def _read_link(element: Any, base: str, context: dict[str, Any]) -> None:
    """feedparser's `_start_link`: the last alternate HTML link is the link."""
    attributes = _attributes(element)
    if len(element) or _has_text(element.text):
        raise NotPlain
    for key in ("rel", "type"):
        if key in attributes:
            attributes[key] = attributes[key].lower()
    rel = attributes.setdefault("rel", "alternate")
    kind = attributes.setdefault("type", "application/atom+xml" if rel == "self" else "text/html")
    href = attributes.get("url", attributes.get("uri", attributes.get("href")))
    if href:
        attributes.pop("url", None)
        attributes.pop("uri", None)
        attributes["href"] = href
    if "href" not in attributes:
        raise NotPlain  # the link is the element's text then: rare, feedparser's business
    attributes["href"] = _urljoin(base, attributes["href"])
    context.setdefault("links", []).append(attributes)
    if rel == "alternate" and _content_type(kind) in HTML_TYPES:
        context["link"] = attributes["href"]


def _read_author(element: Any) -> str:
    """feedparser's `_sync_author_detail`: "name (email)", the name, the email, or else the
    author element's own text. Names and emails are only stripped (feedparser reads them
    without its text repairs)."""
    if _attributes(element):
        raise NotPlain
    parts: dict[str, str] = {}
    own = [element.text or ""]
    for child in element:
        name = _atom_name(child)
        if name not in AUTHOR_PARTS or name in parts:
            raise NotPlain
        _check_text_only(child)
        parts[name] = (child.text or "").strip()
        own.append(child.tail or "")
    name, email = parts.get("name"), parts.get("email")
    if name and email:
        return f"{name} ({email})"
    return name or email or _finish("".join(own).strip())


def _text_construct(element: Any) -> str:
    attributes = _attributes(element)
    if set(attributes) - {"type"} or attributes.get("type", "text").lower() not in TEXT_TYPES:
        raise NotPlain  # xhtml (markup inside), another media type, or a src
    _check_text_only(element)
    return _finish((element.text or "").strip())


def _content_type(kind: str) -> str:
    """feedparser's `map_content_type`."""
    kind = kind.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html"}.get(
        kind, "application/xhtml+xml" if kind == "xhtml" else kind
    )


def _atom_name(element: Any) -> str:
    name = _name(element)
    if not name.startswith(ATOM):
        raise NotPlain
    return name[len(ATOM) :]


def _attributes(element: Any) -> dict[str, str]:
    """An element's attributes as feedparser names them (lower case), without `xml:lang`;
    an `xml:base` or a namespaced attribute is beyond this reader."""
    attributes = {}
    for key, value in element.attrib.items():
        if key == XML_LANG:
            continue
        if key.startswith("{"):
            raise NotPlain
        attributes[key.lower()] = value
    return attributes


def _check_ignored(element: Any) -> None:
    """An element both readers skip: any attributes, but no markup inside and no xml:base."""
    if len(element) or XML_BASE in element.attrib:
        raise NotPlain


def _check_text_only(element: Any) -> None:
    if len(element):
        raise NotPlain


def _name(element: Any) -> str:
    """feedparser's view of an element's name: the namespace and the name in lower case."""
    tag = element.tag
    if not isinstance(tag, str):  # a comment or a processing instruction
        raise NotPlain
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return f"{{{namespace.lower()}}}{local.lower()}"
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
