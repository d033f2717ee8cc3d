"""A second process that fetches for a pass whose polls do not wait.

A poll that sends a conditional GET to a server nearby and reads its 304 is CPU from start
to end, most of it in requests, urllib3 and http.client (~0.5 ms). A pass of such polls runs
one thread (threads.py), since two threads only hand the GIL to each other, and so uses one
core of the machine's two. This process is the other core: it fetches sources a chunk at a
time with a session of its own, and sends back what each fetch gave. The pass's process
still does everything else with those results (decide, store, documents), so nothing but
HTTP happens here, and nothing here writes anything.

Chunks, not one fetch per message: when each fetch crossed the pipe by itself, the threads
lending them to the process queued for the GIL at every one (~15 ms each instead of 0.5 ms;
bench/README.md has the figures).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import stat
import time
from multiprocessing.connection import Connection
from typing import NamedTuple

import requests

from aggregator.models import FetchResult, HttpState
from aggregator.poll.workers import start_worker
from aggregator.sources.fetch import FetchLimits, fetch_source, make_session
from aggregator.sources.reach import Reach

READY = "ready"


class FetchOrder(NamedTuple):
    """What one poll asks of HTTP: the URL, the validators to send, where it may connect."""

    url: str
    http: HttpState
    reach: Reach


class Fetched(NamedTuple):
    """What one fetch gave, how long it took, and how much of that it spent waiting (on the
    server, or for a core) rather than working."""

    result: FetchResult
    seconds: float
    waited: float


def fetch_ordered(session: requests.Session, order: FetchOrder, limits: FetchLimits) -> Fetched:
    """One fetch as a poll makes it, in the pass's process or in the fetch process."""
    started, cpu = time.monotonic(), time.thread_time()
    result = fetch_source(session, order.url, order.http, limits, reach=order.reach)
    seconds = time.monotonic() - started
    return Fetched(result, seconds, seconds - (time.thread_time() - cpu))


class FetchProcess:
    """The pass's side of the process: `send` a chunk of orders, `receive` what the first of
    them gave, in the same order (all of them unless one was slow: see `serve`).

    Forked (`start_method`), the process is ready within ~0.04 s, having nothing to import;
    spawned (as tests do, from a process with threads), ~0.2 s. Any failure of the process
    (killed, or gone) comes out of `send` and `receive` as `EOFError` or `OSError`."""

    def __init__(self, limits: FetchLimits, slow: float, start_method: str = "fork") -> None:
        context = multiprocessing.get_context(start_method)
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=serve,
            args=(child, self._connection, limits, slow, os.getpid()),
            name="fetch",
            daemon=True,
        )
        self._process.start()
        child.close()

    def ready(self, timeout: float) -> bool | None:
        """Whether the process can fetch: True once it can, False if it never will, None
        while it is still starting after `timeout` seconds."""
        try:
            if not self._connection.poll(timeout):
                return None
            return self._connection.recv() == READY
        except (EOFError, OSError):
            return False

    def send(self, orders: list[FetchOrder]) -> None:
        self._connection.send(orders)

    def receive(self) -> list[Fetched]:
        return self._connection.recv()

    def close(self) -> None:
        """End the process; one still fetching (a slow server) is not waited for."""
        with contextlib.suppress(OSError):
            self._connection.send(None)
        self._connection.close()
        self._process.join(timeout=1.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def serve(
    connection: Connection, theirs: Connection, limits: FetchLimits, slow: float, parent: int
) -> None:
    """The process's life: fetch each chunk received, until the pass says it is over or is
    gone. A chunk ends at its first fetch slower than `slow` seconds (the rest, sent back
    unfetched, are polls that wait, which the pass's threads make better than this one), or
    once its bodies add up to more than one may be (`max_body`), so that a chunk of large
    feeds never holds more than two of them in memory on either side of the pipe.
    `theirs`, the pass's end of the pipe, is closed here: a forked process has a copy,
    which would keep it from ever seeing the pass end."""
    theirs.close()
    close_inherited_files()
    start_worker(parent)
    session = make_session(limits)
    first = True
    try:
        connection.send(READY)
    except OSError:  # the pass ended before this process was ready
        return
    while True:
        try:
            orders = connection.recv()
        except (EOFError, OSError):
            return
        if orders is None:
            return
        fetched: list[Fetched] = []
        size = 0
        for order in orders:
            fetched.append(fetch_ordered(session, order, limits))
            size += len(fetched[-1].result.body or b"")
            # The process's first fetch is slow whatever the server: it connects, starts
            # the deadline thread and copies the pages of the pass's process it touches.
            if (fetched[-1].seconds > slow and not first) or size > limits.max_body:
                break
            first = False
        try:
            connection.send(fetched)
        except OSError:  # the pass is gone
            return


def close_inherited_files() -> None:
    """Close this process's copies of the files the pass's process has open. Forked, it has
    one of each, the database and `update`'s instance lock among them: the lock's flock
    would live on in this process for as long as it does, so that an `update` killed with
    SIGKILL would keep the next one from starting until this process noticed. Pipes,
    sockets and the standard streams stay (its own end of the pipe, multiprocessing's).
    Closing a copy drops no lock of the pass's process: flocks belong to the file
    description, which the pass's process still holds, and this process holds no fcntl lock
    of its own."""
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # not Linux: the process was spawned, and inherited no file
        return
    for descriptor in descriptors:
        with contextlib.suppress(OSError):  # the listing's own, closed already
            if descriptor > 2 and stat.S_ISREG(os.fstat(descriptor).st_mode):
                os.close(descriptor)
