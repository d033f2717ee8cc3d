"""The poll threads of a pass: who takes which source, and how many threads a pass runs.

`workers` threads are what a pass needs when its polls wait (on a distant server, or on a
parser process reading a feed) and a cost when they do not: a poll that only sends a
conditional GET to a server nearby and reads its 304 is CPU from start to end, and two or
more such threads spend their time handing the GIL to each other (bench/README.md has the
figures). So a pass starts one thread, which takes source after source itself, and starts
the others as soon as its polls are seen waiting instead of working (`should_grow`). A pass
whose polls wait therefore runs as many threads as before, one tick later.

A pass whose polls do not wait uses one core that way. When it may fork a fetch process
(`should_lend`), a `LentPollThread` lends that process chunks of sources to fetch on the
other core and polls what it fetched; `PassThreads` decides when to grow and when to lend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from queue import SimpleQueue

from aggregator.models import PollResult, Source
from aggregator.poll.fetch_process import Fetched, FetchOrder, FetchProcess
from aggregator.store.rows import SourceState

log = logging.getLogger(__name__)

# How often the pass looks at its threads. A thread never wakes the pass's thread for one
# poll: that handoff cost as much as the poll itself on local 304s.
TICK = 0.05  # seconds
# One poll running longer than this is waiting on something, and so is a thread that
# spent more than this share of a tick not running.
SLOW_POLL = TICK
WAITING_SHARE = 0.5
# Sources the fetch process is given at a time: enough that the pipe is crossed once for
# many fetches (one crossing each cost ~15 ms of waiting for the GIL), few enough that the
# last chunk of a pass does not keep it waiting long.
LENT_CHUNK = 25
# Polls the pass's one thread ends, none of them waiting, before the pass lends sources to
# its fetch process: ~70 local 304s end in a tick, while a cold pass's first poll is still
# reading its feed at the first look.
QUICK_POLLS = 10
# Passes of fewer sources lend none: a pass of 200 local 304s takes ~0.15 s on one thread.
LEND_FROM = 200

Poll = Callable[[Source, SourceState | None, Fetched | None], PollResult]
Job = tuple[int, Source, SourceState | None]  # a source, its place in the pass, its state


def should_grow(waited: float, running: float, elapsed: float) -> bool:
    """Whether the pass's one thread should have the others beside it: its current poll has
    been running for longer than `SLOW_POLL` (`running`), or it spent more than
    `WAITING_SHARE` of the `elapsed` tick waiting instead of running (`waited`)."""
    return running > SLOW_POLL or waited > WAITING_SHARE * elapsed


def should_lend(
    sources: int, *, workers: int, parse_processes: int, cores: int, threads: int, platform: str
) -> bool:
    """Whether a pass of `sources` starts a fetch process (fetch_process.py) beside its one
    thread: only when it has `LEND_FROM` sources or more, may run more than one poll at a
    time, uses processes at all (not the plain path, `parse_processes=0`), has a second
    core to give it, and can fork it safely: on Linux, from a process that runs no other
    thread yet (a forked child of a threaded process can inherit a held lock and hang; a
    spawned one would take ~0.2 s to start, most of such a pass)."""
    return (
        sources >= LEND_FROM
        and workers > 1
        and parse_processes > 0
        and cores > 1
        and threads == 1
        and platform == "linux"
    )


class SourceQueue:
    """The pass's sources in order, each with its stored state, handed out one at a time to
    whichever thread asks. States are read a chunk at a time: one query, not one per poll.

    Sources lent to the fetch process (`lend`) are settled when they have been polled, or
    given back when it did not fetch them; while any are out, a thread that finds nothing
    left waits for them instead of ending the pass."""

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
        self._back: deque[Job] = deque()  # given back: taken first
        self._lent = 0  # lent and neither polled nor given back yet
        self._closed = False
        self._changed = threading.Condition()

    def take(self) -> Job | None:
        """The next source; None once none is left (or the queue is closed)."""
        with self._changed:
            while (job := self._take()) is None and self._lent and not self._closed:
                self._changed.wait()
            return job

    def lend(self, count: int) -> list[Job]:
        """Up to `count` sources at once, for the fetch process; none when none is left."""
        with self._changed:
            jobs = []
            while len(jobs) < count and (job := self._take()) is not None:
                jobs.append(job)
            self._lent += len(jobs)
            return jobs

    def settle(self, polled: int, back: Sequence[Job] = ()) -> None:
        """`polled` lent sources were polled; `back` were not, and are taken next."""
        with self._changed:
            self._lent -= polled + len(back)
            self._back.extend(back)
            self._changed.notify_all()

    def close(self) -> None:
        """Take nothing more: the pass is over (or failed)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _take(self) -> Job | None:
        if self._closed:
            return None
        if self._back:
            return self._back.popleft()
        index = self._next
        if index >= len(self._sources):
            return None
        if index % self._chunk == 0:
            names = [s.name for s in self._sources[index : index + self._chunk]]
            self._known = {state.name: state for state in self._states(names)}
        self._next += 1
        source = self._sources[index]
        return index, source, self._known.get(source.name)


