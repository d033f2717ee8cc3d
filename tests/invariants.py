"""The promises every output keeps, whatever a source sent or whenever the process died.

Shared by the hostile-source, crash and fuzz tests so that each checks the same thing: a valid
database, one complete document per entry with front matter YAML can read, merged feeds that
are complete XML, and nothing a static-site generator would pick up but our own documents.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path

import feedparser
import yaml
from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree
from selectolax.lexbor import LexborHTMLParser

from aggregator.config.settings import Config
from aggregator.models import Source, StoredEntry
from aggregator.outputs import feeds as publish
from aggregator.outputs.redact import public_url
from aggregator.sources.sanitize import HTML_ELEMENTS
from aggregator.store.database import Store
from aggregator.store.rows import ENTRY_SELECT, stored_entry

# libyaml's safe loader when built in: the same answers as `yaml.safe_load`, 20 times faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A strict parser that resolves nothing: what a careful feed reader does with our feeds.
STRICT_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def stored_entries(store: Store) -> list[StoredEntry]:
    """Every stored entry, whether or not it has a document of its own."""
    return [stored_entry(row) for row in store.db.query(f"{ENTRY_SELECT} ORDER BY e.id")]


def front_matter(text: str) -> dict:
    """The YAML front matter of a document, read the way Hexo's js-yaml would (safely)."""
    assert text.startswith("---\n"), text[:200]
    head, separator, _ = text[4:].partition("\n---\n")
    assert separator, "front matter is not closed"
    data = yaml.load(head, Loader=SAFE_LOADER)
    assert isinstance(data, dict), head
    return data


def check_document(path: Path) -> dict:
    """One document is complete: closed front matter with a text title, body in one <div>."""
    text = path.read_text(encoding="utf-8")
    data = front_matter(text)
    assert isinstance(data["title"], str) and data["title"], path
    assert isinstance(data["author"], str), path
    assert text.endswith("</div>\n"), f"{path} is cut short"
    return data


def check_merged_feeds(public: Path, names: tuple[str, str] = ("feed.xml", "atom.xml")) -> None:
    """Each merged feed that exists is complete, well-formed XML that feedparser reads cleanly."""
    for name in names:
        path = public / name
        if not path.exists():
            continue
        data = path.read_bytes()
        etree.fromstring(data, STRICT_XML)  # raises on a half-written or broken file
        parsed = feedparser.parse(data)
        assert not parsed.bozo, f"{name}: {parsed.get('bozo_exception')}"


def feedgen_entry(
    generator: FeedGenerator, stored: StoredEntry, source: Source | None, info: publish.FeedInfo
) -> FeedEntry:
    """What the merged feeds hold for one entry, said with feedgen's own API: the reference
    that `publish` builds the same elements as, without feedgen's per-entry cost."""
    entry = stored.entry
    item = generator.add_entry()
    identifier = publish.item_id(entry.source, entry.identity)
    item.id(identifier)
    item.guid(identifier, permalink=False)
    item.title(entry.title or "(untitled)")
    # A source's address is published without user info or query values (redact.py).
    public = source is not None and source.public_url
    origin = public_url(stored.source_url or (source.url if source else None), public)
    item.link(href=entry.link or origin or info.link)
    item.published(stored.date)
    item.updated(entry.updated or stored.date)
    if entry.author:
        item.author(name=entry.author)
        item.dc.dc_creator(entry.author)
    for category in entry.categories:
        item.category(term=category)
    label = (source.title if source else None) or stored.source_title or entry.source
    if origin:
        item.source(url=origin, title=label)
    if entry.content:
        item.content(entry.content, type="html")
    else:
        item.description(entry.title or "(untitled)")
    return item


def check_feeds_as_feedgen_writes_them(
    info: publish.FeedInfo,
    entries: list[StoredEntry],
    sources: dict[str, Source],
    fragments: publish.Fragments,
) -> None:
    """The merged feeds assembled from per-entry fragments, cached or not, are the bytes
    feedgen writes when it builds the whole feed with every entry at once."""
    whole = publish._feed_generator(info, entries)
    for stored in reversed(entries):  # feedgen prepends each entry
        feedgen_entry(whole, stored, sources.get(stored.entry.source), info)
    expected = (publish._rss_bytes(whole, info), whole.atom_str(pretty=False))
    assert publish.build_feeds(info, entries, sources) == expected
    assert publish.build_feeds(info, entries, sources, fragments) == expected
    assert len(fragments) == len(entries)
    assert publish.build_feeds(info, entries, sources, fragments) == expected  # all reused


