"""The daemon's parts with the real OS (flock, the systemd socket) and in-process runs."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from apscheduler.executors.debug import DebugExecutor
from conftest import Feed, FeedServer, kill_while_holding_the_lock
from feedworld import rsshub_feed, rsshub_item

from aggregator.config.settings import Config
from aggregator.errors import StoreError
from aggregator.models import Source
from aggregator.poll import schedule as schedule_module
from aggregator.service import daemon as daemon_module
from aggregator.service.daemon import Daemon
from aggregator.service.instance_lock import InstanceLock
from aggregator.service.systemd_notify import notify, watchdog_interval
from aggregator.store.database import Store

T = TypeVar("T")


def test_one_lock_per_database(tmp_path: Path) -> None:
    database = tmp_path / "state" / "agg.db"
    first = InstanceLock(database)
    first.acquire()
    try:
        assert first.path == tmp_path / "state" / "agg.db.lock"
        assert first.path.read_text().strip() == str(os.getpid())
        with pytest.raises(StoreError, match=rf"\(pid {os.getpid()}\) is already running"):
            InstanceLock(database).acquire()
        with InstanceLock(tmp_path / "other.db"):  # another database is another instance
            pass
    finally:
        first.release()
    with InstanceLock(database):  # free again once released
        pass


def test_a_lock_tells_whether_its_last_holder_was_killed(tmp_path: Path) -> None:
    """A release empties the lock file; a holder killed with SIGKILL leaves its pid there,
    which tells the next holder to clear the temp files it may have left."""
    database = tmp_path / "agg.db"
    with InstanceLock(database) as lock:
        assert not lock.interrupted  # a new file
    with InstanceLock(database) as lock:
        assert not lock.interrupted
    assert lock.path.read_text() == ""
    kill_while_holding_the_lock(database)
    with InstanceLock(database) as lock:
        assert lock.interrupted
    with InstanceLock(database) as lock:
        assert not lock.interrupted


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    with tempfile.TemporaryDirectory(prefix="agg-") as folder:
        path = os.path.join(folder, "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(2)
            monkeypatch.setenv("NOTIFY_SOCKET", path)
            yield sock


def test_notify_sends_one_datagram(notify_socket: socket.socket) -> None:
    assert notify("READY=1", "STATUS=following 3 sources")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=following 3 sources"


def test_notify_without_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify("READY=1")


def test_notify_to_a_vanished_socket_is_only_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert not notify("READY=1")


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None


def test_a_poll_that_finishes_on_the_scheduler_thread_is_rescheduled(
    feed_server: FeedServer, make_config: Callable[..., Config], tmp_path: Path
) -> None:
    """Under load a fast poll can finish before APScheduler attaches its done-callback; the
    callback then runs on the scheduler's own thread, before that thread drops the finished
    job. Rescheduling right there once lost the source for good. APScheduler's
    DebugExecutor runs every job that way, so the race happens on every poll here."""
    feed = feed_server.serve("/fast", rsshub_feed([rsshub_item(1)]))
    url = feed_server.url("/fast").replace("//localhost:", "//127.0.0.1:")
    config = make_config(
        [{"name": "fast", "url": url}],
        interval="1s",
        max_interval="1s",
        server={"host": "127.0.0.1", "port": 0},
    )
    store = Store(config.paths.database)
    daemon = Daemon(config, store)
    daemon.scheduler.remove_executor("default")
    daemon.scheduler.add_executor(DebugExecutor(), "default")
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: feed.requests >= 3)  # polled again and again
    finally:
        daemon.stop()
        runner.join(30)
        store.close()
    assert not runner.is_alive()


def test_the_schedule_is_the_database(
    feed_server: FeedServer, make_config: Callable[..., Config]
) -> None:
    """There is no second copy of when a source is due: the scheduler's source jobs are the
    `sources` rows, so a time written there is the one that comes due, and nothing the
    scheduler does with its jobs can drop a source."""
    feed = feed_server.serve("/hourly", rsshub_feed([rsshub_item(1)]))
    url = feed_server.url("/hourly").replace("//localhost:", "//127.0.0.1:")
    config = make_config(
        [{"name": "hourly", "url": url, "interval": "1h"}],
        server={"host": "127.0.0.1", "port": 0},
    )
    store = Store(config.paths.database)
    daemon = Daemon(config, store)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: feed.requests == 1 and not daemon.status()["sources"][0]["polling"])
        job = daemon.scheduler.get_job("hourly")
        assert job.next_run_time > datetime.now(UTC) + timedelta(minutes=50)
        assert job.next_run_time == store.source_state("hourly").next_poll
        daemon.scheduler.remove_job("hourly")  # what a scheduling bug would do: nothing
        assert daemon.scheduler.get_job("hourly").next_run_time == job.next_run_time
        store.schedule_polls({"hourly": datetime.now(UTC)})
        daemon.scheduler.wakeup()
        wait_until(lambda: feed.requests == 2)
        state = wait_until(
            lambda: (s := store.source_state("hourly")).next_poll > datetime.now(UTC) and s
        )
        assert daemon.status()["sources"][0]["next_poll"] == state.next_poll.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    finally:
        daemon.stop()
        runner.join(30)
        store.close()
    assert not runner.is_alive()


def test_polls_waiting_for_a_worker_are_polled_once(
    feed_server: FeedServer,
    make_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More sources due than workers: a due poll is handed to the worker pool and waits
    there for a free worker, shown as waiting; meanwhile it is not due again, so each
    source is polled once (the old safety net once polled such sources twice). Here one
    worker and a slow server make polls wait."""
    monkeypatch.setattr(daemon_module, "CONFIG_WATCH", 0.05)  # the scheduler woken often
    monkeypatch.setattr(schedule_module, "STARTUP_PACE", 0.01)  # all due within a second
    feeds = [Feed(rsshub_feed([rsshub_item(number)])) for number in range(5)]
    for number, feed in enumerate(feeds):
        feed_server.server.expect_request(f"/slow/{number}").respond_with_handler(
            lambda request, feed=feed: time.sleep(0.6) or feed.respond(request)
        )
    sources = [
        {"name": f"slow{number}", "url": feed_server.url(f"/slow/{number}"), "interval": "1h"}
        for number in range(5)
    ]
    config = make_config(sources, workers=1, server={"host": "127.0.0.1", "port": 0})
    store = Store(config.paths.database)
    daemon = Daemon(config, store)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: any(source["waiting"] for source in daemon.status()["sources"]))
        wait_until(lambda: all(feed.requests for feed in feeds))
        wait_until(lambda: not daemon.jobs.in_flight())
        time.sleep(0.5)  # several more wakeups
        assert [feed.requests for feed in feeds] == [1] * 5
        assert len(daemon.scheduler.get_jobs()) == 6  # 5 sources + heartbeat
    finally:
        daemon.stop()
        runner.join(30)
        store.close()
    assert not runner.is_alive()


