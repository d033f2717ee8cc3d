"""A fast reading of plain RSS 2.0, RSS 1.0 (RDF) and Atom 1.0 that gives exactly what
feedparser gives, or nothing.

feedparser walks a feed through SAX callbacks in Python: ~18 ms of CPU for a feed of 50
entries, a third of a cold poll. Most real feeds are well-formed RSS 2.0 (RSSHub's,
WordPress's, newspapers', podcasts') or Atom 1.0 (Blogger's, GitHub's, Reddit's), and for
those lxml builds the whole tree in C in well under a millisecond. This module reads such a
feed with lxml and repeats, for the elements `parse` uses, what feedparser does to their
text (strip, relative links against the base, its UTF-8 mojibake repair, its Windows-1252
mapping, guid or id as link, the order rules of summary and content, the first title,
Atom's last alternate link and "name (email)" authors). Encoding detection, DOCTYPE
handling, base URI, URL joining, date parsing and the merging of a feed's author details
are feedparser's own functions, called as feedparser calls them.

Extension elements are named as feedparser names them (its prefix for a namespace it
knows, the document's for one it does not) and then: read as feedparser's handler for them
reads them when `parse` uses the result (content:encoded, dc:creator/date/subject/title/
description, dcterms dates, atom:link, media:content/thumbnail/group/title/description,
itunes:author/summary/keywords/owner, feedburner:origLink); skipped when feedparser has no
handler for them (it only stores them, under a name `parse` never reads: slash:, wfw:, sy:,
thr:, podcast:, itunes:duration...) or a handler whose result `parse` never reads
(itunes:image, georss:point...); declined otherwise.

Anything outside that shape (an unknown element or attribute, markup inside an element, a
second author, xml:base below an Atom entry, namespaces bound in ways that make feedparser
name elements otherwise, a name libxml2 and expat could read differently, a document lxml
or feedparser's encoding step finds fault with) returns None, and the caller hands the feed
to feedparser: broken and unusual feeds keep feedparser's recovery. tests/test_parse_fast.py
and tests/test_parse_fast_extensions.py check that both give the same entries on every
feed of the test corpus and on generated, hostile and mutated ones.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import feedparser.api
import feedparser.mixin
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
DUBLIN_TERMS = "{http://purl.org/dc/terms/}"
MEDIA = ("{http://search.yahoo.com/mrss/}", "{http://search.yahoo.com/mrss}")
ATOM = "{http://www.w3.org/2005/atom}"
ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
ATOM_ENTRY = "{http://www.w3.org/2005/Atom}entry"
XHTML = "{http://www.w3.org/1999/xhtml}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RDF_ROOT = RDF + "RDF"
RDF_ABOUT, RDF_RESOURCE = RDF + "about", RDF + "resource"
RSS1_URI = "http://purl.org/rss/1.0/"  # feedparser's prefix for it is "": `title` is a title
# What RSS 1.0 lists of its items inside the channel (<items><rdf:Seq><rdf:li rdf:resource>):
# feedparser only stores it, under names `parse` never reads.
RDF_LIST = {RDF.lower() + name for name in ("seq", "bag", "alt", "li")}
QUOTE = {'"': "&quot;"}
# Elements that may declare a namespace (FeedBurner's atom10:link, Blogger's media:thumbnail):
# feedparser adds the declaration to their attributes, which `parse` reads by name only.
INLINE_DECLARATIONS = {ATOM_LINK} | {
    f"{{http://search.yahoo.com/{uri}}}{name}"
    for uri in ("mrss/", "mrss")
    for name in ("content", "thumbnail")
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
HTML_TYPES = {"application/xhtml+xml", "text/html"}  # feedparser's html_types
TEXT_TYPES = {"text", "html", "text/plain", "text/html"}  # not xhtml: that is markup inside
ATOM_FEED_IGNORED = {"subtitle", "updated", "generator", "icon", "logo", "rights", "category"}
ATOM_ENTRY_IGNORED = {"rights"}
AUTHOR_PARTS = {"name", "email", "uri"}
# What feedparser keeps of a channel that `parse` reads; the rest of this list is ignored
# by both readers. image, skipHours and skipDays may hold their own plain children.
CHANNEL_READ = {
    "title", "link", "ttl", "managingeditor", "author", DUBLIN_CORE + "creator", "itunes_author",
}  # fmt: skip
CHANNEL_IGNORED = {
    "description", "language", "copyright", "lastbuilddate", "pubdate", "generator", "docs",
    "webmaster", "category", "rating", "image", "skiphours", "skipdays",
}  # fmt: skip
CHANNEL_NESTED = {"image", "skiphours", "skipdays"}
NESTED_CHILDREN = {"url", "title", "link", "width", "height", "description", "hour", "day"}
ATTRIBUTES = {
    "guid": {"ispermalink"},
    "category": {"domain"},
    "enclosure": {"url", "length", "type"},
}
# What feedparser's encoding step may note and still read the feed with its XML parser: a
# Content-Type that is not an XML one, an encoding other than the declared one. The note is
# kept in the result, as feedparser keeps it.
TOLERATED = (NonXMLContentType, CharacterEncodingOverride)
WINDOWS_1252_RANGE = re.compile("[\x80-\x9f]")  # the keys of feedparser's _cp1252
NON_ASCII_PREFIX = re.compile(rb"xmlns:[^=\s>]*[\x80-\xff]")
LINK_REFERENCE = re.compile("&([A-Za-z0-9_]+);")
# Extension elements. feedparser names an element in a namespace it knows by its own prefix
# for that namespace (`namespaces` below, "" for Atom: atom:link in RSS is a link), one in a
# namespace it does not know by the document's prefix, and then looks for a handler named
# after it (`_start_media_content`). An element without a handler is only stored under its
# name (`slash_comments`), which `parse` never reads, so it can be skipped; one with a handler
# is read here as feedparser reads it, or the feed is declined. The handlers are looked up on
# feedparser's own parser class, so a release that adds one makes its element decline.
KNOWN_NAMESPACES = {
    uri.lower(): prefix for uri, prefix in feedparser.mixin._FeedParserMixin.namespaces.items()
}
KNOWN_PREFIXES = set(KNOWN_NAMESPACES.values())
HANDLERS = feedparser.api.StrictFeedParser
# How feedparser merges the parts of a feed's authors (and of an itunes:owner) into its
# `author`: called as they are (tests/test_parse_fast_extensions.py pins them).
SYNC_AUTHOR_DETAIL = getattr(feedparser.mixin._FeedParserMixin, "_sync_author_detail", None)
SAVE_AUTHOR = getattr(feedparser.mixin._FeedParserMixin, "_save_author", None)
# Elements with a handler whose result `parse` does not read, and that hold no element of
# their own: itunes:image sets `image`, itunes:explicit/block `itunes_*`, itunes:subtitle and
# dc:rights `subtitle`/`rights`, dc:language the language, dc:publisher `publisher`, GeoRSS's
# simple geometries `where` (their parsers return None on bad coordinates, never raise).
HANDLED_IGNORED = {
    "itunes_image", "itunes_link", "itunes_explicit", "itunes_block", "itunes_subtitle",
    "dc_language", "dc_rights", "dc_publisher", "media_credit",
    "georss_point", "georss_line", "georss_polygon", "georss_box",
}  # fmt: skip
# ... and at the feed level, where none of title, link, author or ttl can be touched by them.
FEED_HANDLED_IGNORED = HANDLED_IGNORED | {"itunes_summary", "dc_date", "dc_subject"}
# The children feedparser reads inside a feed-level element it ignores.
FEED_NESTED = {
    "itunes_owner": {"itunes_name", "itunes_email"},
    "itunes_category": {"itunes_category"},
}
SUMMARY_TYPES = {"plain", "html", "text", "text/plain", "text/html"}  # never base64 to feedparser
PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, strip_cdata=True
)


class NotPlain(Exception):
    """The feed is outside what this reader repeats exactly: feedparser reads it."""


def parse_plain_feed(body: bytes, response_headers: Mapping[str, str]) -> Any | None:
    """feedparser's result (the parts `parse` reads) for a plain RSS 2.0, RSS 1.0 or Atom 1.0
    feed, else None.
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
        if NON_ASCII_PREFIX.search(data):
            return None
        root = etree.fromstring(data, PARSER)
        _check_names(root)
        prefixes = _namespaces(root)
        # What feedparser does at each level down to an item's link; an xml:base is only
        # taken on the document element, the first level (and on an Atom entry).
        base = root_base = _base(base, root.get(XML_BASE))
        for _ in range(3):
            base = make_safe_absolute_uri(base, base) or base
        if root.tag == ATOM_FEED:
            version, (feed, entries) = "atom10", _read_atom(root, base, prefixes, root_base)
        elif root.tag == RDF_ROOT:
            version, (feed, entries) = "rss10", _read_rdf(root, base, prefixes)
        else:
            version, (feed, entries) = "rss20", _read_rss(root, base, prefixes)
    except etree.XMLSyntaxError as exc:
        if str(exc).startswith("Excessive depth"):
            # No feed nests elements 256 deep; feedparser would walk every level in Python
            # (a million of them took it 29 s). libxml2's message quotes the document after
            # its own words, so only its first words say which error this is.
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
    instructions or comments inside the document element. Outside it, comments and a
    stylesheet are read by neither: WordPress writes its generator in a comment before
    `<rss>`, and caching plugins (W3 Total Cache, WP Super Cache) sign their copy with one
    after it."""
    for sibling in root.itersiblings(preceding=True):
        stylesheet = sibling.tag is etree.PI and sibling.target == "xml-stylesheet"
        if not stylesheet and sibling.tag is not etree.Comment:
            raise NotPlain
    for sibling in root.itersiblings():
        if sibling.tag is not etree.Comment:
            raise NotPlain
    # RSS 1.0 names its channel and items, and lists them, in RDF's own attributes.
    rdf_attributes = {RDF_ABOUT, RDF_RESOURCE} if root.tag == RDF_ROOT else set()
    for element in root.iter():
        tag = element.tag
        if not isinstance(tag, str) or not tag.isascii():
            raise NotPlain
        prefix = element.prefix
        if prefix is not None and not prefix.isascii():
            raise NotPlain
        attributes = element.attrib
        if not attributes:
            continue
        for key in attributes:
            if key in (XML_LANG, XML_BASE):
                if key == XML_BASE and element is not root and tag != ATOM_ENTRY:
                    raise NotPlain  # a base that moves within the document: feedparser's
                continue
            if key in rdf_attributes:
                continue
            if ":" in key or "{" in key or not key.isascii() or key.lower() == "base":
                raise NotPlain  # feedparser takes a plain `base` attribute for xml:base
        if len({key.lower() for key in attributes}) != len(attributes):
            raise NotPlain  # `URL` and `url`: which one feedparser keeps is its parser's


def _namespaces(root: Any) -> dict[str, str]:
    """The document's prefix for each namespace feedparser does not know (lower-cased URI:
    prefix), after refusing what makes feedparser name elements otherwise than by namespace:
    a prefix bound to two namespaces, a namespace it does not know bound to two prefixes or
    as the default (it names elements by the first prefix, or by none), a prefix of its own
    bound to another of its namespaces (it maps prefixes document-wide), and a declaration
    anywhere but on the document element or where it is harmless (feedparser adds it to
    the element's attributes)."""
    declared: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    pending = False
    xhtml_only = True
    for event, value in etree.iterwalk(root, events=("start-ns", "start")):
        if event == "start":
            if pending and value is not root and value.tag not in INLINE_DECLARATIONS:
                # Atom's xhtml content: XHTML as the default, declared on its outer element
                parent = value.getparent()
                if not (xhtml_only and value.tag.startswith(XHTML)) or (
                    parent is None or parent.tag.startswith(XHTML)
                ):
                    raise NotPlain
            pending, xhtml_only = False, True
            continue
        pending = True
        prefix, uri = value
        if not prefix and uri == XHTML[1:-1]:
            continue  # feedparser knows it by URI: the default it rebinds changes no name
        xhtml_only = False
        if declared.setdefault(prefix or "", uri) != uri:
            raise NotPlain
        lower = uri.lower()
        known = KNOWN_NAMESPACES.get(lower)
        if "backend.userland.com/rss" in lower:
            raise NotPlain
        if known is None:
            if not prefix or prefixes.setdefault(lower, prefix) != prefix:
                raise NotPlain
        elif prefix and prefix != known and prefix in KNOWN_PREFIXES:
            raise NotPlain
    return prefixes


def _key(element: Any, prefixes: Mapping[str, str]) -> str:
    """feedparser's name for an element: its prefix for the namespace and the local name,
    lower case (`media_content`, `link` for Atom's link)."""
    tag = element.tag
    if not isinstance(tag, str):
        raise NotPlain
    if tag[0] != "{":
        return tag.lower()
    namespace, _, local = tag[1:].partition("}")
    lower = namespace.lower()
    prefix = KNOWN_NAMESPACES.get(lower)
    if prefix is None:
        if lower not in prefixes:
            raise NotPlain
        prefix = prefixes[lower]
    return f"{prefix}_{local.lower()}" if prefix else local.lower()


def _has_handler(key: str) -> bool:
    return _handled(HANDLERS, key)


@functools.lru_cache(maxsize=1024)
def _handled(handlers: type, key: str) -> bool:
    """Whether feedparser's parser class has a handler for elements named `key`."""
    return any(
        hasattr(handlers, f"_{side}_{name}")
        for side in ("start", "end")
        for name in {key, key.lower()}
    )


def _check_skipped(element: Any, key: str) -> None:
    """An extension element feedparser only stores under `key`, which `parse` never reads:
    no handler, no element inside."""
    if _has_handler(key) or key == "feedburner_origlink" or "_" not in key or len(element):
        raise NotPlain


def _read_rss(root: Any, base: str, prefixes: Mapping[str, str]) -> tuple[dict, list[dict]]:
    if root.tag != "rss" or set(root.attrib) - {XML_BASE} != {"version"}:
        raise NotPlain
    if not root.attrib["version"].startswith("2.") or _has_text(root.text):
        raise NotPlain
    channels = list(root)
    if len(channels) != 1 or channels[0].tag != "channel" or channels[0].attrib:
        raise NotPlain
    return _read_channel(iter(channels[0]), base, prefixes, rdf=False)


def _read_rdf(root: Any, base: str, prefixes: Mapping[str, str]) -> tuple[dict, list[dict]]:
    """RSS 1.0: the channel first, its items beside it under rdf:RDF (feedparser reads them
    in document order, as if they were inside), each item's rdf:about its id."""
    if set(root.attrib) - {XML_BASE} or _has_text(root.text):
        raise NotPlain
    children = list(root)
    if not children or _name(children[0]) != "channel":
        raise NotPlain
    channel, rest = children[0], children[1:]
    if set(channel.attrib) - {RDF_ABOUT} or _has_text(channel.tail):
        raise NotPlain
    for child in rest:
        if _name(child) != "item" or _has_text(child.tail):
            raise NotPlain  # a top-level image or textinput: feedparser's own path
    return _read_channel(itertools.chain(channel, rest), base, prefixes, rdf=True)


def _read_channel(
    children: Iterator[Any], base: str, prefixes: Mapping[str, str], *, rdf: bool
) -> tuple[dict, list[dict]]:
    """A channel's elements and its items, in document order: in RSS 1.0 (`rdf`) the items
    follow the channel's own elements."""
    feed: dict[str, Any] = {}
    entries = []
    seen: set[str] = set()
    authors = _FeedAuthor()
    # feedparser's hasContent is the parser's, not the item's: a summary after a summary in
    # the channel (itunes:summary, description) sets it for the first item that follows.
    has_summary = has_content = False
    for child in children:
        name = _name(child)
        if name == "item":
            if set(child.attrib) - ({RDF_ABOUT} if rdf else set()) or _has_text(child.text):
                raise NotPlain
            about = child.get(RDF_ABOUT)  # feedparser's id, as written
            entries.append(_read_item(child, base, prefixes, has_content, about))
            has_content = False
            continue
        if rdf and _rdf_reference(child, name):
            continue
        summary = name == "description" or (
            name.startswith("{") and _key(child, prefixes) == "itunes_summary"
        )
        if summary:
            if has_summary and not has_content:
                has_content = True
            has_summary = has_summary or name != "description"
        if name == ATOM + "link":  # RSSHub's self link, WordPress's hub: feedparser's link
            if len(child) or _has_text(child.text):
                raise NotPlain
            _read_link(child, base, feed)
            continue
        if name in CHANNEL_NESTED:
            _check_nested(child)
            continue
        if name.startswith("{") and name != DUBLIN_CORE + "creator":
            key = _key(child, prefixes)
            if key == "itunes_author":
                name = key  # an author like the others below
            elif key == "itunes_owner":
                _check_feed_nested(child, key, prefixes)
                for part in child:  # the publisher's name and email: see _FeedAuthor
                    authors.owner(etree.QName(part).localname.lower(), part.text)
                continue
            elif key in FEED_NESTED:
                _check_feed_nested(child, key, prefixes)
                continue
            elif key in FEED_HANDLED_IGNORED:
                if (
                    key in seen
                    or len(child)
                    or _attributes(child).get("type", "text") not in (SUMMARY_TYPES)
                ):
                    raise NotPlain  # a second summary would set feedparser's hasContent
                seen.add(key)
                continue
            else:
                _check_skipped(child, key)
                continue
        _check_plain(child, name)
        if name in CHANNEL_IGNORED:
            continue
        if name not in CHANNEL_READ:
            raise NotPlain
        if name in ("title", "link", "ttl"):
            if name in seen:
                raise NotPlain
            seen.add(name)
        text = (child.text or "").strip()
        if name == "link":
            feed["link"] = LINK_REFERENCE.sub(r"&\g<1>", _finish(_resolve(text, base)))
        elif name in ("title", "ttl"):
            feed[name] = _finish(text)
        else:  # managingEditor, author, dc:creator, itunes:author
            authors.author(_finish(text))
    if "author" in authors.context:
        feed["author"] = authors.context["author"]
    return feed, entries


def _rdf_reference(element: Any, name: str) -> bool:
    """Whether `element` is one of RSS 1.0's references inside its channel, which feedparser
    only stores: <image rdf:resource/>, <textinput rdf:resource/> (empty), and <items> with
    its rdf:Seq of rdf:li. Anything else by those names is declined."""
    if name in ("image", "textinput"):
        if set(element.attrib) != {RDF_RESOURCE} or len(element) or _has_text(element.text):
            raise NotPlain
        return True
    if name != "items":
        return False
    for part in element.iter():
        if part is not element and _name(part) not in RDF_LIST:
            raise NotPlain
        if set(part.attrib) - {RDF_RESOURCE} or _has_text(part.text) or _has_text(part.tail):
            raise NotPlain
    return True


class _FeedAuthor:
    """The feed's author as feedparser's own `_sync_author_detail` and `_save_author` leave
    it: each author element starts a detail that the text fills ("Name (email)" split),
    and itunes:owner's name and email, saved as the publisher's, pass through the same
    sync on the way, so they may set the author from the details before them."""

    _sync_author_detail = SYNC_AUTHOR_DETAIL
    _save_author = SAVE_AUTHOR

    def __init__(self) -> None:
        if self._sync_author_detail is None or self._save_author is None:
            raise NotPlain  # a feedparser without them: its own path
        self.context = FeedParserDict()

    def _get_context(self) -> FeedParserDict:
        return self.context

    def author(self, text: str) -> None:
        self.context.setdefault("authors", []).append(FeedParserDict())
        self.context["author"] = text
        self._sync_author_detail()

    def owner(self, part: str, text: str | None) -> None:
        self._save_author(part, (text or "").strip(), "publisher")  # names are not repaired


class _Item:
    """What feedparser keeps while it reads an item: whether a title was found (a later one
    is then ignored) and whether content was (a description after a summary is content
    until then)."""

    __slots__ = ("has_content", "has_title", "links", "tags")

    def __init__(self) -> None:
        self.has_content = False
        self.has_title = False
        self.links: list[dict[str, str]] = []
        self.tags: _Tags | None = None


SUMMARY_ELEMENTS = {"description", DUBLIN_CORE + "description"}
TITLE_ELEMENTS = {"title", DUBLIN_CORE + "title"}
AUTHOR_ELEMENTS = {"author", DUBLIN_CORE + "creator", DUBLIN_CORE + "author"}
UPDATED_ELEMENTS = {DUBLIN_CORE + "date", DUBLIN_TERMS + "modified"}
PUBLISHED_ELEMENTS = {"pubdate", DUBLIN_TERMS + "issued"}
ITEM_TEXT_ELEMENTS = (
    {
        "link",
        "guid",
        "comments",
        "category",
        DUBLIN_CORE + "subject",
        CONTENT + "encoded",
    }
    | SUMMARY_ELEMENTS
    | TITLE_ELEMENTS
    | AUTHOR_ELEMENTS
    | UPDATED_ELEMENTS
    | PUBLISHED_ELEMENTS
)
MEDIA_IMAGES = {"media_content", "media_thumbnail"}
MEDIA_GROUP_CHILDREN = MEDIA_IMAGES | {"media_credit"}


def _read_item(
    item: Any, base: str, prefixes: Mapping[str, str], has_content: bool, about: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": about} if about else {}
    state = _Item()
    state.has_content = has_content
    for child in item:
        name = _name(child)
        if name == "enclosure":
            _check_plain(child, name)
            attributes = {key.lower(): value for key, value in child.attrib.items()}
            if "url" in attributes:
                attributes["href"] = attributes.pop("url")
            if "type" in attributes:
                attributes["type"] = attributes["type"].lower()
            state.links.append({**attributes, "rel": "enclosure"})
            continue
        if name == ATOM + "link":  # feedparser's link, with its attributes
            if len(child) or _has_text(child.text) or "href" not in _attributes(child):
                raise NotPlain
            context = {"links": state.links}
            if "link" in entry:
                context["link"] = entry["link"]
            _read_link(child, base, context)
            if "link" in context:
                entry["link"] = context["link"]
            continue
        if name not in ITEM_TEXT_ELEMENTS:
            _read_item_extension(child, _key(child, prefixes), entry, state)
            continue
        _check_plain(child, name)
        text = (child.text or "").strip()
        if name in TITLE_ELEMENTS:
            _title(entry, state, _finish(text), blocking=True)
        elif name == "link":
            state.links.append({"rel": "alternate", "type": "text/html"})
            value = _finish(_resolve(text, base)).replace("&amp;", "&")
            entry["link"] = LINK_REFERENCE.sub(r"&\g<1>", value)
            if entry["link"]:
                state.links[-1]["href"] = entry["link"]
        elif name == "guid":
            permalink = {k.lower(): v for k, v in child.attrib.items()}.get("ispermalink", "true")
            value = _finish(text)  # an id as written: see parse.py on `can_be_relative_uri`
            entry["id"] = value
            if permalink == "true":
                entry.setdefault("link", value)
        elif name in PUBLISHED_ELEMENTS:
            entry["published"] = _finish(text)
            entry["published_parsed"] = _parse_date(entry["published"])
        elif name in UPDATED_ELEMENTS:
            entry["updated"] = _finish(text)
            entry["updated_parsed"] = _parse_date(entry["updated"])
        elif name in SUMMARY_ELEMENTS:
            _summary(entry, state, _finish(text), "description")
        elif name == CONTENT + "encoded":
            _summary(entry, state, _finish(text), "content")
        elif name in AUTHOR_ELEMENTS:
            _author(entry, _finish(text))
        elif name in ("category", DUBLIN_CORE + "subject"):
            _category(entry, state, child, _finish(text))
    if state.tags is not None:
        entry["tags"] = list(state.tags)
    if state.links:
        entry["links"] = state.links
    return entry


def _read_item_extension(child: Any, key: str, entry: dict[str, Any], state: _Item) -> None:
    """An element of another namespace in an item: read as feedparser's handler reads it,
    skipped when it has none, else declined."""
    if key in MEDIA_IMAGES or key == "media_group":
        _read_media(child, key, entry)
        return
    if key == "media_credit" or key in HANDLED_IGNORED:
        if len(child):
            raise NotPlain
        return
    attributes = _attributes(child)
    if key in ("itunes_summary", "media_description", "media_title", "itunes_author"):
        if len(child) or attributes.get("type", "text") not in SUMMARY_TYPES:
            raise NotPlain
        if set(attributes) - {"type"} or (key == "itunes_author" and attributes):
            raise NotPlain
        text = _finish((child.text or "").strip())
        if key == "media_title":
            _title(entry, state, text, blocking=False)
        elif key == "itunes_author":
            _author(entry, text)
        else:
            _summary(entry, state, text, "summary" if key == "itunes_summary" else "description")
        return
    if key in ("itunes_keywords", "media_keywords"):
        if len(child) or attributes:
            raise NotPlain  # with attributes feedparser pushes nothing, and its split fails
        scheme = "http://www.itunes.com/" if key == "itunes_keywords" else None
        tags = state.tags = state.tags if state.tags is not None else _Tags()
        for term in _finish((child.text or "").strip()).split(","):
            if term.strip():
                tags.add(term.strip(), scheme, None)
        return
    if key == "feedburner_origlink":  # `parse` takes it for the link
        if len(child) or attributes:
            raise NotPlain
        entry[key] = _finish((child.text or "").strip())
        return
    _check_skipped(child, key)


def _read_media(element: Any, key: str, context: dict[str, Any]) -> None:
    """media:content and media:thumbnail, alone or in a media:group: their attributes as
    feedparser keeps them, in document order (`parse` takes the first picture)."""
    if key == "media_group":
        if _attributes(element) or _has_text(element.text):
            raise NotPlain
        for child in element:
            name = _media_key(child)
            if name not in MEDIA_GROUP_CHILDREN:
                raise NotPlain
            if name == "media_credit":
                _check_text_only(child)
            else:
                _read_media(child, name, context)
        return
    attributes = _attributes(element)
    for name in ("rel", "type"):
        if name in attributes:
            attributes[name] = attributes[name].lower()
    if key == "media_thumbnail" and _has_text(element.text):
        raise NotPlain  # its text is a URL, resolved as feedparser resolves a url
    context.setdefault(key, []).append(attributes)
    for child in element:  # what media:content may hold
        name = _media_key(child)
        if name == "media_thumbnail":
            _read_media(child, name, context)
        elif name == "media_credit":
            _check_text_only(child)
        else:
            raise NotPlain  # a description or a title: feedparser's depth rules


def _media_key(element: Any) -> str:
    name = _name(element)
    for namespace in MEDIA:
        if name.startswith(namespace):
            return "media_" + name[len(namespace) :]
    raise NotPlain


def _title(entry: dict[str, Any], state: _Item, value: str, *, blocking: bool) -> None:
    """feedparser's `title_depth`: the first title that is not empty stays; media:title
    never blocks a later one."""
    if state.has_title:
        return
    entry["title"] = value
    if value and blocking:
        state.has_title = True


def _summary(entry: dict[str, Any], state: _Item, value: str, kind: str) -> None:
    """feedparser's `_start_description`/`_start_summary`: a summary after a summary is
    content, until content has been found; content:encoded is content, and the summary if
    there is none yet."""
    if kind == "content" or ("summary" in entry and not state.has_content):
        state.has_content = True
        entry.setdefault("content", []).append({"value": value, "type": "text/html"})
        entry.setdefault("summary", value)
    else:
        entry["summary"] = value


def _author(entry: dict[str, Any], value: str) -> None:
    if "author" in entry:  # a second author is merged with the first's details
        raise NotPlain
    entry["author"] = value


def _category(entry: dict[str, Any], state: _Item, element: Any, value: str) -> None:
    """feedparser's `_start_category` and `_end_category`."""
    attributes = {key.lower(): v for key, v in element.attrib.items()}
    tags = state.tags = state.tags if state.tags is not None else _Tags()
    scheme = attributes.get("scheme", attributes.get("domain"))
    tags.add(attributes.get("term"), scheme, attributes.get("label"))
    if not value:
        return
    if tags and not tags[-1]["term"]:
        tags.name_last(value)
    else:
        tags.add(value, None, None)


class _Tags(list):
    """feedparser's list of an entry's tags, to which a tag is added unless an equal one is
    in it. Equal ones are found by a count of each tag's value kept beside the list, where
    feedparser looks through the list: an item of 100,000 categories (2.7 MB) then held a
    pass for minutes; the result is the same list."""

    def __init__(self) -> None:
        super().__init__()
        self._count: Counter[tuple[str | None, ...]] = Counter()

    def add(self, term: str | None, scheme: str | None, label: str | None) -> None:
        key = (term, scheme, label)
        if (term or scheme or label) and not self._count[key]:
            self.append({"term": term, "scheme": scheme, "label": label})
            self._count[key] += 1

    def name_last(self, term: str) -> None:
        """The last tag's term set, as feedparser's `_end_category` does with its text."""
        last = self[-1]
        self._count[(last["term"], last["scheme"], last["label"])] -= 1
        last["term"] = term
        self._count[(term, last["scheme"], last["label"])] += 1


def _check_feed_nested(element: Any, key: str, prefixes: Mapping[str, str]) -> None:
    """itunes:owner (name, email) and itunes:category (nested categories): feedparser keeps
    them as the publisher and the feed's tags, which `parse` does not read."""
    if _has_text(element.text):
        raise NotPlain
    for child in element:
        name = _key(child, prefixes)
        if name not in FEED_NESTED[key]:
            raise NotPlain
        if name in FEED_NESTED:
            _check_feed_nested(child, name, prefixes)
        elif len(child) or child.attrib:
            raise NotPlain
        if _has_text(child.tail):
            raise NotPlain


# -- Atom 1.0 ---------------------------------------------------------------------------------


def _base(base: str, xml_base: str | None) -> str:
    """feedparser's base URI for an element, from its parent's and its xml:base."""
    xml_base = xml_base or base
    return (make_safe_absolute_uri(base, xml_base) or base) if base else _urljoin("", xml_base)


def _read_atom(
    root: Any, base: str, prefixes: Mapping[str, str], root_base: str
) -> tuple[dict, list[dict]]:
    if set(root.attrib) - {XML_LANG, XML_BASE} or _has_text(root.text):
        raise NotPlain
    feed: dict[str, Any] = {}
    entries = []
    seen: set[str] = set()
    for child in root:
        name = _atom_name(child)
        if name is None:  # openSearch:totalResults, feedburner:info...
            _check_skipped(child, _key(child, prefixes))
        elif name == "entry":
            if set(child.attrib) - {XML_LANG, XML_BASE} or _has_text(child.text):
                raise NotPlain
            entry_base = base
            if XML_BASE in child.attrib:  # the entry's own base, down to its links
                entry_base = _base(root_base, child.get(XML_BASE))
                for _ in range(2):
                    entry_base = make_safe_absolute_uri(entry_base, entry_base) or entry_base
            entries.append(_read_entry(child, entry_base, prefixes))
        elif name == "link":
            _read_link(child, base, feed)
        elif name in ATOM_FEED_IGNORED:
            _check_ignored(child)
        elif name in seen:
            raise NotPlain
        else:
            seen.add(name)
            _read_atom_common(child, name, base, feed, prefixes)
    return feed, entries


def _read_entry(element: Any, base: str, prefixes: Mapping[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    tags = _Tags()
    for child in element:
        name = _atom_name(child)
        if name is None:
            _read_entry_extension(child, _key(child, prefixes), entry)
        elif name == "link":
            _read_link(child, base, entry)
        elif name == "category":
            attributes = _attributes(child)
            if len(child) or _has_text(child.text) or set(attributes) - {"term", "scheme", "label"}:
                raise NotPlain
            tags.add(attributes.get("term"), attributes.get("scheme"), attributes.get("label"))
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
                _read_atom_common(child, name, base, entry, prefixes)
    if tags:
        entry["tags"] = list(tags)
    return entry


def _read_entry_extension(child: Any, key: str, entry: dict[str, Any]) -> None:
    """An element of another namespace in an Atom entry: Reddit's and Blogger's
    media:thumbnail, FeedBurner's origLink, and elements feedparser only stores."""
    if key in MEDIA_IMAGES or key == "media_group":
        _read_media(child, key, entry)
    elif key == "feedburner_origlink":  # `parse` takes it for the link
        if len(child) or _attributes(child):
            raise NotPlain
        entry[key] = _finish((child.text or "").strip())
    elif key == "media_credit":
        _check_text_only(child)
    else:
        _check_skipped(child, key)


def _read_atom_common(
    element: Any, name: str, base: str, context: dict[str, Any], prefixes: Mapping[str, str]
) -> None:
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
        context["author"] = _read_author(element, prefixes)
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


def _read_author(element: Any, prefixes: Mapping[str, str]) -> str:
    """feedparser's `_sync_author_detail`: "name (email)", the name, the email, or else the
    author element's own text. Names and emails are only stripped (feedparser reads them
    without its text repairs)."""
    if _attributes(element):
        raise NotPlain
    parts: dict[str, str] = {}
    own = [element.text or ""]
    for child in element:
        name = _atom_name(child)
        if name is None:  # Blogger's gd:image: stored by feedparser, under its own name
            _check_skipped(child, _key(child, prefixes))
            if _has_text(child.text):
                raise NotPlain
            own.append(child.tail or "")
            continue
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
    kind = attributes.get("type", "text").lower()
    if set(attributes) - {"type"}:
        raise NotPlain  # a src
    if kind == "xhtml":
        return _finish(_xhtml(element))
    if kind not in TEXT_TYPES:
        raise NotPlain  # another media type
    _check_text_only(element)
    return _finish((element.text or "").strip())


def _xhtml(element: Any) -> str:
    """Atom's xhtml content as feedparser writes it back: each element as `<name attr="v">`
    and `</name>` (names and attribute names lower case, rel and type values too, the
    namespace declaration of the outer element as an `xmlns` attribute), text escaped;
    then its `pop`: whitespace pieces off both ends, and the outer div off if it holds
    everything."""
    pieces: list[str] = []
    if element.text:
        pieces.append(xml_escape(element.text))
    for child in element:
        _xhtml_element(child, pieces, top=True)
        if child.tail:
            pieces.append(xml_escape(child.tail))
    while pieces and len(pieces) > 1 and not pieces[-1].strip():
        del pieces[-1]
    while pieces and len(pieces) > 1 and not pieces[0].strip():
        del pieces[0]
    if (
        pieces
        and (pieces[0] == "<div>" or pieces[0].startswith("<div "))
        and pieces[-1] == "</div>"
    ):
        depth = 0
        for piece in pieces[:-1]:
            if piece.startswith("</"):
                depth -= 1
                if depth == 0:
                    break
            elif piece.startswith("<") and not piece.endswith("/>"):
                depth += 1
        else:
            pieces = pieces[1:-1]
    return "".join(pieces).strip()


def _xhtml_element(element: Any, pieces: list[str], *, top: bool) -> None:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(XHTML):
        raise NotPlain  # SVG, MathML, another namespace: feedparser's own rules
    name = tag[len(XHTML) :].lower()
    if name in ("svg", "math"):
        raise NotPlain
    attributes = ""
    if top and element.nsmap.get(None) == XHTML[1:-1]:
        attributes = f' xmlns="{XHTML[1:-1]}"'
    for key, value in element.attrib.items():
        if key.startswith("{"):
            raise NotPlain
        key = key.lower()
        if key in ("rel", "type"):
            value = value.lower()
        attributes += f' {key}="{xml_escape(value, QUOTE)}"'
    pieces.append(f"<{name}{attributes}>")
    if element.text:
        pieces.append(xml_escape(element.text))
    for child in element:
        _xhtml_element(child, pieces, top=False)
        if child.tail:
            pieces.append(xml_escape(child.tail))
    pieces.append(f"</{name}>")


def _content_type(kind: str) -> str:
    """feedparser's `map_content_type`."""
    kind = kind.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html"}.get(
        kind, "application/xhtml+xml" if kind == "xhtml" else kind
    )


def _atom_name(element: Any) -> str | None:
    """An Atom element's local name; None for an element of another namespace."""
    name = _name(element)
    if not name.startswith(ATOM):
        if not name.startswith("{"):
            raise NotPlain  # no namespace in an Atom feed: feedparser's RSS names
        return None
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
        namespace = namespace.lower()
        if namespace == RSS1_URI:
            return local.lower()
        return f"{{{namespace}}}{local.lower()}"
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
