"""The daemon's republisher: after polls that brought something new or changed, write the
pending documents and then every feed, one pass per burst of polls, never two at once."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from aggregator.errors import AggregatorError
from aggregator.outputs.publisher import Publisher
from aggregator.poll import memory
from aggregator.store.database import SEARCH_BATCH

log = logging.getLogger(__name__)

PUBLISH_SETTLE = 0.25  # seconds to let a burst of finishing polls gather into one republish
PUBLISH_RETRY = 60.0  # seconds before a failed republish is tried again


class Republisher:
    """One thread that writes pending documents, then the merged feed, when asked.

    Requests that arrive while a pass runs (or within PUBLISH_SETTLE of the first one) are
    covered by one more pass, so a burst of polls finishing together costs one or two passes,
    and two passes never run at once. A failed pass is retried: the work is pending in the
    database, never lost.
    """

    def __init__(
        self,
        publisher: Callable[[], Publisher],
        after_pass: Callable[[], None],
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        """`publisher` gives the current one (a reload replaces it); `after_pass` is called
        after each pass, failed or not (the daemon marks its index page stale and tells the
        hooks); `observe` is told the documents written and the duration of each good pass."""
        self._observe = observe
        self._publisher = publisher
        self._after_pass = after_pass
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._dirty = False
        self.failure: str | None = None  # why the last pass failed; None after a good one
        self._thread = threading.Thread(target=self._run, name="republish", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def request(self) -> None:
        self._dirty = True
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """Finish what was requested, then end the thread (waiting at most `timeout`)."""
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if not self._closing.is_set():
                self._closing.wait(PUBLISH_SETTLE)
            self._wake.clear()
            if self._dirty:
                self._dirty = False
                if not self._pass() and not self._closing.wait(PUBLISH_RETRY):
                    self.request()
            if self._closing.is_set() and not self._dirty:
                return

    def _pass(self) -> bool:
        publisher = self._publisher()
        started = time.monotonic()
        try:
            written = publisher.write_documents()
            changed = publisher.publish()
        except AggregatorError as exc:
            log.error("republish failed: %s; retrying in %g s", exc, PUBLISH_RETRY)
            self.failure = str(exc)
            return False
        except Exception as exc:
            log.exception("republish failed unexpectedly; retrying in %g s", PUBLISH_RETRY)
            self.failure = f"{type(exc).__name__}: {exc}"
            return False
        finally:
            self._after_pass()
        self.failure = None
        if self._observe is not None:
            self._observe(written, time.monotonic() - started)
        log.info(
            "republished documents=%d merged_feed=%s duration=%.2fs",
            written,
            "updated" if changed else "unchanged",
            time.monotonic() - started,
        )
        self._index_search(publisher)
        memory.release()
        return True

    def _index_search(self, publisher: Publisher) -> None:
        """Bring the search index up to date, one batch at a time, giving way to the next
        republish as soon as one is asked for: search is never on the path of a poll."""
        started, indexed = time.monotonic(), 0
        try:
            while not self._dirty and not self._closing.is_set():
                batch = publisher.store.update_search_index(limit=SEARCH_BATCH)
                indexed += batch
                if batch < SEARCH_BATCH:
                    break
        except (AggregatorError, sqlite3.Error) as exc:
            log.error("search indexing failed: %s; trying again after the next poll", exc)
        if indexed:
            log.info(
                "search index updated entries=%d duration=%.2fs",
                indexed,
                time.monotonic() - started,
            )
