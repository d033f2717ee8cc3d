"""The parser processes: where parsing, and the CPU-heavy outputs, run beside the threads
that fetch and store.

Parsing and sanitising are most of a cold poll and pure CPU (bench/README.md has the
figures), so a small pool of spawned processes does them while this process fetches and
stores (SQLite has one writer anyway). A worker imports only what it runs (workers.py).
Hostile input may kill a worker: the pool is then started afresh, and a pool that never
worked at all (no `if __name__ == "__main__":` guard in a script) falls back to parsing here.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from aggregator.errors import ParseError
from aggregator.models import ParsedFeed, Source
from aggregator.poll.workers import limited_parse_task, parse_task, run_task, start_worker

log = logging.getLogger(__name__)

# Two cores parse ~2x faster than one; beyond four the single writer is the limit anyway.
PARSE_PROCESSES = max(1, min(4, os.cpu_count() or 1))
# A feed still being read after this long is refused (`workers.limited_parse_task`): a
# legitimate one takes well under a second, the largest allowed (15 MiB) a few.
PARSE_SECONDS = 60.0


class ParserProcesses:
    """A lazily started pool of `count` spawned processes; `count=0` runs everything in the
    calling thread (the plain path, which tests compare with the pool's)."""

    def __init__(self, count: int | None = None, parse_seconds: float = PARSE_SECONDS) -> None:
        self.count = PARSE_PROCESSES if count is None else count
        self.parse_seconds = parse_seconds
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._parsed = 0  # by the current pool: has it ever worked?

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the daemon has threads (scheduler, server), and a forked
                # child of a threaded process can inherit a held lock and hang.
                self._parsed = 0
                self._pool = ProcessPoolExecutor(
                    max_workers=self.count,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=start_worker,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        """Forget a broken pool; the next task starts fresh processes."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def parse(
        self, body: bytes, source: Source, url: str, headers: Mapping[str, str], now: datetime
    ) -> ParsedFeed:
        """`parse_feed`, in a worker process when there are any; the same result either way
        (tests/test_parse_parallel.py checks this)."""
        if self.count <= 0:
            return parse_task(body, source, url, headers, now)
        pool = self._started()
        try:
            task = (limited_parse_task, self.parse_seconds, body, source, url, dict(headers), now)
            parsed = pool.submit(run_task, *task).result()
        except BrokenProcessPool:
            # A worker died (killed, or crashed on this body): start fresh ones next time.
            never_worked = self._parsed == 0
            if never_worked:
                self.count = 0
            self._drop(pool)
            if never_worked:
                log.warning("parser processes cannot start; parsing in this process instead")
                return parse_task(body, source, url, headers, now)
            raise ParseError("the parser process died while parsing this feed") from None
        self._parsed += 1
        return parsed

    def run_jobs(
        self, function: Callable[..., Any], jobs: Iterable[tuple], worth_it: bool = True
    ) -> Iterator[Any]:
        """`function(*job)` for each job, in order, in the processes when there are any and
        `worth_it`, else here. At most a few jobs wait in the pool at a time, so their
        arguments (entries) never pile up in memory. Outputs are not hostile input's
        playground: if a worker dies, the rest is simply done here."""
        if self.count <= 0 or not worth_it:
            yield from (function(*job) for job in jobs)
            return
        pool = self._started()
        waiting: deque[tuple[Future, tuple]] = deque()
        remaining = iter(jobs)
        unsent: tuple | None = None  # a job whose submission failed: done here too
        try:
            for unsent in remaining:
                waiting.append((pool.submit(run_task, function, *unsent), unsent))
                unsent = None
                while len(waiting) >= 2 * self.count:
                    result = waiting[0][0].result()
                    waiting.popleft()
                    yield result
            while waiting:
                result = waiting[0][0].result()
                waiting.popleft()
                yield result
        except BrokenProcessPool:
            self._drop(pool)
            for _, job in waiting:
                yield function(*job)
            if unsent is not None:
                yield function(*unsent)
            yield from (function(*job) for job in remaining)
