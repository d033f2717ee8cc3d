"""Full-text articles for sources that send a summary only (`full_text: true`): each new
entry's page is fetched once and its main content extracted (sources/article.py).

Why it is built this way:
- Only new entries, after the source's filters: a page is fetched at the entry's first
  sight and never again, so a failure is not retried forever (it shows as a warning).
- One fetch per article, whoever carries it: an article another source already has is
  taken from the database, and two polls asking for the same page at once share one fetch.
- Polite: at most PER_HOST requests to one site at a time, their starts INTERVAL apart,
  with the feed's own limits, timeouts and address rules (the source's reach, never the
  link's own), and pages capped at article.MAX_PAGE_BYTES.
- Extraction is CPU work on hostile input: it runs in the parser processes when there are
  any, like parsing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import requests

from aggregator.models import Entry, Source
from aggregator.poll.processes import ParserProcesses
from aggregator.sources.article import ArticleResult, HostGate, extract_article, fetch_article
from aggregator.sources.fetch import FetchLimits
from aggregator.sources.reach import reach_for
from aggregator.sources.sanitize import plain_text
from aggregator.store.database import Store
from aggregator.store.rows import canonical_link

log = logging.getLogger(__name__)

PER_HOST = 2
INTERVAL = 0.5  # seconds between two requests' starts to one host


@dataclass(frozen=True)
class FullTexts:
    """What the pages of some new entries gave: article HTML and image by identity, and
    why the others gave none."""

    html: dict[str, str]
    images: dict[str, str]
    problems: list[str]

    def warning(self, asked: int) -> str | None:
        """The source's warning: how many pages gave no article, and the first reason."""
        if not self.problems:
            return None
        return (
            f"full text: {len(self.problems)} of {asked} articles not extracted "
            f"(the feed's text is used): {self.problems[0]}"
        )


class ArticleFetcher:
    """Fetches and extracts articles for every poll of one pipeline."""

    def __init__(
        self,
        store: Store,
        session: requests.Session,
        limits: FetchLimits,
        parsers: ParserProcesses,
    ) -> None:
        self.store = store
        self.session = session
        self.limits = limits
        self.parsers = parsers
        self.gate = HostGate(PER_HOST, INTERVAL)
        self._lock = threading.Lock()
        self._fetching: dict[str, Future[ArticleResult]] = {}

    def full_texts(self, source: Source, entries: Sequence[Entry]) -> FullTexts:
        html: dict[str, str] = {}
        images: dict[str, str] = {}
        problems: list[str] = []
        for entry in entries:
            if not entry.link:
                continue
            known = self.store.full_text_of(canonical_link(entry.link))
            if known is not None:  # another source's entry has this article already
                html[entry.identity] = known
                continue
            result = self._article(source, entry)
            if result.html is None:
                problems.append(f"{entry.link}: {result.reason}")
                continue
            html[entry.identity] = result.html
            if result.image:
                images[entry.identity] = result.image
        for problem in problems:
            log.info("source=%s full text not extracted: %s", source.name, problem)
        return FullTexts(html, images, problems)

    def _article(self, source: Source, entry: Entry) -> ArticleResult:
        """One page's article; a poll asking for a page another is fetching waits for it."""
        assert entry.link is not None
        with self._lock:
            running = self._fetching.get(entry.link)
            if running is None:
                mine: Future[ArticleResult] = Future()
                self._fetching[entry.link] = mine
        if running is not None:
            return running.result()
        try:
            result = self._fetch_and_extract(source, entry)
        except Exception as exc:  # a bug must not end the poll: the feed's text is used
            log.exception("source=%s full text of %s failed", source.name, entry.link)
            result = ArticleResult(html=None, reason=f"{type(exc).__name__}: {exc}")
        mine.set_result(result)
        with self._lock:
            del self._fetching[entry.link]
        return result

    def _fetch_and_extract(self, source: Source, entry: Entry) -> ArticleResult:
        assert entry.link is not None
        with self.gate.slot(entry.link):
            fetched = fetch_article(
                self.session,
                entry.link,
                self.limits,
                reach_for(source.url, source.allow_private),
            )
        if fetched.error or fetched.body is None:
            return ArticleResult(html=None, reason=fetched.error or "no page")
        feed_text = len(" ".join(plain_text(entry.content).split()))
        job = (fetched.body, fetched.url, fetched.headers, feed_text)
        (result,) = self.parsers.run_jobs(extract_article, [job])
        return result
