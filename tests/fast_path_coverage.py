"""How many of the corpus feeds the fast reader takes, and how much faster it reads them.

Run by hand, never by the tests:

    .venv/bin/python tests/fast_path_coverage.py [REVISION]

Counts the feeds of tests/data/real (*.xml, *.rss, *.atom, *.rdf) and tests/data/golden that
`parse_plain_feed` takes (with REVISION, also what parse_fast.py of that git revision took),
then times the largest one and a long feed built from the newspaper's items through both
paths of `parse_feed`.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import feedparser  # noqa: E402

from aggregator.models import Source  # noqa: E402
from aggregator.sources import parse_fast  # noqa: E402
from aggregator.sources.parse import parse_feed  # noqa: E402

DATA = ROOT / "tests" / "data"
URL = "https://feeds.example.net/feed"
FEEDS = sorted(
    path
    for folder, suffixes in (
        (DATA / "real", {".xml", ".rss", ".atom", ".rdf"}),
        (DATA / "golden", {".xml", ".rss", ".atom", ".rdf"}),
    )
    for path in folder.iterdir()
    if path.suffix in suffixes
)


def content_type(path: Path) -> str:
    facts = path.with_name(path.name + ".expected.json")
    if facts.exists():
        return json.loads(facts.read_text(encoding="utf-8")).get("content_type", "")
    return "application/xml"


def revision_module(revision: str) -> Any:
    source = subprocess.run(
        ["git", "show", f"{revision}:aggregator/sources/parse_fast.py"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
        file.write(source)
    spec = importlib.util.spec_from_file_location("parse_fast_then", file.name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def taken(module: Any, path: Path) -> bool:
    headers = {"content-type": content_type(path), "content-location": URL}
    return module.parse_plain_feed(path.read_bytes(), headers) is not None


def per_feed(body: bytes, kind: str, *, fast: bool, rounds: int = 30) -> float:
    source = Source("bench", URL)
    parse_feed(body, source, URL, {"content-type": kind}, fast=fast)
    start = time.perf_counter()
    for _ in range(rounds):
        parse_feed(body, source, URL, {"content-type": kind}, fast=fast)
    return (time.perf_counter() - start) / rounds * 1000


def reading(body: bytes, kind: str, rounds: int = 30) -> tuple[float, float]:
    """`parse_plain_feed` against `feedparser.parse` as parse.py calls it, in ms."""
    headers = {"content-type": kind, "content-location": URL}
    timings = []
    for read in (
        lambda: parse_fast.parse_plain_feed(body, headers),
        lambda: feedparser.parse(
            body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        ),
    ):
        read()
        start = time.perf_counter()
        for _ in range(rounds):
            read()
        timings.append((time.perf_counter() - start) / rounds * 1000)
    return timings[0], timings[1]


def main(revision: str | None) -> None:
    then = revision_module(revision) if revision else None
    now_count = then_count = 0
    for path in FEEDS:
        now = taken(parse_fast, path)
        before = taken(then, path) if then else None
        now_count += now
        then_count += bool(before)
        was = "" if then is None else f"  (before: {'fast' if before else 'feedparser'})"
        print(f"{'fast' if now else 'feedparser':10} {path.relative_to(DATA)}{was}")
    print(f"fast path now: {now_count}/{len(FEEDS)}")
    if then:
        print(f"fast path at {revision}: {then_count}/{len(FEEDS)}")
    largest = max(FEEDS, key=lambda path: path.stat().st_size)
    newspaper = (DATA / "real" / "newspaper.rss").read_bytes()
    head, rest = newspaper.split(b"<item>", 1)
    items, tail = rest.rsplit(b"</item>", 1)
    long_feed = head + (b"<item>" + items + b"</item>") * 8 + tail  # 96 items
    for name, body, kind in (
        (largest.name, largest.read_bytes(), content_type(largest)),
        ("newspaper.rss x8 (96 items)", long_feed, "application/rss+xml"),
    ):
        fast, slow = per_feed(body, kind, fast=True), per_feed(body, kind, fast=False)
        read_fast, read_slow = reading(body, kind)
        print(
            f"{name} ({len(body) // 1024} kB): parse_feed {fast:.1f} ms with the fast path, "
            f"{slow:.1f} ms with feedparser's ({slow / fast:.1f}x); the reading alone "
            f"{read_fast:.2f} ms vs {read_slow:.1f} ms ({read_slow / read_fast:.0f}x)"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