@dataclass(frozen=True)
class PassWork:
    """What every poll thread of a pass shares: how to poll, where sources come from, where
    results go (`finished` gets each index as its poll ends), the event that ends the pass,
    and what follows each poll (saving a full batch of states)."""

    poll: Poll
    queue: SourceQueue
    results: list[PollResult | None]
    finished: SimpleQueue[int]
    stop: threading.Event
    after_poll: Callable[[], None]

    def record(self, index: int, result: PollResult) -> None:
        self.results[index] = result
        self.after_poll()
        self.finished.put(index)


class PollThread(threading.Thread):
    """Takes the next source, polls it, puts its index in `finished`, until none is left
    or the pass stops; then sets `stop`, which is what wakes the pass at its end. Keeps
    the time its polls spent waiting (wall time less its own CPU time) for `should_grow`,
    and when its current poll began."""

    def __init__(self, work: PassWork) -> None:
        super().__init__(name="poll", daemon=True)
        self._work = work
        self.waited = 0.0
        self.polled = 0
        self.polling_since: float | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        work = self._work
        try:
            while not work.stop.is_set() and (job := work.queue.take()) is not None:
                index, source, state = job
                self.polling_since = started = time.monotonic()
                cpu = time.thread_time()
                result = work.poll(source, state, None)
                self.polling_since = None
                self.waited += (time.monotonic() - started) - (time.thread_time() - cpu)
                self.polled += 1
                work.record(index, result)  # not timed: saving states is work, not waiting
        except BaseException as exc:  # handed to the pass, which raises it in its thread
            self.failure = exc
        finally:
            work.stop.set()  # no source left (or a failure): the pass waits for the rest


def _fetches_waited(fetches: Sequence[Fetched]) -> bool:
    """Whether the fetch process spent more of a chunk waiting than working."""
    return sum(f.waited for f in fetches) > WAITING_SHARE * sum(f.seconds for f in fetches)


class LentPollThread(threading.Thread):
    """Polls sources whose fetches a `FetchProcess` makes, a chunk at a time, while the
    pass runs one thread (the process is the machine's other core: fetch_process.py).

    It lends nothing before the pass has seen its one thread's polls not wait (`lending`),
    and nothing more once the pass has grown (`grown`), or once its own polls are seen
    waiting (it clears `lending`, and the pass decides whether to grow again): polls that
    wait are better made by the pass's threads, each at its own pace, than one after
    another in the process. For the same reason the process stops a chunk at its first slow
    fetch, and the sources it did not fetch go back to the queue. Two chunks are out at a
    time, so that the process fetches one while this thread handles the other's results.

    A process that fails (killed, gone) costs nothing: what it was given goes back to the
    queue, and the thread ends."""

    def __init__(
        self,
        work: PassWork,
        order: Callable[[Source, SourceState | None], FetchOrder],
        lending: threading.Event,
        grown: threading.Event,
        process: FetchProcess,
    ) -> None:
        super().__init__(name="poll-lent", daemon=True)
        self._work = work
        self._order = order
        self._lending = lending
        self._grown = grown
        self._process = process
        self.failure: BaseException | None = None

    def run(self) -> None:
        out: deque[list[Job]] = deque()  # sent to the process, in order
        try:
            if not self._ready_to_lend():
                return
            while True:
                if self._lending.is_set() and len(out) < 2 and not self._over_or_grown():
                    jobs = self._work.queue.lend(LENT_CHUNK)
                    if jobs:
                        out.append(jobs)
                        if not self._send(jobs):
                            break
                        continue
                if not out:
                    return
                fetches = self._receive()
                if fetches is None:
                    break
                jobs = out.popleft()
                polls_waited = False
                for (index, source, state), fetch in zip(jobs, fetches, strict=False):
                    started, cpu = time.monotonic(), time.thread_time()
                    result = self._work.poll(source, state, fetch)
                    # A poll that waited (on a parser process reading its feed).
                    waited = (time.monotonic() - started) - (time.thread_time() - cpu)
                    polls_waited = polls_waited or waited > SLOW_POLL
                    self._work.record(index, result)
                back = jobs[len(fetches) :]
                self._work.queue.settle(len(fetches), back)
                if back or polls_waited or _fetches_waited(fetches):
                    # These polls wait: the pass's threads make them better, each at its
                    # own pace, and the pass grows again when they need more of them.
                    self._lending.clear()
            self._work.queue.settle(0, [job for jobs in out for job in jobs])  # it failed
        except BaseException as exc:  # handed to the pass, which raises it in its thread
            self.failure = exc
            self._work.stop.set()
            self._work.queue.close()
        finally:
            self._lending.clear()  # lending is over: the pass watches its threads again

    def _over_or_grown(self) -> bool:
        return self._work.stop.is_set() or self._grown.is_set()

    def _send(self, jobs: list[Job]) -> bool:
        try:
            self._process.send([self._order(source, state) for _, source, state in jobs])
        except OSError as exc:
            return self._failed(exc)
        return True

    def _receive(self) -> list[Fetched] | None:
        try:
            return self._process.receive()
        except (EOFError, OSError) as exc:
            self._failed(exc)
            return None

    def _failed(self, error: BaseException) -> bool:
        log.warning(
            "the fetch process failed (%s); the pass fetches its sources itself",
            str(error) or type(error).__name__,
        )
        return False

    def _ready_to_lend(self) -> bool:
        """Wait until the process can fetch and the pass lends; False if it never will."""
        while (ready := self._process.ready(TICK)) is None:
            if self._over_or_grown():
                return False
        if not ready:
            return self._failed(EOFError("it did not start"))
        while not self._lending.wait(TICK):
            if self._over_or_grown():
                return False
        return True


