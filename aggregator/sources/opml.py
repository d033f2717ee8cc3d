"""OPML, the subscription list every feed reader imports and exports; pure, no I/O.

Reading is lenient because readers write sloppy OPML (unescaped `&`, odd attribute case,
folders without titles), and safe because the file is foreign input: no entity expansion,
no network, lxml's depth limits. Nested folders become categories, outermost first; an
outline's own `category` attribute (comma-separated `/a/b` paths) adds more.

Writing gives OPML 2.0 with one folder per source's first category and every category in the
`category` attribute, so exporting and importing again gives back the same categories.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from lxml import etree

from aggregator.errors import OpmlError
from aggregator.models import Source

ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
BARE_AMPERSAND = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)")


@dataclass(frozen=True)
class Subscription:
    """One feed outline of an OPML file."""

    url: str
    title: str | None = None
    html_url: str | None = None
    categories: tuple[str, ...] = ()


def parse_opml(data: bytes) -> list[Subscription]:
    """Every outline with an `xmlUrl`, in document order; raise OpmlError when `data` is not
    OPML at all."""
    if ENTITY_DECLARATION.search(data):
        raise OpmlError("refusing an OPML file that declares XML entities")
    # The commonest breakage: a bare `&` in a URL's query. Escape every `&` that does not
    # start an XML reference, so recovery does not silently drop part of the URL.
    data = BARE_AMPERSAND.sub(b"&amp;", data)
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, recover=True, remove_comments=True
    )
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not an OPML file: {exc}") from None
    if root is None or _local(root.tag) != "opml":
        found = "nothing readable" if root is None else f"<{_local(root.tag)}>"
        raise OpmlError(f"not an OPML file (found {found} where <opml> should be)")
    body = next((child for child in root if _local(child.tag) == "body"), None)
    if body is None:
        raise OpmlError("not an OPML file (no <body>)")
    return list(_walk(body))


def _walk(body: etree._Element) -> Iterator[Subscription]:
    """Outlines in document order (pre-order), each with the titles of its folders."""
    # An explicit stack: how deep folders nest is the file's choice, not Python's stack's.
    stack: list[tuple[etree._Element, tuple[str, ...]]] = [
        (child, ()) for child in reversed(_outlines(body))
    ]
    while stack:
        outline, folders = stack.pop()
        attributes = {str(key).lower(): (value or "").strip() for key, value in outline.items()}
        title = attributes.get("title") or attributes.get("text") or None
        url = attributes.get("xmlurl")
        if url:
            own = _category_attribute(attributes.get("category", ""))
            yield Subscription(
                url, title, attributes.get("htmlurl") or None, _unique((*folders, *own))
            )
        inner = folders if url or not title else (*folders, title)
        stack.extend((child, inner) for child in reversed(_outlines(outline)))


def render_opml(
    title: str, sources: Sequence[Source], html_urls: Mapping[str, str], now: datetime
) -> bytes:
    """OPML 2.0 of `sources`: grouped in a folder by first category, all categories in the
    `category` attribute; `html_urls` maps a source name to its site, when known."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now.astimezone(UTC), usegmt=True)
    ET.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for source in sources:
        parent = body
        if source.categories:
            first = source.categories[0]
            if first not in folders:
                folders[first] = ET.SubElement(body, "outline", text=first, title=first)
            parent = folders[first]
        label = source.title or source.name
        attributes = {"type": "rss", "text": label, "title": label, "xmlUrl": source.url}
        if source.name in html_urls:
            attributes["htmlUrl"] = html_urls[source.name]
        if source.categories:
            attributes["category"] = ",".join(
                "/" + name.replace("/", " ").replace(",", " ") for name in source.categories
            )
        ET.SubElement(parent, "outline", attributes)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _outlines(node: etree._Element) -> list[etree._Element]:
    return [child for child in node if _local(child.tag) == "outline"]


def _local(tag: object) -> str:
    """A tag without its namespace; comments and processing instructions have none."""
    return str(tag).rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _category_attribute(value: str) -> tuple[str, ...]:
    """`/Tech/Python,/News` -> (Tech, Python, News); Feedly-style tags are plain names."""
    names = []
    for path in value.split(","):
        names += [part.strip() for part in path.split("/") if part.strip()]
    return tuple(names)


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for name in names if name))
