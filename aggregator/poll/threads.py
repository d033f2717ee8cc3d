"""The poll threads of a pass: who takes which source, and how many threads a pass runs.

`workers` threads are what a pass needs when its polls wait (on a distant server, or on a
parser process reading a feed) and a cost when they do not: a poll that only sends a
conditional GET to a server nearby and reads its 304 is CPU from start to end, and two or
more such threads spend their time handing the GIL to each other (bench/README.md has the
figures). So a pass starts one thread, which takes source after source itself, and starts
the others as soon as its polls are seen waiting instead of working (`should_grow`). A pass
whose polls wait therefore runs as many threads as before, one tick later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from queue import SimpleQueue

from aggregator.models import PollResult, Source
from aggregator.store.rows import SourceState

# How often the pass looks at its threads. A thread never wakes the pass's thread for one
# poll: that handoff cost as much as the poll itself on local 304s.
TICK = 0.05  # seconds
# One poll running longer than this is waiting on something, and so is a thread that
# spent more than this share of a tick not running.
SLOW_POLL = TICK
WAITING_SHARE = 0.5

Poll = Callable[[Source, SourceState | None], PollResult]


def should_grow(waited: float, running: float, elapsed: float) -> bool:
    """Whether the pass's one thread should have the others beside it: its current poll has
    been running for longer than `SLOW_POLL` (`running`), or it spent more than
    `WAITING_SHARE` of the `elapsed` tick waiting instead of running (`waited`)."""
    return running > SLOW_POLL or waited > WAITING_SHARE * elapsed


class SourceQueue:
    """The pass's sources in order, each with its stored state, handed out one at a time to
    whichever thread asks. States are read a chunk at a time: one query, not one per poll."""

    def __init__(
        self,
        sources: Sequence[Source],
        states: Callable[[list[str]], Iterable[SourceState]],
        chunk: int,
    ) -> None:
        self._sources = sources
        self._states = states
        self._chunk = chunk
        self._next = 0
        self._known: dict[str, SourceState] = {}
        self._lock = threading.Lock()

    def take(self) -> tuple[int, Source, SourceState | None] | None:
        with self._lock:
            index = self._next
            if index >= len(self._sources):
                return None
            if index % self._chunk == 0:
                names = [s.name for s in self._sources[index : index + self._chunk]]
                self._known = {state.name: state for state in self._states(names)}
            self._next += 1
            source = self._sources[index]
            return index, source, self._known.get(source.name)


class PollThread(threading.Thread):
    """Takes the next source, polls it, puts its index in `finished`, until none is left
    or the pass stops; then sets `stop`, which is what wakes the pass at its end. Keeps
    the time its polls spent waiting (wall time less its own CPU time) for `should_grow`,
    and when its current poll began."""

    def __init__(
        self,
        poll: Poll,
        queue: SourceQueue,
        results: list[PollResult | None],
        finished: SimpleQueue[int],
        stop: threading.Event,
    ) -> None:
        super().__init__(name="poll", daemon=True)
        self._poll = poll
        self._queue = queue
        self._results = results
        self._finished = finished
        self._over = stop
        self.waited = 0.0
        self.polling_since: float | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._over.is_set() and (job := self._queue.take()) is not None:
                index, source, state = job
                self.polling_since = started = time.monotonic()
                cpu = time.thread_time()
                self._results[index] = self._poll(source, state)
                self.polling_since = None
                self.waited += (time.monotonic() - started) - (time.thread_time() - cpu)
                self._finished.put(index)
        except BaseException as exc:  # handed to the pass, which raises it in its thread
            self.failure = exc
        finally:
            self._over.set()  # no source left (or a failure): the pass waits for the rest
