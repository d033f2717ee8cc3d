"""The long-running service behind `aggregator run`: scheduling, signals and reload. Its
parts live beside it: the one-instance lock (instance_lock.py), systemd notification
(systemd_notify.py), the republisher thread (republisher.py), the HTTP server (server.py).

Threads and who owns what:
- the main thread waits for signals (SIGTERM/SIGINT stop, SIGHUP reloads), watches the
  config file's mtime, and pings the systemd watchdog while the scheduler is alive;
- when each source is due has one owner, the database (`sources.next_poll`): APScheduler
  reads its source jobs from that column (source_jobs.py) and hands due polls to a pool of
  `workers` threads; a poll writes the next time itself, and a failure of ours writes a
  retry, so no second copy of the schedule can disagree with it or lose a source; a
  source is in flight from being handed out until its poll ends, so it is never polled
  twice at once;
- one republisher thread writes pending documents and the merged feed after polls that
  changed something, one pass per burst, never two passes at once;
- the HTTP server (server.py) answers on its own threads from bytes in memory.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import signal
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from aggregator import __version__
from aggregator.config.settings import Config, load_config
from aggregator.errors import AggregatorError, OutputError
from aggregator.models import FEED_FILES, PollStatus, Publishing, Source, SourceStatus
from aggregator.outputs.feed_groups import configured_groups, published_feeds
from aggregator.outputs.feeds import FeedInfo
from aggregator.outputs.hooks import HookRunner
from aggregator.outputs.publisher import remove_interrupted_writes
from aggregator.poll.pipeline import Pipeline
from aggregator.poll.schedule import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    first_poll_delay,
    plan_reload,
    retimed_next_poll,
)
from aggregator.service.index_page import index_page_for
from aggregator.service.instance_lock import InstanceLock
from aggregator.service.metrics import Metrics, PollCounts
from aggregator.service.republisher import Republisher
from aggregator.service.server import FeedFile, FeedServer, Site, served_type
from aggregator.service.source_jobs import SourceJobStore
from aggregator.service.status_report import status_report
from aggregator.service.systemd_notify import notify, watchdog_interval
from aggregator.store.database import Store
from aggregator.store.rows import SourceState

log = logging.getLogger(__name__)

STOP_WAIT = 20.0  # seconds running polls get to finish after SIGTERM
CONFIG_WATCH = 5.0  # seconds between looks at the config file's mtime
CONFIG_SETTLE = 1.0  # seconds a changed config file must stay unchanged before a reload
HEARTBEAT = 5.0  # seconds between the scheduler's proofs of life
HEARTBEAT_STALE = 4 * HEARTBEAT
# One parser process, where `aggregator update` runs one per core (up to 4): the daemon's
# polls are spread over each source's interval, one process got through ~55 new feeds a
# second with their documents (a first start of 10,000 sources), and each costs ~40 MB:
# with two, those 10,000 sources took the daemon's process tree past 200 MB.
DAEMON_PARSE_PROCESSES = 1


class Daemon:
    """Everything `aggregator run` keeps for its life; `run()` blocks until told to stop."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.started = datetime.now(UTC)
        # What the database said before this configuration was synced into it: a source whose
        # URL changed while we were down is told apart from one that did not.
        self._states_at_start = {state.name: state for state in store.source_states()}
        self.pipeline = Pipeline(config, store, parse_processes=DAEMON_PARSE_PROCESSES)
        self._requests: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        # Guards pipeline, config, the running map, the retired list, and the job store's
        # set of sources (swapped with the pipeline, so a handed-out poll sees the two agree).
        self._state = threading.Condition()
        self._running: dict[str, Pipeline] = {}  # source name -> the pipeline polling it
        self._retired: list[Pipeline] = []  # replaced by a reload, closed once unused
        self._stopping = False
        self._heartbeat = time.monotonic()
        self.jobs = SourceJobStore(store, self._poll)
        self.jobs.use(_enabled(config))
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            jobstores={"default": MemoryJobStore(), "sources": self.jobs},
            executors={
                "default": ThreadPoolExecutor(config.workers),
                # Its own thread, so that slow polls filling the pool never look like death.
                "heartbeat": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.metrics = Metrics(store.source_states, lambda: _enabled(self.config), self._polls)
        self.hooks = HookRunner(config.hooks, config.paths, observe=self.metrics.hook_ran)
        self.republisher = Republisher(
            lambda: self.pipeline.publisher, self._published, observe=self.metrics.republished
        )
        try:
            self.server = FeedServer(
                config.server.host,
                config.server.port,
                _site(config),
                health=self.healthy,
                status=self.status,
                index=self.index_page,
                metrics=self.metrics.exposition,
            )
        except OSError as exc:
            self.pipeline.close()
            raise AggregatorError(
                f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror or exc}"
                " (change server.host / server.port in the config)"
            ) from None

    # -- life -----------------------------------------------------------------------------

    def run(self) -> list[str]:
        """Serve until SIGTERM/SIGINT; return the sources whose polls outlived STOP_WAIT."""
        previous = self._install_signals()
        try:
            self._prepare_outputs()
            self.server.start()
            self.republisher.start()
            self.hooks.start()
            self.hooks.changed(self.pipeline.publisher.take_published())  # what start wrote
            enabled = _enabled(self.config)
            # Used once: at 10,000 sources they are megabytes of validators and times.
            states, self._states_at_start = self._states_at_start, {}
            self.store.schedule_polls(self._first_polls(enabled, states))
            self.scheduler.start()
            self._heartbeat = time.monotonic()
            self.scheduler.add_job(
                self._beat,
                IntervalTrigger(seconds=HEARTBEAT, timezone=UTC),
                id="_heartbeat",
                executor="heartbeat",
            )
            feeds = " ".join(
                self.server.url + feed.href
                for feed in self.server.site.feeds.values()
                if feed.merged
            )
            log.info(
                "aggregator %s running: %d sources enabled, %d workers; serving %s (feeds: %s)",
                __version__, len(enabled), self.config.workers, self.server.url, feeds,
            )  # fmt: skip
            notify("READY=1", f"STATUS=following {len(enabled)} sources; serving {feeds}")
            self._wait_for_stop()
        finally:
            unfinished = self._shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return unfinished

    def stop(self) -> None:
        """Ask `run()` to stop, as SIGTERM does; safe from any thread."""
        self._requests.put(("stop", "stop requested"))

    def _prepare_outputs(self) -> None:
        """Complete what a crash may have left: stale temp files, unwritten documents, feed."""
        paths = self.config.paths
        for folder in (paths.documents, paths.public):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from None
        removed = remove_interrupted_writes(paths)
        written = self.pipeline.publisher.write_documents()
        self.pipeline.publisher.publish()
        log.info(
            "outputs ready: documents=%d written, stale temp files removed=%d", written, removed
        )

    def _install_signals(self) -> dict[int, Any]:
        # Handlers only enqueue: SimpleQueue.put is safe in a signal handler, logging is not.
        def stop(signum: int, frame: FrameType | None) -> None:
            self._requests.put(("stop", f"{signal.Signals(signum).name} received"))

        def reload(signum: int, frame: FrameType | None) -> None:
            self._requests.put(("reload", f"{signal.Signals(signum).name} received"))

        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # embedded (tests): stop() instead of signals
        # SIGUSR1 writes every thread's stack to stderr (the journal): what is a stuck poll
        # doing? It is answered by the interpreter itself, even if Python code is wedged.
        faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)
        for signum, handler in (
            (signal.SIGTERM, stop),
            (signal.SIGINT, stop),
            (signal.SIGHUP, reload),
        ):
            previous[signum] = signal.signal(signum, handler)
        return previous

    def _wait_for_stop(self) -> None:
        watchdog = watchdog_interval()
        tick = min(CONFIG_WATCH, watchdog) if watchdog else CONFIG_WATCH
        seen = _file_stamp(self.config.path)
        changing: tuple[int, int, int] | None = None  # a new stamp, waiting to settle
        while True:
            try:
                action, why = self._requests.get(timeout=CONFIG_SETTLE if changing else tick)
            except queue.Empty:
                action, why = "", ""
            if action == "stop":
                log.info("%s: stopping", why)
                return
            stamp = _file_stamp(self.config.path)
            if action == "reload":
                seen, changing = stamp, None
                self.reload(why)
            elif stamp != seen and stamp is not None:
                # An editor may be half-way through writing the file: reload once the file
                # has stayed the same for CONFIG_SETTLE.
                if stamp == changing:
                    seen, changing = stamp, None
                    self.reload("config file changed")
                else:
                    changing = stamp
            # Timed waits do not count time suspended; this catches up at once after a resume.
            self.scheduler.wakeup()
            if watchdog and self.healthy():
                notify("WATCHDOG=1")

    def _shutdown(self) -> list[str]:
        notify("STOPPING=1")
        with self._state:
            self._stopping = True
            self.jobs.use(())  # no more polls handed out; the database keeps every time
            running = sorted(self._running)
        if running:
            log.info("waiting up to %g s for running polls: %s", STOP_WAIT, ", ".join(running))
        if self.scheduler.running:
            self.scheduler.remove_all_jobs()
        deadline = time.monotonic() + STOP_WAIT
        with self._state:
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._state.wait(left)
            unfinished = sorted(self._running)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.republisher.alive():
            self.republisher.stop(timeout=STOP_WAIT)
        self.hooks.stop()  # a running hook gets up to its timeout; no new one starts
        self.server.stop()
        if unfinished:
            log.warning(
                "polls still running after %g s, abandoned (nothing half-stored): %s",
                STOP_WAIT, ", ".join(unfinished),
            )  # fmt: skip
        if self.republisher.alive():
            # Its pass still uses the pipeline (a first round's backlog of documents): the
            # pipeline is left open, not closed under it; what it had not written stays owed
            # in the database and is written at the next start.
            log.warning(
                "republish still running after %g s, abandoned (its documents stay owed)",
                STOP_WAIT,
            )
            unfinished = [*unfinished, "(republish)"]
        if not unfinished:
            self._close_retired()
            self.pipeline.close()
        log.info("stopped")
        return unfinished

    # -- health and status ----------------------------------------------------------------

    def _beat(self) -> None:
        self._heartbeat = time.monotonic()

    def healthy(self) -> bool:
        """True while sources are being scheduled and published: the scheduler and the
        republisher are alive, and the last republish wrote the feeds."""
        return (
            not self._stopping
            and self.scheduler.running
            and self.republisher.alive()
            and self.republisher.failure is None
            and time.monotonic() - self._heartbeat < HEARTBEAT_STALE
        )

    def publishing(self) -> Publishing:
        """Whether outputs are being written: the last republish, and documents owed after
        failing (each retried by every republish)."""
        failing, reason = self.store.document_failures()
        return Publishing(self.republisher.failure, failing, reason)

    def _published(self) -> None:
        """After a republish pass: the polls behind it changed what / shows, and the hooks
        are told what the pass wrote."""
        self.server.index.stale()
        self.hooks.changed(self.pipeline.publisher.take_published())

    def _polls(self) -> PollCounts:
        with self._state:
            running = set(self._running)
        return PollCounts(len(running), len(self.jobs.in_flight() - running))

    def index_page(self, language: str = "en") -> bytes:
        """The page at / for the running config and the database (the server caches it)."""
        return index_page_for(
            self.config,
            self.store,
            self.publishing(),
            preferred=language,
            hooks=self.hooks.statuses(),
        )

    def status(self) -> dict[str, Any]:
        """Every configured source's state, for /status."""
        states = {state.name: state for state in self.store.source_states()}
        with self._state:
            config = self.config
            running = set(self._running)
        waiting = self.jobs.in_flight() - running
        scheduled = {name: states[name].next_poll for name in _enabled(config) if name in states}
        report = status_report(
            config.sources,
            states,
            scheduled,
            running,
            waiting,
            self.started,
            self.healthy(),
            self.publishing(),
        )
        return {**report, "hooks": self.hooks.statuses()}

    # -- scheduling -----------------------------------------------------------------------

    def _first_polls(
        self, names: list[str], states: dict[str, SourceState], moved: tuple[str, ...] = ()
    ) -> dict[str, datetime | None]:
        """The next poll of each of these sources at a start (or as a reload starts them),
        for those whose stored time changes: new, due, URL changed, or gone (None)."""
        now = datetime.now(UTC)
        times: dict[str, datetime | None] = {}
        for name in names:
            source = self.pipeline.sources[name]
            state = states.get(name)
            stored = state.next_poll if state else None
            delay = first_poll_delay(
                now,
                stored,
                source.interval,
                gone=state is not None and state.status == SourceStatus.GONE,
                url_changed=name in moved or (state is not None and state.url != source.url),
                starting=len(names),
            )
            if delay is None:
                log.warning(
                    "source=%s not polled: its server answered 410 Gone; "
                    "change its url or remove it from the config",
                    name,
                )
            when = None if delay is None else now + timedelta(seconds=delay)
            if when != stored:
                times[name] = when
        return times

    def _poll(self, name: str) -> None:
        """One due poll, handed out by the source job store; it writes the next one."""
        next_poll: datetime | None = None
        try:
            with self._state:
                pipeline = self.pipeline
                source = pipeline.sources.get(name)
                if self._stopping or source is None or not source.enabled:
                    return
                self._running[name] = pipeline
            try:
                next_poll = self._poll_source(pipeline, source)
            except Exception as exc:  # ours (database, disk, a bug), not the source's
                next_poll = self._poll_failed(source, exc)
            finally:
                with self._state:
                    self._running.pop(name, None)
                    self._state.notify_all()
            self._close_retired()
        finally:
            if self.jobs.release(name, next_poll):
                self.scheduler.wakeup()

    def _poll_source(self, pipeline: Pipeline, source: Source) -> datetime | None:
        result = pipeline.poll(source)
        self.metrics.poll_ended(result)
        if result.status in {PollStatus.NEW, PollStatus.CHANGED}:
            self.republisher.request()
        # The poll says when it stored the next one: no second read of the source's row.
        if result.next_poll is None:
            log.warning(
                "source=%s disabled: its server says it is gone for good (HTTP 410); "
                "change its url or remove it from the config",
                source.name,
            )
        return result.next_poll

    def _poll_failed(self, source: Source, exc: Exception) -> datetime:
        """Retry a poll that failed on our side, never giving up: one interval on (at least
        BACKOFF_BASE, at most BACKOFF_CAP), shown on the source. Should even that not be
        written (the database is failing), the source is held until then in memory."""
        delay = min(max(source.interval, BACKOFF_BASE), BACKOFF_CAP)
        when = datetime.now(UTC) + timedelta(seconds=delay)
        log.error("source=%s poll failed: %s; retrying in %d s", source.name, exc, delay)
        log.debug("source=%s poll failed", source.name, exc_info=exc)
        try:
            self.store.note_poll_failure(
                source.name, f"poll failed: {type(exc).__name__}: {exc}", when
            )
        except Exception as again:
            log.error("source=%s cannot record its next poll either: %s", source.name, again)
            self.jobs.hold(source.name, when)
        return when

    # -- reload ---------------------------------------------------------------------------

    def reload(self, reason: str) -> None:
        """Apply a changed config: added sources start, removed ones stop, changed URLs and
        intervals apply. A config that does not load is rejected and the old one runs on."""
        try:
            config = self._keep_fixed_settings(load_config(self.config.path))
        except AggregatorError as exc:
            log.error("config reload (%s) rejected, the running config stays: %s", reason, exc)
            return
        notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        states = {state.name: state for state in self.store.source_states()}
        try:
            pipeline = Pipeline(config, self.store, parse_processes=DAEMON_PARSE_PROCESSES)
        except AggregatorError as exc:
            log.error("config reload (%s) failed, the running config stays: %s", reason, exc)
            notify("READY=1")
            return
        with self._state:
            old = self.pipeline
            self.pipeline, self.config = pipeline, config
            self.jobs.use(_enabled(config))  # stopped sources are no longer handed out
            self._retired.append(old)
        # Polling or waiting for a worker: each writes its next time when it ends.
        busy = self.jobs.in_flight()
        self._close_retired()
        plan = plan_reload(old.sources, pipeline.sources)
        self.server.site = _site(config)
        self.hooks.configure(config.hooks)
        self.server.index.stale()  # sources, titles and feeds may have changed
        starting = [name for name in plan.start + plan.moved if name not in busy]
        times = self._first_polls(starting, states, moved=plan.moved)
        now = datetime.now(UTC)
        for name in plan.retimed:
            state = states.get(name)
            if name in busy or state is None:
                continue
            source = pipeline.sources[name]
            due = retimed_next_poll(
                state.last_fetch,
                state.next_poll,
                source.interval,
                max_interval=config.max_interval,
                ttl=state.ttl,
                consecutive_errors=state.consecutive_errors,
            )
            delay = first_poll_delay(
                now, due, source.interval, gone=state.status == SourceStatus.GONE
            )
            if delay is not None:
                times[name] = now + timedelta(seconds=delay)
        try:
            self.store.schedule_polls(times)
        except AggregatorError as exc:
            log.error(
                "config reload (%s): cannot write when sources are polled (%s); sources it "
                "started or changed keep their stored times until the next reload",
                reason, exc,
            )  # fmt: skip
        self.scheduler.wakeup()
        self.republisher.request()  # titles and feed settings may have changed
        log.info(
            "config reloaded (%s): %d sources enabled; started=%s stopped=%s moved=%s retimed=%s",
            reason,
            sum(1 for s in config.sources if s.enabled),
            ",".join(plan.start) or "-",
            ",".join(plan.stop) or "-",
            ",".join(plan.moved) or "-",
            ",".join(plan.retimed) or "-",
        )
        notify("READY=1")

    def _close_retired(self) -> None:
        """Close pipelines replaced by a reload once no running poll uses them any more."""
        with self._state:
            in_use = {id(pipeline) for pipeline in self._running.values()}
            done = [p for p in self._retired if id(p) not in in_use]
            self._retired = [p for p in self._retired if id(p) in in_use]
        for pipeline in done:
            pipeline.close()

    def _keep_fixed_settings(self, config: Config) -> Config:
        """Settings a running daemon cannot change; kept, with a warning, until a restart."""
        current = self.config
        if config.paths.database != current.paths.database:
            log.warning("database changed in the config: takes effect at the next restart")
            config = replace(config, paths=replace(config.paths, database=current.paths.database))
        if config.server != current.server:
            log.warning("server address changed in the config: takes effect at the next restart")
            config = replace(config, server=current.server)
        if config.workers != current.workers:
            log.warning("workers changed in the config: takes effect at the next restart")
            config = replace(config, workers=current.workers)
        return config


