"""A pass over the sources, and everything a pass needs opened once.

`Pipeline` is what the commands and the daemon hold: the config, the store, one HTTP
session, the parser processes, a `Poller` (poller.py: one poll, the I/O around decide.py)
and a `Publisher` (outputs/publisher.py: documents and feeds). `update_all` is the pass:

    for each enabled source, concurrently:  fetch -> parse -> decide -> store
    while polls go on:                       write the documents owed, in batches
    at the end:                              write the rest, then the merged and group feeds

A pass keeps at most `workers` polls in flight, each in a thread that takes the next source
itself, and only one while polls do not wait (threads.py), so memory does not grow with
the number of sources; while they do not, a long pass also lends sources to a fetch process
(fetch_process.py), the machine's other core. Documents are written by a thread of their
own while polls go on, so the parser processes are never idle waiting for a batch.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from queue import SimpleQueue

from aggregator.config.settings import Config
from aggregator.models import PollResult, Source
from aggregator.outputs.publisher import Publisher
from aggregator.poll import memory
from aggregator.poll.fetch_process import Fetched, FetchProcess
from aggregator.poll.poller import Poller
from aggregator.poll.processes import ParserProcesses
from aggregator.poll.threads import SLOW_POLL, PassThreads, PassWork, SourceQueue, should_lend
from aggregator.sources.fetch import fetch_limits, make_session
from aggregator.store.database import Store
from aggregator.store.rows import SourceState

# Documents are written in this many entries at a time while the pass goes on, so that
# rendering overlaps with parsing in the workers instead of waiting for the last poll.
DOCUMENT_BATCH = 500
STATE_CHUNK = 500


class Pipeline:
    """Everything a pass needs, opened once. `parse_processes=0` parses in the calling
    thread: the plain path, used by tests that compare the two and by the profile."""

    def __init__(self, config: Config, store: Store, *, parse_processes: int | None = None) -> None:
        self.config = config
        self.store = store
        self.limits = fetch_limits(config)
        self.session = make_session(self.limits, pool_size=max(10, config.workers))
        self.sources = {source.name: source for source in config.sources}
        memory.limit_arenas()  # before the pass starts its threads
        self.parsers = ParserProcesses(parse_processes)
        self.poller = Poller(config, store, self.session, self.limits, self.parsers)
        self.publisher = Publisher(config, store, self.session, self.limits, self.parsers.run_jobs)
        store.sync_sources((s.name, s.url) for s in config.sources)

    def close(self) -> None:
        self.session.close()
        self.parsers.close()

    def poll(self, source: Source) -> PollResult:
        """Fetch, parse and store one source; never raises for the source's own faults."""
        return self._poll(source, self.store.source_state(source.name))

    def _poll(
        self,
        source: Source,
        state: SourceState | None,
        unchanged_states: list[SourceState] | None = None,
        fetch: Fetched | None = None,
    ) -> PollResult:
        result = self.poller.poll(source, state, unchanged_states, fetch)
        if source.keep is not None and result.new:
            self.publisher.prune(source)
        return result

    def update_all(
        self,
        sources: Iterable[Source] | None = None,
        progress: Callable[[PollResult], None] | None = None,
        *,
        write_outputs: bool = True,
    ) -> list[PollResult]:
        """Poll every enabled source once (concurrently), then write documents and publish.

        Results come in the order of `sources`. At most `workers` polls are in flight (fewer
        while they do not wait: threads.py), so memory stays flat however many sources
        there are; documents are written while the pass goes on. `write_outputs=False` only
        fetches, parses and stores (the benchmark compares that part with other feed
        readers). `progress` is called in this thread, for each poll, as polls end."""
        chosen = [s for s in (sources or self.config.sources) if s.enabled]
        results: list[PollResult | None] = [None] * len(chosen)
        unchanged: list[SourceState] = []  # appended to by the poll threads
        taking = threading.Lock()  # two threads must not both save (and delete) one batch
        finished: SimpleQueue[int] = SimpleQueue()
        stop = threading.Event()  # set by the thread that finds no source left, or fails
        queue = SourceQueue(chosen, self.store.source_states, STATE_CHUNK)
        # Documents are written by a thread of their own while polls go on: waiting for a
        # batch here would leave the parser processes idle meanwhile.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents")
        writing: Future[int] | None = None
        unwritten = 0

        def poll(source: Source, state: SourceState | None, fetch: Fetched | None) -> PollResult:
            return self._poll(source, state, unchanged, fetch)

        def after_poll() -> None:
            if len(unchanged) >= STATE_CHUNK:
                # In a poll thread, not in the pass's: its statements would each hand the GIL
                # to a poll thread and wait to get it back (0.03 s a batch instead of 0.007).
                save_unchanged()

        work = PassWork(poll, queue, results, finished, stop, after_poll)

        def save_unchanged() -> None:
            with taking:
                batch = unchanged[:]
                del unchanged[: len(batch)]
            if batch:
                self.store.save_states(batch)

        def tick() -> None:
            """Take the polls that ended; hand a batch of documents to the writer."""
            nonlocal unwritten, writing
            while not finished.empty():
                result = results[finished.get()]
                assert result is not None
                unwritten += result.new + result.changed
                if progress:
                    progress(result)
            idle = writing is None or writing.done()
            if write_outputs and unwritten >= DOCUMENT_BATCH and idle:
                if writing is not None:
                    writing.result()  # a failure to write (disk full) ends the pass
                unwritten = 0
                writing = writer.submit(self.publisher.write_documents)

        with writer, self._fetch_process(len(chosen)) as process:
            lender = (process, self.poller.order) if process else None
            threads = PassThreads(work, self.config.workers, lender)
            try:
                threads.start()
                while threads.wait():
                    tick()
                    threads.look()
            finally:
                threads.end()
            threads.raise_failure()
            tick()
            if writing is not None:
                writing.result()
        save_unchanged()
        if write_outputs:
            self.publisher.write_documents()
            self.publisher.publish()
        memory.release()
        return [result for result in results if result is not None]

    @contextlib.contextmanager
    def _fetch_process(self, sources: int) -> Iterator[FetchProcess | None]:
        """A fetch process for a pass of `sources`, when `should_lend` says so."""
        if not should_lend(
            sources,
            workers=self.config.workers,
            parse_processes=self.parsers.count,
            cores=os.cpu_count() or 1,
            threads=threading.active_count(),
            platform=sys.platform,
        ):
            yield None
            return
        # The cyclic collector, in both processes, would otherwise touch every object there
        # is and so copy every page the two share; frozen, it looks only at the pass's own.
        gc.freeze()
        process = FetchProcess(self.limits, SLOW_POLL)
        try:
            yield process
        finally:
            process.close()
            gc.unfreeze()
