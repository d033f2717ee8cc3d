"""A pass over the sources, and everything a pass needs opened once.

`Pipeline` is what the commands and the daemon hold: the config, the store, one HTTP
session, the parser processes, a `Poller` (poller.py: one poll, the I/O around decide.py)
and a `Publisher` (outputs/publisher.py: documents and feeds). `update_all` is the pass:

    for each enabled source, concurrently:  fetch -> parse -> decide -> store
    while polls go on:                       write the documents owed, in batches
    at the end:                              write the rest, then the merged and group feeds

A pass keeps a bounded number of polls in flight, so memory does not grow with the number
of sources; documents are written by a thread of their own while polls go on, so the parser
processes are never idle waiting for a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from queue import SimpleQueue

from aggregator.config.settings import Config
from aggregator.models import PollResult, Source
from aggregator.outputs.publisher import Publisher
from aggregator.poll import memory
from aggregator.poll.poller import Poller
from aggregator.poll.processes import ParserProcesses
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
    ) -> PollResult:
        result = self.poller.poll(source, state, unchanged_states)
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

        Results come in the order of `sources`. At most twice `workers` polls are in flight,
        so memory stays flat however many sources there are; documents are written while the
        pass goes on. `write_outputs=False` only fetches, parses and stores (the benchmark
        compares that part with other feed readers)."""
        chosen = [s for s in (sources or self.config.sources) if s.enabled]
        results: list[PollResult | None] = [None] * len(chosen)
        window = max(2, 2 * self.config.workers)
        running: dict[Future[PollResult], int] = {}
        unwritten = 0
        unchanged: list[SourceState] = []  # appended to by the poll threads
        # Each poll puts itself here when it ends: cheaper than `wait()` over the whole
        # window once per poll, which was a tenth of an all-304 pass.
        finished: SimpleQueue[Future[PollResult]] = SimpleQueue()
        # Documents are written by a thread of their own while polls go on: waiting for a
        # batch here would leave the window empty and the parser processes idle meanwhile.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents")
        writing: Future[int] | None = None

        def save_unchanged() -> None:
            batch = unchanged[:]
            del unchanged[: len(batch)]
            if batch:
                self.store.save_states(batch)

        def collect() -> None:
            """Take the polls that finished (waiting for one if none has)."""
            nonlocal unwritten, writing
            done = [finished.get()]
            while not finished.empty():
                done.append(finished.get())
            for future in done:
                result = future.result()
                results[running.pop(future)] = result
                unwritten += result.new + result.changed
                if progress:
                    progress(result)
            if len(unchanged) >= STATE_CHUNK:
                save_unchanged()
            idle = writing is None or writing.done()
            if write_outputs and unwritten >= DOCUMENT_BATCH and idle:
                if writing is not None:
                    writing.result()  # a failure to write (disk full) ends the pass
                unwritten = 0
                writing = writer.submit(self.publisher.write_documents)

        with writer, ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            for start in range(0, len(chosen), STATE_CHUNK):
                chunk = chosen[start : start + STATE_CHUNK]
                # One query for a chunk's states instead of one per poll.
                states = {s.name: s for s in self.store.source_states([s.name for s in chunk])}
                for index, source in enumerate(chunk, start):
                    while len(running) >= window:
                        collect()
                    future = pool.submit(self._poll, source, states.get(source.name), unchanged)
                    running[future] = index
                    future.add_done_callback(finished.put)
            while running:
                collect()
            if writing is not None:
                writing.result()
        save_unchanged()
        if write_outputs:
            self.publisher.write_documents()
            self.publisher.publish()
        memory.release()
        return [result for result in results if result is not None]
