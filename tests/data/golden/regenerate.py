"""Write tests/data/golden/<case>.expected.json from what the parser gives today.

Run by hand, never by the tests:

    .venv/bin/python tests/data/golden/regenerate.py [case ...]

The output is what the code does, not what it should do: REVIEW THE DIFF BY EYE BEFORE
COMMITTING (`git diff tests/data/golden`), entry by entry, against the feed itself. A
golden file that records a bug makes the bug the specification.

Each case's content type and which path the fast reader takes (with the reason when it
declines) are written here by hand; the script refuses to write a case whose fast path does
not behave as written, or whose two paths disagree. A file's `notes` (what a reader of it
should know) are kept. A file with a `known_bug` holds entries corrected by hand to what the
parser should give (tests/test_golden.py expects it to fail there): it is not rewritten.
Once the bug is fixed, delete the key and check the parser now gives the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for test_golden's reading of a case

from test_golden import GOLDEN, fast_path_accepts, parse, serialise  # noqa: E402

RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
CASES = {  # file: (Content-Type served, what the fast path does)
    "rsshub-aljazeera.rss": (RSS, "accepts"),
    "atom-html.atom": (ATOM, "accepts"),
    "atom-xhtml.atom": (ATOM, "accepts"),
    "atom-xmlbase.atom": (ATOM, "accepts"),
    "news-media.rss": (RSS, "accepts"),
    "podcast-itunes.rss": (RSS, "accepts"),
    "cdata-entities.rss": (RSS, "accepts"),
    "odd-guids.rss": (RSS, "accepts"),
    "rdf-1.0.rdf": ("application/rdf+xml", "declines: RSS 1.0"),
    "latin1.rss": ("application/rss+xml", "accepts"),
}


def main(names: list[str]) -> None:
    for case in names or sorted(CASES):
        content_type, fast_path = CASES[case]
        target = GOLDEN / f"{case}.expected.json"
        kept = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
        if "known_bug" in kept:
            print(f"kept {target.name}: corrected by hand ({kept['known_bug'][:60]}...)")
            continue
        target.write_text(
            json.dumps({"content_type": content_type, "fast_path": fast_path}) + "\n",
            encoding="utf-8",
        )  # parse() reads the content type from here
        if fast_path_accepts(case) != (fast_path == "accepts"):
            target.unlink()
            raise SystemExit(f"{case}: the fast path does not do as written: {fast_path}")
        slow = serialise(parse(case, fast=False))
        if serialise(parse(case, fast=True)) != slow:
            target.unlink()
            raise SystemExit(f"{case}: the two parser paths disagree")
        notes = {"notes": kept["notes"]} if "notes" in kept else {}
        facts = {"content_type": content_type, "fast_path": fast_path, **notes, **slow}
        text = json.dumps(facts, ensure_ascii=False, indent=2)
        target.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {target.name}: {len(slow['entries'])} entries")


if __name__ == "__main__":
    main(sys.argv[1:])