def test_a_first_start_of_10000_sources_polls_each_once(
    make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first start: every source new, all due within the startup spread, far more than
    the workers. Each is polled exactly once, and then scheduled at the time its poll
    wrote. The polls are stand-ins that write their next time, as a poll does (no HTTP)."""
    monkeypatch.setattr(schedule_module, "STARTUP_SPREAD", 1.0)
    count = 10_000
    sources = [
        {"name": f"s{number}", "url": f"http://127.0.0.1:9/{number}", "interval": "1h"}
        for number in range(count)
    ]
    config = make_config(sources, workers=8, server={"host": "127.0.0.1", "port": 0})
    store = Store(config.paths.database)
    daemon = Daemon(config, store)
    polls: Counter[str] = Counter()
    lock = threading.Lock()
    later = datetime.now(UTC) + timedelta(hours=1)

    def poll(pipeline: object, source: Source) -> datetime:
        with lock:
            polls[source.name] += 1
            assert source.name not in daemon.jobs.in_flight() - {source.name}
        store.schedule_polls({source.name: later})
        return later

    monkeypatch.setattr(daemon, "_poll_source", poll)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: len(polls) == count, timeout=120)
        wait_until(lambda: not daemon.jobs.in_flight())
        time.sleep(0.5)
        assert set(polls.values()) == {1}
        assert daemon.jobs.get_next_run_time() == _next_second(later)  # whole seconds
        assert daemon.healthy()
    finally:
        daemon.stop()
        runner.join(30)
        store.close()
    assert not runner.is_alive()


def wait_until(condition: Callable[[], T], timeout: float = 20) -> T:
    end = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)
    return value


def test_a_source_whose_next_poll_cannot_be_worked_out_does_not_stop_the_others(
    feed_server: FeedServer, make_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    """`interval: 999999999999d` once passed the config check; its poll's next time
    overflowed, and so did the retry time, which killed the rescheduling thread: /healthz
    503 and no source ever polled again (issue 13.8). The config now bounds intervals; here
    one is forced past the bound (standing for any bug in working out a next poll), and
    only that source pays: logged, recorded on it, tried again a day on (the retry is
    capped at BACKOFF_CAP)."""
    broken = feed_server.serve("/broken", rsshub_feed([rsshub_item(1)]))
    steady = feed_server.serve("/steady", rsshub_feed([rsshub_item(2)]))
    local = lambda path: feed_server.url(path).replace("//localhost:", "//127.0.0.1:")  # noqa: E731
    config = make_config(
        [{"name": "broken", "url": local("/broken")}, {"name": "steady", "url": local("/steady")}],
        interval="1s",
        max_interval="1s",
        server={"host": "127.0.0.1", "port": 0},
    )
    absurd = 999_999_999_999 * 86400
    config = replace(
        config,
        sources=tuple(
            replace(s, interval=absurd) if s.name == "broken" else s for s in config.sources
        ),
    )
    store = Store(config.paths.database)
    daemon = Daemon(config, store)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: broken.requests >= 1 and steady.requests >= 3)
        state = wait_until(lambda: (s := store.source_state("broken")) and s.error and s)
        assert state.status == "error"
        assert state.error.startswith("poll failed: OverflowError")
        assert daemon.healthy()
        job = wait_until(lambda: daemon.scheduler.get_job("broken"))
        assert job.next_run_time > datetime.now(UTC) + timedelta(hours=23)
        assert "source=broken poll failed" in caplog.text
        before = steady.requests
        wait_until(lambda: steady.requests > before + 1)  # still polled on its interval
    finally:
        daemon.stop()
        runner.join(30)
        store.close()
    assert not runner.is_alive()


def test_retry_after_and_backoff_are_the_next_poll(
    feed_server: FeedServer, make_config: Callable[..., Config]
) -> None:
    """What the poll writes is what the scheduler waits for: a 503 asking for an hour is
    not asked again on the 1 s interval."""
    busy = feed_server.serve("/busy", b"", status=503, etag=False, headers={"Retry-After": "3600"})
    url = feed_server.url("/busy").replace("//localhost:", "//127.0.0.1:")
    config = make_config(
        [{"name": "busy", "url": url}],
        interval="1s",
        max_interval="1s",
        server={"host": "127.0.0.1", "port": 0},
    )
    store = Store(config.paths.database)
    daemon = Daemon(config, store)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        state = wait_until(lambda: (s := store.source_state("busy")).consecutive_errors and s)
        assert state.next_poll > datetime.now(UTC) + timedelta(minutes=59)
        assert daemon.scheduler.get_job("busy").next_run_time == state.next_poll
        time.sleep(2.5)  # a few 1 s intervals
        assert busy.requests == 1
    finally:
        daemon.stop()
        runner.join(30)
        store.close()
    assert not runner.is_alive()


def test_a_failure_of_ours_is_retried_and_never_busy_loops(
    make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll that fails on our side (here the database, twice: the retry time cannot be
    written either) leaves its stored time in the past; the source is held in memory until
    its retry instead of being handed out again at once, forever."""
    config = make_config(
        [{"name": "one", "url": "http://127.0.0.1:9/one", "interval": "1h"}],
        server={"host": "127.0.0.1", "port": 0},
    )
    store = Store(config.paths.database)
    daemon = Daemon(config, store)
    polls: list[str] = []

    def failing(pipeline: object, source: Source) -> datetime:
        polls.append(source.name)
        raise StoreError("disk full")

    def cannot_write(*args: object) -> None:
        raise StoreError("disk still full")

    monkeypatch.setattr(daemon, "_poll_source", failing)
    monkeypatch.setattr(store, "note_poll_failure", cannot_write)
    monkeypatch.setattr(daemon_module, "CONFIG_WATCH", 0.05)  # the scheduler woken often
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: polls)
        time.sleep(1)
        assert polls == ["one"]
        assert daemon.jobs.get_next_run_time() > datetime.now(UTC) + timedelta(minutes=59)
        assert not daemon.status()["sources"][0]["waiting"]
        assert daemon.healthy()
    finally:
        daemon.stop()
        runner.join(30)
        store.close()
    assert not runner.is_alive()


def _next_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0) + timedelta(seconds=1) if moment.microsecond else moment