def visible_files(folder: Path) -> list[Path]:
    """What a static-site generator would see: every file, in any subfolder, whose path has
    no part starting with a dot."""
    if not folder.exists():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(folder).parts)
    )


def check_outputs(config: Config) -> int:
    """All promises at once, for a finished pass; returns the number of entries."""
    with contextlib.closing(sqlite3.connect(config.paths.database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT document, article, source FROM entries").fetchall()
    documents = config.paths.documents
    visible = visible_files(documents)
    assert all(p.suffix == ".md" and p.parent == documents for p in visible), visible
    assert sorted(p.name for p in visible) == sorted(documented(rows))
    for path in visible:
        check_document(path)
    check_merged_feeds(config.paths.public, (config.feed.rss_name, config.feed.atom_name))
    return len(rows)


def documented(rows: list[tuple[str, str | None, str]]) -> list[str]:
    """The documents that (document, article, source) rows owe: one per entry, except that
    an article carried by several sources has only the document of the source whose name
    sorts first."""
    first: dict[str, tuple[str, str]] = {}
    names = []
    for document, article, source in rows:
        if article is None:
            names.append(document)
        elif article not in first or source < first[article][0]:
            first[article] = (source, document)
    return names + [document for _, document in first.values()]


# -- entry HTML ---------------------------------------------------------------------------

FORBIDDEN_TAGS = {
    "script", "style", "object", "embed", "applet", "form", "input", "button", "textarea",
    "select", "base", "meta", "link", "frame", "frameset", "template", "noscript", "svg", "math",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "poster", "action", "formaction", "cite", "background", "data"}
IFRAME_PREFIXES = tuple(
    f"https://{host}/"
    for host in (
        "www.youtube.com",
        "www.youtube-nocookie.com",
        "player.vimeo.com",
        "player.bilibili.com",
        "www.dailymotion.com",
    )
)


def check_safe_html(fragment: str) -> None:
    """What a browser would build from `fragment` runs nothing: no script-capable element, no
    event handler or inline style, every URL an absolute http(s) (or mailto) one, and an
    iframe only from the documented allow-list. Checked on the parsed tree (lexbor, an HTML5
    parser like a browser's), not on the text, so no spelling trick can hide from it."""
    tree = LexborHTMLParser(f"<body><div>{fragment}</div></body>")
    for node in tree.root.traverse() if tree.root is not None else []:
        tag = node.tag or ""
        assert tag not in FORBIDDEN_TAGS, (tag, fragment[:300])
        for name, value in node.attributes.items():
            name = name.lower()
            assert not name.startswith("on"), (tag, name, fragment[:300])
            assert name not in {"style", "srcdoc"}, (tag, name)
            if name in URL_ATTRIBUTES and value is not None:
                assert value.startswith(("http://", "https://", "mailto:")), (tag, name, value)
            if name == "srcset" and value:
                for candidate in re.split(r",\s+", value.strip()):
                    assert candidate.startswith(("http://", "https://")), (tag, value)
        if tag == "iframe":
            assert (node.attributes.get("src") or "").startswith(IFRAME_PREFIXES), node.html


def check_inert_text(text: str) -> None:
    """A title or author is inert even for a reader that takes it for HTML: parsed as HTML
    it makes no element of HTML, SVG or MathML, only text and what a title says between
    angle brackets (`Option<T>`: an unknown element, which shows and hides nothing), never
    with an attribute value."""
    tree = LexborHTMLParser(text)
    for part in (tree.head, tree.body):
        nodes = list(part.traverse())[1:] if part is not None else []
        for node in nodes:
            if node.tag == "-text":
                continue
            assert node.tag not in HTML_ELEMENTS and "-" not in node.tag, (text, node.tag)
            assert not any(node.attributes.values()), (text, node.attributes)
