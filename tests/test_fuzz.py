"""Fuzzing: random and mutated feed documents through parse -> store -> documents -> merged
feeds, with the invariants that must hold for every input whatever: each step either takes it
or refuses it with a ParseError, every document has front matter YAML can read and safe HTML,
every file stays inside its output folder, and the merged feeds are valid XML (and JSON)
with nothing that runs.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
from feedworld import DATA, rsshub_feed, rsshub_item
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from invariants import (
    STRICT_XML,
    check_document,
    check_inert_text,
    check_safe_html,
    visible_files,
)
from lxml import etree

from aggregator.documents import write_documents
from aggregator.errors import ParseError
from aggregator.jsonfeed import build_json_feed
from aggregator.models import Source
from aggregator.parse import parse_feed
from aggregator.publish import FeedInfo, publish_feeds
from aggregator.store import SourceState, Store
from aggregator.update import decide

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SOURCE = Source("fuzz", "https://feeds.example/fuzz.xml", categories=("Fuzz",))
INFO = FeedInfo("Merged", "https://merged.example/", "Everything")
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def run_pipeline(body: bytes, content_type: str = "application/rss+xml") -> int:
    """Every step on `body` in a fresh folder, then every invariant; returns entries kept."""
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        documents, public = root / "documents", root / "public"
        try:
            parsed = parse_feed(body, SOURCE, SOURCE.url, {"content-type": content_type}, NOW)
        except ParseError:
            return 0  # refused, in words: fine (test_hostile checks the words)
        store = Store(root / "db" / "aggregator.db")
        try:
            store.sync_sources([(SOURCE.name, SOURCE.url)])
            known = store.known_entries(SOURCE.name, [e.identity for e in parsed.entries])
            decision = decide(parsed.entries, known, NOW)
            store.save_poll(SourceState(SOURCE.name, SOURCE.url), decision.new, (), NOW)
            written = write_documents(documents, store.pending_documents(), {"fuzz": SOURCE})
            store.mark_documents(written)
            newest = store.newest_entries(50)
            publish_feeds(public, INFO, newest, {"fuzz": SOURCE})
            json_feed = build_json_feed(INFO, newest, {"fuzz": SOURCE})
            assert store.integrity_check() == "ok"
            count = store.count_entries()
        finally:
            store.close()
        check_outputs(root, documents, public, json_feed, count, len(newest))
        return count


def check_outputs(
    root: Path, documents: Path, public: Path, json_feed: bytes, count: int, listed: int
) -> None:
    files = {p.relative_to(root).parts[0] for p in root.rglob("*") if p.is_file()}
    assert files <= {"documents", "public", "db"}, files
    names = visible_files(documents)
    assert len(names) == count
    for path in names:
        assert path.parent == documents and path.suffix == ".md"
        check_document(path)
        check_safe_html(path.read_text(encoding="utf-8").split("\n---\n", 1)[1])
    for name in (INFO.rss_name, INFO.atom_name):
        data = (public / name).read_bytes()
        etree.fromstring(data, STRICT_XML)
        merged = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
        assert not merged.bozo, merged.get("bozo_exception")
        assert len(merged.entries) == listed  # one per article, however many sources had it
        for entry in merged.entries:
            for content in entry.get("content") or []:
                check_safe_html(content["value"])
            check_inert_text(entry.get("title", ""))
            check_inert_text(entry.get("author", ""))
    for item in json.loads(json_feed)["items"]:
        check_safe_html(item.get("content_html", ""))


# -- feeds built from hostile parts ----------------------------------------------------------

TEXT = st.text(max_size=40) | st.sampled_from(
    ["]]>", "<![CDATA[", "&amp;", "&#0;", "&#xD800;", "&bogus;", "\x00\x01\x1b", "\ufffe", "'\""]
)
URLS = st.sampled_from(
    [
        "https://example.org/a",
        "http://example.org/b?x=1&y=2#f",
        "/relative/path",
        "relative.html",
        "../../../etc/passwd",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//cdn.example/x.png",
        "",
        " ",
        "mailto:a@example.org",
        "file:///etc/passwd",
    ]
)
TAGS = st.sampled_from(
    ["p", "b", "i", "a", "img", "div", "span", "h3", "script", "style", "iframe", "svg",
     "math", "object", "form", "table", "td", "noscript", "template", "video", "source"]
)  # fmt: skip
ATTRIBUTES = st.sampled_from(
    ["href", "src", "srcset", "onerror", "onload", "style", "class", "alt", "loading",
     "referrerpolicy", "data-recalc-dims", "formaction", "poster", "srcdoc", "xlink:href"]
)  # fmt: skip


@st.composite
def html_fragments(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 3 if depth < 3 else 1))
        if kind == 0:
            parts.append(escape(draw(TEXT)))
        elif kind == 1:
            parts.append(draw(TEXT))  # raw: broken markup on purpose
        else:
            tag = draw(TAGS)
            attributes = "".join(
                f' {draw(ATTRIBUTES)}="{escape(draw(URLS | TEXT), {chr(34): "&quot;"})}"'
                for _ in range(draw(st.integers(0, 3)))
            )
            inner = draw(html_fragments(depth + 1))
            close = draw(st.booleans())
            parts.append(f"<{tag}{attributes}>{inner}" + (f"</{tag}>" if close else ""))
    return "".join(parts)


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def items(draw: st.DrawFn) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(f"<title>{draw(st.sampled_from([cdata, escape]))(draw(TEXT))}</title>")
    if draw(st.booleans()):
        parts.append(f"<link>{escape(draw(URLS))}</link>")
    if draw(st.booleans()):
        permalink = draw(st.sampled_from(["", ' isPermaLink="false"']))
        parts.append(f"<guid{permalink}>{escape(draw(TEXT | URLS))}</guid>")
    if draw(st.booleans()):
        date = draw(
            st.sampled_from(
                [
                    "Fri, 28 Jan 2022 04:45:33 GMT",
                    "Thu, 01 Jan 1970 00:00:00 GMT",
                    "Fri, 31 Dec 9999 23:59:59 GMT",
                    "2022-01-28T04:45:33Z",
                    "yesterday",
                    "",
                ]
            )
        )
        parts.append(f"<pubDate>{date}</pubDate>")
    if draw(st.booleans()):
        parts.append(f"<author>{escape(draw(TEXT))}</author>")
    if draw(st.booleans()):
        parts.append(f"<category>{escape(draw(TEXT))}</category>")
    html = draw(html_fragments())
    parts.append(f"<description>{draw(st.sampled_from([cdata, escape]))(html)}</description>")
    return "<item>" + "".join(parts) + "</item>"


@st.composite
def feeds(draw: st.DrawFn) -> bytes:
    entries = draw(st.lists(items(), max_size=8))
    if draw(st.booleans()):
        entries += entries[:2]  # duplicate guids and identities
    title = escape(draw(TEXT))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>{escape(draw(URLS))}</link>"
        + "".join(entries)
        + "</channel></rss>"
    ).encode("utf-8", "surrogatepass")


@FUZZ
@given(body=feeds())
def test_random_feeds_keep_every_invariant(body: bytes) -> None:
    event(f"entries kept: {min(run_pipeline(body), 3)}+")


# -- real feeds, mutated ---------------------------------------------------------------------

SEEDS = [
    (DATA / "aljazeera.rss").read_bytes(),
    (DATA / "atom.xml").read_bytes(),
    (DATA / "rss10.rdf").read_bytes(),
    rsshub_feed([rsshub_item(i) for i in range(3)]),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        operation = draw(st.integers(0, 4))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if operation == 0:  # flip a byte
            data[position] = draw(st.integers(0, 255))
        elif operation == 1:  # insert bytes, often markup
            insert = draw(st.binary(max_size=20) | st.sampled_from(
                [b"<script>alert(1)</script>", b"]]>", b"<!ENTITY a 'x'>", b"&#xD800;",
                 b"<img src=x onerror=alert(1)>", b"\xff\xfe", b"<item>", b"</channel>"]
            ))  # fmt: skip
            data[position:position] = insert
        elif operation == 2:  # cut here
            del data[position:]
        elif operation == 3:  # delete a stretch
            del data[position : position + draw(st.integers(1, 200))]
        else:  # repeat a stretch (duplicate items, tags)
            data[position:position] = data[position : position + draw(st.integers(1, 400))]
    return bytes(data)


@FUZZ
@given(body=mutated(), content_type=st.sampled_from(["application/rss+xml", "text/html", ""]))
def test_mutated_feeds_keep_every_invariant(body: bytes, content_type: str) -> None:
    event(f"entries kept: {min(run_pipeline(body, content_type), 3)}+")


def test_the_seeds_themselves_go_through() -> None:
    """The unmutated seeds are kept whole: the fuzzer starts from working feeds."""
    assert [run_pipeline(seed) for seed in SEEDS] == [1, 2, 2, 3]
