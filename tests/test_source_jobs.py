"""The daemon's job store over the `sources` table, against a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.service.source_jobs import SourceJobStore
from aggregator.store.database import Store

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def no_poll(name: str) -> None:
    raise AssertionError("these tests hand out jobs, they do not run them")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "agg.db")
    store.sync_sources(
        (name, f"https://example.org/{name}")
        for name in ("due", "disabled", "gone", "busy", "later")
    )
    store.schedule_polls(
        {
            "due": NOW - timedelta(minutes=5),
            "disabled": NOW - timedelta(minutes=9),  # also past, but not polled
            "gone": None,
            "busy": NOW - timedelta(minutes=1),
            "later": NOW + HOUR,
        }
    )
    yield store
    store.close()


@pytest.fixture
def jobs(store: Store) -> SourceJobStore:
    jobs = SourceJobStore(store, no_poll)
    jobs.use(["due", "gone", "busy", "later", "unknown"])  # "disabled" is not configured
    return jobs


def names(found: list) -> list[str]:
    return [job.id for job in found]


def test_due_jobs_are_enabled_configured_scheduled_sources_not_in_flight(
    jobs: SourceJobStore,
) -> None:
    first = jobs.get_due_jobs(NOW)
    assert names(first) == ["due", "busy"]  # longest overdue first
    job = first[0]
    assert job.func is no_poll and job.args == ("due",) and job.name == "poll due"
    assert job.next_run_time == NOW - timedelta(minutes=5)
    assert job.executor == "default" and job.coalesce and job.misfire_grace_time is None
    # One run: the poll writes the next time; APScheduler then drops the job, not the source.
    assert job._get_run_times(NOW) == [job.next_run_time]
    assert job.trigger.get_next_fire_time(job.next_run_time, NOW) is None
    # Handed out: in flight until their polls end, so never handed out twice.
    assert jobs.in_flight() == {"due", "busy"}
    assert jobs.get_due_jobs(NOW) == []
    jobs.remove_job("due")  # what APScheduler does after handing out a one-shot job
    assert jobs.release("busy", None) is False  # nothing to wake for
    assert names(jobs.get_due_jobs(NOW)) == ["busy"]  # its stored time is still past


def test_a_source_that_stops_is_not_handed_out(jobs: SourceJobStore, store: Store) -> None:
    jobs.use(["later"])
    assert jobs.get_due_jobs(NOW) == []
    assert names(jobs.get_all_jobs()) == ["later"]
    assert jobs.lookup_job("due") is None
    jobs.remove_job("due")  # APScheduler's thread may still remove its last job: no error
    assert store.source_state("due").next_poll == NOW - timedelta(minutes=5)  # untouched


def test_the_next_run_time_skips_sources_in_flight(jobs: SourceJobStore) -> None:
    # Before anything is handed out, the earliest configured time; "disabled" is earlier.
    assert jobs.get_next_run_time() == NOW - timedelta(minutes=5)
    jobs.get_due_jobs(NOW)
    # Their past times would wake the scheduler at once, again and again.
    assert jobs.get_next_run_time() == NOW + HOUR


def test_a_finished_polls_written_time_is_what_comes_due(
    jobs: SourceJobStore, store: Store
) -> None:
    jobs.get_due_jobs(NOW)
    assert jobs.get_next_run_time() == NOW + HOUR
    soon = NOW + timedelta(minutes=10)
    store.schedule_polls({"due": soon})  # what the poll writes
    assert jobs.release("due", soon) is True  # earlier than the scheduler would wake
    assert jobs.get_next_run_time() == soon
    assert jobs.get_due_jobs(soon - timedelta(seconds=1)) == []
    assert names(jobs.get_due_jobs(soon)) == ["due"]
    assert jobs.lookup_job("due").next_run_time == soon
    # A later time need not wake the scheduler.
    store.schedule_polls({"busy": NOW + 2 * HOUR})
    assert jobs.release("busy", NOW + 2 * HOUR) is False


def test_a_failure_of_ours_that_cannot_be_written_holds_the_source(
    jobs: SourceJobStore,
) -> None:
    jobs.get_due_jobs(NOW)
    retry = NOW + timedelta(minutes=1)
    jobs.hold("due", retry)  # its stored time stays past: the database did not take it
    jobs.release("due", retry)
    assert jobs.in_flight() == {"busy"}  # held, not polling: /status does not say waiting
    assert jobs.get_due_jobs(NOW + timedelta(seconds=30)) == []
    assert jobs.get_next_run_time() == retry  # not its past stored time
    assert names(jobs.get_due_jobs(retry)) == ["due"]


def test_jobs_are_not_added_by_apscheduler(jobs: SourceJobStore) -> None:
    with pytest.raises(NotImplementedError):
        jobs.add_job(jobs.get_all_jobs()[0])


def test_times_compare_as_stored_across_microseconds(store: Store) -> None:
    """Stored times are text; a due check at the same instant written another way (a
    whole second, no microseconds) must still compare as time does."""
    jobs = SourceJobStore(store, no_poll)
    jobs.use(["later"])
    exact = NOW + HOUR
    assert jobs.get_due_jobs(exact - timedelta(microseconds=1)) == []
    assert names(jobs.get_due_jobs(exact)) == ["later"]


def test_sources_due_within_one_second_are_handed_out_together(
    jobs: SourceJobStore, store: Store
) -> None:
    """The scheduler wakes on whole seconds: a first start spreads thousands of sources over
    a few seconds, and one wakeup each read every source still in flight."""
    jobs.get_due_jobs(NOW)  # "due" and "busy" are in flight now
    first, second = NOW + timedelta(seconds=1.2), NOW + timedelta(seconds=1.7)
    store.schedule_polls({"later": first, "gone": second})
    assert jobs.get_next_run_time() == NOW + timedelta(seconds=2)
    assert names(jobs.get_due_jobs(NOW + timedelta(seconds=2))) == ["later", "gone"]
