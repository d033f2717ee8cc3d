"""Start-up of the parser processes that `update` runs parsing and document writing in.

Kept apart from `update` on purpose: a spawned worker imports the module of its initializer,
and importing only the standard library here (`parse_task` imports the parser when called)
keeps each worker ~16 MB smaller than one that imports the whole pipeline (HTTP, SQLite,
feed generation) it never uses.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from aggregator.poll.memory import release


def start_worker(parent: int) -> None:
    """Leave Ctrl-C to the parent, which shuts the workers down in order, and end when the
    parent is gone (SIGKILL, OOM): nothing else would ever wake an idle worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def parse_task(*args: Any) -> Any:
    """`parse_feed(*args)`, imported where it runs: the process that fetches and stores
    then never imports feedparser, lxml and the sanitiser (a tenth of an all-304 pass's
    start), unless it has to parse by itself."""
    from aggregator.sources.parse import parse_feed

    return parse_feed(*args)


class _Overtime(BaseException):
    """The alarm of `limited_parse_task`. Not an Exception: the fast path's fallback (and any
    library's `except Exception`) took the first one for a failure of its own and went on
    reading with feedparser, with no alarm left (a feed encoded as punycode, whose Python
    decoder is quadratic, then took 14 minutes instead of 60 s)."""


def limited_parse_task(seconds: float, *args: Any) -> Any:
    """`parse_task` in a parser process, refused once it has taken `seconds`: a feed can be
    slow to read without being large (feedparser looks through an entry's tags for each new
    one, so a 2.7 MB item of 100,000 categories took it minutes), and the fetch's limits end
    before parsing starts. A worker runs its tasks in its main thread, where SIGALRM lands."""
    from aggregator.errors import ParseError

    def refuse(signum: int, frame: Any) -> None:
        raise _Overtime

    previous = signal.signal(signal.SIGALRM, refuse)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return parse_task(*args)
    except _Overtime:
        raise ParseError(f"reading the feed took longer than {seconds:g} s; refused") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_task(function: Callable[..., Any], *args: Any) -> Any:
    """One task in a parser process, then the memory it freed handed back: a worker that
    built a large feed would otherwise keep that peak for the rest of its life."""
    try:
        return function(*args)
    finally:
        release()
