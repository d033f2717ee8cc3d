"""The daemon's poll schedule is the `sources` table: an APScheduler job store over it.

A source's next poll is written in one place, `sources.next_poll`, by the poll that just
ended (or by the daemon at a start or reload); the scheduler reads its jobs from there each
time it wakes. There is no second copy to keep in step, so no source can fall between the
two: a source whose time has come is due until a poll of it starts, however the previous
one ended.

A source is a job while it is configured, enabled, and has a next poll (a source that
answered 410 Gone has none). From the moment the scheduler is handed its due job until the
poll's function ends, the source is "in flight" here and is neither due again nor counted
for the next wakeup, so it is never polled twice at once even while its poll waits minutes
for a free worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.triggers.base import BaseTrigger

from aggregator.store.database import Store

# APScheduler counts a job's running instances down only in the poll's done-callback, after
# the function returned: a source due again in between would be refused as a second
# instance, and being in flight here, never handed out again. The in-flight mark is what
# keeps one poll per source; APScheduler's count must never refuse one.
MAX_INSTANCES = 1_000_000
WAKE_GRAIN = timedelta(seconds=1)


class AfterEachPoll(BaseTrigger):
    """Fires once, at the stored time: the poll itself writes when the next one is due."""

    def __init__(self, when: datetime) -> None:
        self.when = when

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        return self.when if previous_fire_time is None else None

    def __str__(self) -> str:
        return f"after each poll (next: {self.when:%Y-%m-%d %H:%M:%S})"


class SourceJobStore(BaseJobStore):  # type: ignore[misc]
    """One job per scheduled source, read from the database; `poll(name)` is each job's
    function, and must call `release(name, ...)` when it ends, whatever happened."""

    def __init__(self, store: Store, poll: Callable[[str], Any]) -> None:
        super().__init__()
        self._scheduler: Any = None  # both set by start(), when the scheduler starts
        self._alias = "sources"
        self.store = store
        self.poll = poll
        self._lock = threading.Lock()
        self._sources: frozenset[str] = frozenset()  # configured and enabled
        # Handed to the scheduler and not finished (None), or held until a time because its
        # next poll could not be written (see `hold`).
        self._in_flight: dict[str, datetime | None] = {}
        self._wakes_at: datetime | None = None  # what get_next_run_time last answered
        self._computing = False  # get_next_run_time is looking
        self._template: Job | None = None  # see _job

    # -- what the daemon tells it ---------------------------------------------------------

    def use(self, sources: Collection[str]) -> None:
        """The sources to poll from now on (configured and enabled); the others' rows stay
        as they are, and their polls already handed out find them stopped."""
        self._sources = frozenset(sources)

    def release(self, name: str, next_poll: datetime | None) -> bool:
        """A poll of `name` ended, having written `next_poll`; True when the scheduler must
        be woken because that is earlier than it would wake by itself."""
        with self._lock:
            if name in self._in_flight and self._in_flight[name] is None:
                del self._in_flight[name]
            return next_poll is not None and (
                self._computing or self._wakes_at is None or next_poll < self._wakes_at
            )

    def hold(self, name: str, until: datetime) -> None:
        """Keep `name` from coming due before `until`: its next poll could not be written,
        and its stored time, already past, would hand it out again at once, forever."""
        with self._lock:
            self._in_flight[name] = until

    def in_flight(self) -> set[str]:
        """Sources handed to the workers whose polls have not ended (waiting or polling)."""
        with self._lock:
            return {name for name, until in self._in_flight.items() if until is None}

    # -- what APScheduler asks ------------------------------------------------------------

    def get_due_jobs(self, now: datetime) -> list[Job]:
        """Every due source not in flight, now marked in flight: APScheduler hands every
        due job it is given to the executor."""
        sources = self._sources
        jobs = []
        with self._lock:
            # Read with the lock held: a poll writes its next time before it is released,
            # so a source released after this read is still in flight below, and one
            # released before it is read with its new time, never its old past one.
            for name, until in list(self._in_flight.items()):
                if until is not None and until <= now:
                    del self._in_flight[name]  # held long enough: due again
            busy = self._in_flight
            due = self.store.due_polls(now, lambda n: n in sources and n not in busy)
            for name, when in due:
                self._in_flight[name] = None
                jobs.append(self._job(name, when))
        return jobs

    def get_next_run_time(self) -> datetime | None:
        """The earliest next poll of a source not in flight (an in-flight source's time is
        past: counting it would wake the scheduler again at once, and again)."""
        with self._lock:
            self._computing = True
            busy = dict(self._in_flight)
        try:
            sources = self._sources
            earliest = self.store.earliest_poll(lambda n: n in sources and n not in busy)
            holds = [until for until in busy.values() if until is not None]
            if holds:
                earliest = min([*holds, earliest] if earliest else holds)
            if earliest is not None and earliest.microsecond:
                # Wake on whole seconds: the sources due within one second are handed out
                # together. A first start spreads 10,000 sources over 30 s; one wakeup per
                # source meant 10,000 wakeups, each reading every source still in flight.
                earliest = earliest.replace(microsecond=0) + WAKE_GRAIN
        finally:
            with self._lock:
                self._computing = False
        with self._lock:
            self._wakes_at = earliest
        return earliest

    def lookup_job(self, job_id: str) -> Job | None:
        if job_id not in self._sources:
            return None
        when = self.store.scheduled_polls([job_id]).get(job_id)
        return None if when is None else self._job(job_id, when)

    def get_all_jobs(self) -> list[Job]:
        sources = self._sources
        return [
            self._job(name, when)
            for name, when in self.store.scheduled_polls().items()
            if name in sources
        ]

    def add_job(self, job: Job) -> None:
        raise NotImplementedError("sources are scheduled by the configuration, not add_job")

    def update_job(self, job: Job) -> None:
        """Nothing to do: a poll writes its own next time."""

    def remove_job(self, job_id: str) -> None:
        """Nothing to do: APScheduler removes a one-shot job once it is handed out, and the
        source stays (its poll writes its next time). Stopping a source is `use`'s. Never
        raises: the scheduler's thread calls this after handing out a job, and dies of an
        error here (the source may have stopped by then: a reload, a shutdown)."""

    def remove_all_jobs(self) -> None:
        """Stop handing out polls (at shutdown); the database keeps every next poll."""
        self.use(())

    def _job(self, name: str, when: datetime) -> Job:
        # Job's constructor checks its function's signature, ~0.2 ms a job: at a first start
        # of 10,000 sources, seconds of the scheduler's thread. Every job differs only in
        # its source, so one job checked once is the template of all.
        if self._template is None:
            self._template = Job(
                self._scheduler,
                id="poll",
                func=self.poll,
                args=("poll",),
                kwargs={},
                name="poll",
                trigger=AfterEachPoll(when),
                executor="default",
                coalesce=True,
                max_instances=MAX_INSTANCES,
                misfire_grace_time=None,
            )
        job = Job.__new__(Job)
        for slot in _SHARED:
            setattr(job, slot, getattr(self._template, slot))
        job.id, job.name, job.args = name, f"poll {name}", (name,)
        job.trigger = AfterEachPoll(when)
        job.next_run_time = when.astimezone(UTC)
        job._scheduler, job._jobstore_alias = self._scheduler, self._alias
        return job


# What every source's job shares (Job's other slots are set per source).
_SHARED = (
    "func",
    "func_ref",
    "kwargs",
    "executor",
    "coalesce",
    "max_instances",
    "misfire_grace_time",
)
