"""One update cycle of the peer, lemon24's `reader`, against the feed world.

Runs under the peer's own interpreter (see bench/README.md; `bench/run.py` installs it into
/tmp/peer-venv when missing), so nothing here imports aggregator. Prints one JSON line.
`update_feeds(scheduled=False)` forces every feed to be polled, as our cycle does.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from reader import make_reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--feeds", type=int, required=True)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    reader = make_reader(str(args.dir / "reader.sqlite"), search_enabled=False)
    for index in range(args.feeds):
        reader.add_feed(f"http://127.0.0.1:{args.port}/feed/{index}.xml", exist_ok=True)
    before = reader.get_entry_counts().total
    started = time.perf_counter()
    errors = 0
    for result in reader.update_feeds_iter(scheduled=False, workers=args.workers):
        if isinstance(result.value, Exception):
            errors += 1
    wall = time.perf_counter() - started
    after = reader.get_entry_counts().total
    reader.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "wall": wall,
                "feeds": args.feeds,
                "new_entries": after - before,
                "errors": errors,
                "maxrss_mb": usage.ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