def run_daemon(config: Config) -> int:
    """`aggregator run`: take the instance lock, open the database, serve until stopped.

    Raises AggregatorError (exit code 2 in the CLI) when it cannot start: another instance,
    an unusable database or output folder, a port in use. Returns 0 after SIGTERM/SIGINT.
    """
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # APScheduler logs every job run at INFO, which would double each poll line.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    lock = InstanceLock(config.paths.database)
    lock.acquire()
    try:
        store = Store(config.paths.database)
        try:
            unfinished = Daemon(config, store).run()
            if unfinished:
                # Their threads would hold the exit until the polls' own timeouts; the
                # database rolls back anything they had not committed.
                logging.shutdown()
                os._exit(0)
        finally:
            store.close()
    finally:
        lock.release()
    return 0


def _enabled(config: Config) -> list[str]:
    return [source.name for source in config.sources if source.enabled]


def _site(config: Config) -> Site:
    """Every feed publish() writes: the merged ones, and the files of each category's and
    source's folder (RSS, Atom, JSON)."""
    feed = config.feed
    info = FeedInfo(feed.title, feed.link, feed.description, feed.rss_name, feed.atom_name)
    public = os.fspath(config.paths.public)
    merged = [
        FeedFile(os.path.join(public, link.path), served_type(link.media_type), link.url_path, True)
        for link in published_feeds(info, ())
    ]
    return Site.of(
        merged,
        folders={
            f"/{group.folder}/": os.path.join(public, group.folder)
            for group in configured_groups(config)
        },
        folder_files={name: served_type(media_type) for name, _, media_type in FEED_FILES},
    )


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)