class PassThreads:
    """The threads of one pass and the pass's decisions about them: it starts with one
    poll thread, adds the other `workers - 1` when that one's polls wait (`should_grow`),
    and lends sources to its fetch process (`lender`: the process, and how to order a
    source's fetch) once that thread has shown its polls quick. `look` makes both
    decisions; the pass calls it after each `wait`."""

    def __init__(
        self,
        work: PassWork,
        workers: int,
        lender: tuple[FetchProcess, Callable[[Source, SourceState | None], FetchOrder]] | None,
    ) -> None:
        self._work = work
        self._workers = workers
        self._threads: list[PollThread] = []
        self._lending = threading.Event()  # cleared by the lending thread when it stops
        self._grown = threading.Event()
        self._lent = (
            LentPollThread(work, lender[1], self._lending, self._grown, lender[0])
            if lender is not None
            else None
        )
        self._offered = False  # lending was set once
        self._waited = 0.0  # the one thread's waiting at the last look
        self._began = self._looked = time.monotonic()

    def start(self) -> None:
        self._add(1)
        if self._lent is not None:
            self._lent.start()

    def wait(self) -> bool:
        """Wait for the next look; False once the pass's polls are over. Until the pass has
        decided whether to lend, it looks five times as often."""
        return not self._work.stop.wait(TICK / 5 if self._deciding() else TICK)

    def look(self) -> None:
        """Add the other threads if the one thread's polls wait; lend if they are quick."""
        if not 1 == len(self._threads) < self._workers or self._work.stop.is_set():
            return
        (only,) = self._threads
        now = time.monotonic()
        since = only.polling_since
        running = now - since if since is not None else 0.0
        if now - self._looked >= TICK:
            # While the pass lends, its thread's waiting is mostly the GIL, held by the
            # thread handling the fetch process's results: the lending thread watches its
            # own polls for waiting instead.
            waited = 0.0 if self._lending.is_set() else only.waited - self._waited
            if should_grow(waited, running, now - self._looked):
                self._grown.set()
                self._add(self._workers - 1)
            self._waited, self._looked = only.waited, now
        if (
            self._deciding()
            and only.polled >= QUICK_POLLS
            and not should_grow(only.waited, running, now - self._began)
        ):
            self._offered = True
            self._lending.set()

    def end(self) -> None:
        """Stop taking sources and wait for every thread."""
        self._work.stop.set()
        self._work.queue.close()
        for thread in self._everyone():
            thread.join()

    def raise_failure(self) -> None:
        """Raise what failed in a thread (a bug, a disk that cannot be written), if any."""
        for thread in self._everyone():
            if thread.failure is not None:
                raise thread.failure

    def _everyone(self) -> list[PollThread | LentPollThread]:
        return [*self._threads, *([self._lent] if self._lent else [])]

    def _deciding(self) -> bool:
        return self._lent is not None and not self._offered and not self._grown.is_set()

    def _add(self, count: int) -> None:
        for _ in range(count):
            thread = PollThread(self._work)
            thread.start()
            self._threads.append(thread)
