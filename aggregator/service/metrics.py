"""`GET /metrics` of `aggregator run`, in Prometheus' text format through prometheus_client.

What happens is counted as it happens: a poll ended (by source and outcome, with its
duration and its fetch's), entries stored, a republish (documents written, duration), a hook
ran. What *is* (each source's last success and consecutive errors, polls running and
waiting) is read at scrape time from the database and the daemon by a collector, so there
is no second copy of the state to keep right. The registry is the daemon's own, not the
process-global default, so tests and embedded daemons never mix their figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from aggregator.models import PollResult
from aggregator.outputs.hooks import HookRun
from aggregator.store.rows import SourceState

# No `_created` series: at 10,000 sources they would double the polls' series for nothing.
disable_created_metrics()

POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
PUBLISH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class PollCounts:
    running: int
    waiting: int  # due, waiting for a free worker


class Metrics:
    """The daemon's metrics; `states` and `polls` are read at each scrape."""

    def __init__(
        self,
        states: Callable[[], Iterable[SourceState]],
        enabled: Callable[[], Iterable[str]],
        polls: Callable[[], PollCounts],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.polls = Counter(
            "aggregator_polls", "Polls ended, by source and outcome.", ["source", "outcome"],
            registry=registry,
        )  # fmt: skip
        self.poll_seconds = Histogram(
            "aggregator_poll_duration_seconds", "A poll, from fetch to stored.",
            buckets=POLL_BUCKETS, registry=registry,
        )  # fmt: skip
        self.fetch_seconds = Histogram(
            "aggregator_fetch_duration_seconds", "The HTTP fetch of a poll.",
            buckets=POLL_BUCKETS, registry=registry,
        )  # fmt: skip
        self.entries = Counter(
            "aggregator_entries_stored", "Entries stored, new or changed.", ["kind"],
            registry=registry,
        )  # fmt: skip
        self.documents = Counter(
            "aggregator_documents_written", "Documents written (or confirmed) by republishes.",
            registry=registry,
        )  # fmt: skip
        self.publish_seconds = Histogram(
            "aggregator_publish_duration_seconds", "A republish: documents, then every feed.",
            buckets=PUBLISH_BUCKETS, registry=registry,
        )  # fmt: skip
        self.hook_runs = Counter(
            "aggregator_hook_runs", "Publish hook runs, by hook and outcome.", ["hook", "outcome"],
            registry=registry,
        )  # fmt: skip
        registry.register(_StateCollector(states, enabled, polls))

    def poll_ended(self, result: PollResult) -> None:
        self.polls.labels(result.source, str(result.status)).inc()
        self.poll_seconds.observe(result.duration)
        self.fetch_seconds.observe(result.fetch_duration)
        if result.new:
            self.entries.labels("new").inc(result.new)
        if result.changed:
            self.entries.labels("changed").inc(result.changed)

    def republished(self, documents: int, seconds: float) -> None:
        self.documents.inc(documents)
        self.publish_seconds.observe(seconds)

    def hook_ran(self, run: HookRun) -> None:
        self.hook_runs.labels(run.hook, str(run.outcome)).inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The answer to a scrape and its Content-Type, in the format the scraper asks for
        (OpenMetrics, or Prometheus' classic text format 0.0.4 that every version reads)."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


class _StateCollector(Collector):
    """Figures read from where they live, at scrape time."""

    def __init__(
        self,
        states: Callable[[], Iterable[SourceState]],
        enabled: Callable[[], Iterable[str]],
        polls: Callable[[], PollCounts],
    ) -> None:
        self.states, self.enabled, self.polls = states, enabled, polls

    def describe(self) -> Iterable[Metric]:
        return []  # figures are known at scrape time only

    def collect(self) -> Iterator[Metric]:
        counts = self.polls()
        yield GaugeMetricFamily("aggregator_polls_running", "Polls running now.", counts.running)
        yield GaugeMetricFamily(
            "aggregator_polls_waiting", "Polls due and waiting for a worker.", counts.waiting
        )
        enabled = set(self.enabled())
        yield GaugeMetricFamily("aggregator_sources_enabled", "Sources followed.", len(enabled))
        success = GaugeMetricFamily(
            "aggregator_source_last_success_timestamp_seconds",
            "When a source was last read without error (Unix time).",
            labels=["source"],
        )
        errors = GaugeMetricFamily(
            "aggregator_source_consecutive_errors",
            "Failed polls in a row of a source (0 when its last poll worked).",
            labels=["source"],
        )
        for state in self.states():
            if state.name not in enabled:
                continue
            if state.last_success is not None:
                success.add_metric([state.name], state.last_success.timestamp())
            errors.add_metric([state.name], state.consecutive_errors)
        yield success
        yield errors
