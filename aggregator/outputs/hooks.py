"""Publish hooks: the user's commands (`hexo generate`, a deploy) run after a publish that
changed something, so that the site follows its sources without a script around us.

Guarantees, and why:
- One hook runs at a time, in the configured order, on one thread (the daemon's) or in
  the pass (`update`): a site generator must never run twice over one folder.
- Changes that arrive while hooks run are merged into one more round after it (coalescing):
  a burst of polls costs one `hexo generate`, not one per poll.
- A hook learns what changed: counts in the environment and two files listing the document
  paths written and removed, so a deploy can be incremental. A failed hook keeps its changes
  and gets them again, merged with the next, at the next change; the hooks after it wait
  for that round too (a deploy after a failed generate would publish a stale site).
- A hook is bounded: its timeout kills its whole process group; its output goes to the log
  (at most LOGGED_LINES lines a run) and its last lines are kept for `/status`, `/` and
  `aggregator hooks`. A failing hook never stops polling.
- The last run of each hook is kept beside the database (`<database>.hooks.json`), so
  `aggregator hooks` shows it while the daemon runs and after a restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from aggregator.models import Hook, HookWhen, Paths, Published
from aggregator.outputs.atomic import write_atomic

log = logging.getLogger(__name__)

KEPT_LINES = 20  # of a run's output, for the status
LOGGED_LINES = 200  # of a run's output, to the log
LINE_BYTES = 2000  # longer lines are cut
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a hook that timed out


class HookOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"  # exited with another status than 0, or killed by a signal
    TIMEOUT = "timeout"
    NOT_STARTED = "not-started"  # the command could not be started (not found, no access)


@dataclass(frozen=True)
class HookRun:
    """The last run of one hook."""

    hook: str
    started: str  # RFC 3339, UTC
    duration: float  # seconds
    outcome: HookOutcome
    exit_code: int | None
    output: tuple[str, ...]  # its last lines
    written: int  # documents it was told about
    removed: int
    feeds: bool


def wanted(hook: Hook, changes: Published) -> bool:
    """Whether `changes` are what `hook` runs after."""
    if hook.when == HookWhen.DOCUMENTS:
        return bool(changes.written or changes.removed)
    if hook.when == HookWhen.FEEDS:
        return changes.feeds
    return bool(changes)


def run_hook(hook: Hook, changes: Published, paths: Paths) -> HookRun:
    """Run one hook to its end or its timeout, telling it `changes`."""
    started, clock = datetime.now(UTC), time.monotonic()
    lists = Path(tempfile.mkdtemp(prefix="aggregator-hook-"))
    try:
        environment = _environment(hook, changes, paths, lists)
        try:
            process = subprocess.Popen(
                hook.run,
                shell=hook.shell,
                cwd=hook.cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed whole on timeout
            )
        except OSError as exc:
            outcome, code, lines = HookOutcome.NOT_STARTED, None, (f"{exc.strerror or exc}",)
        else:
            outcome, code, lines = _wait(hook, process)
    finally:
        shutil.rmtree(lists, ignore_errors=True)
    return HookRun(
        hook=hook.name,
        started=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        duration=round(time.monotonic() - clock, 3),
        outcome=outcome,
        exit_code=code,
        output=lines,
        written=len(changes.written),
        removed=len(changes.removed),
        feeds=changes.feeds,
    )


def _environment(hook: Hook, changes: Published, paths: Paths, lists: Path) -> dict[str, str]:
    written, removed = lists / "written", lists / "removed"
    for file, names in ((written, changes.written), (removed, changes.removed)):
        file.write_text("".join(f"{paths.documents / name}\n" for name in sorted(names)))
    return {
        **os.environ,
        **dict(hook.environment),
        "AGGREGATOR_DOCUMENTS": str(paths.documents),
        "AGGREGATOR_PUBLIC": str(paths.public),
        "AGGREGATOR_WRITTEN": str(len(changes.written)),
        "AGGREGATOR_REMOVED": str(len(changes.removed)),
        "AGGREGATOR_FEEDS_CHANGED": "1" if changes.feeds else "0",
        "AGGREGATOR_WRITTEN_LIST": str(written),
        "AGGREGATOR_REMOVED_LIST": str(removed),
    }


def _wait(
    hook: Hook, process: subprocess.Popen[bytes]
) -> tuple[HookOutcome, int | None, tuple[str, ...]]:
    kept: deque[str] = deque(maxlen=KEPT_LINES)
    assert process.stdout is not None
    reader = threading.Thread(
        target=_read_output, args=(hook.name, process.stdout, kept), daemon=True
    )
    reader.start()
    try:
        code = process.wait(hook.timeout)
        outcome = HookOutcome.OK if code == 0 else HookOutcome.FAILED
    except subprocess.TimeoutExpired:
        _kill_group(process)
        code, outcome = process.returncode, HookOutcome.TIMEOUT
        kept.append(f"(killed after {hook.timeout:g} s)")
    # A child left running in the background may hold the pipe open: do not wait for it.
    reader.join(1.0)
    return outcome, code, tuple(kept)


def _read_output(name: str, stream: IO[bytes], kept: deque[str]) -> None:
    logged = 0
    with contextlib.suppress(OSError, ValueError):
        for raw in iter(lambda: stream.readline(LINE_BYTES), b""):
            line = raw.decode("utf-8", "replace").rstrip()
            line = "".join(ch if ch.isprintable() else " " for ch in line)
            kept.append(line)
            logged += 1
            if logged <= LOGGED_LINES:
                log.info("hook=%s | %s", name, line)
            elif logged == LOGGED_LINES + 1:
                log.info("hook=%s | (more output not logged)", name)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class HookRunner:
    """The hooks of one configuration: what each still has to be told, and its last run."""

    def __init__(
        self,
        hooks: Sequence[Hook],
        paths: Paths,
        observe: Callable[[HookRun], None] | None = None,
    ) -> None:
        self.hooks = tuple(hooks)
        self._observe = observe  # told of every run (the daemon's metrics)
        self.paths = paths
        self._state_file = state_file(paths)
        kept = read_state(self._state_file)
        self.last: dict[str, HookRun] = kept.runs
        self._pending = {hook.name: kept.pending.get(hook.name, Published()) for hook in hooks}
        # Hooks that failed on their pending changes: they wait for the next change. What
        # a process left pending (a failed hook's changes) waits the same way.
        self._waiting = {name for name, changes in self._pending.items() if changes}
        self._lock = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.running: str | None = None  # the hook running now

    def configure(self, hooks: Sequence[Hook]) -> None:
        """Take a reloaded configuration's hooks; a hook kept by name keeps what it was owed."""
        with self._lock:
            self.hooks = tuple(hooks)
            self._pending = {h.name: self._pending.get(h.name, Published()) for h in hooks}
            self._waiting &= set(self._pending)
            self._lock.notify_all()
        self.start()

    def changed(self, changes: Published) -> None:
        """Tell every hook of `changes`; the runner thread (if started) takes them up."""
        if not changes or not self.hooks:
            return
        with self._lock:
            for name in self._pending:
                self._pending[name] = self._pending[name] | changes
            self._waiting.clear()
            self._save()
            self._lock.notify_all()

    def run_due(self) -> list[HookRun]:
        """One round, here: each hook whose pending changes it runs after, in order, until
        one fails (the rest keep theirs for the next round)."""
        runs = []
        for hook in self.hooks:
            with self._lock:
                changes = self._pending[hook.name]
                if self._stopping or not wanted(hook, changes):
                    continue
                self._pending[hook.name] = Published()
                self.running = hook.name
            try:
                run = run_hook(hook, changes, self.paths)
            except BaseException:
                with self._lock:
                    self.running = None
                raise
            runs.append(run)
            self._log(run)
            if self._observe is not None:
                self._observe(run)
            # The run is shown as over only together with its record: /status never shows
            # a hook idle with the run before last as its latest.
            with self._lock:
                self.running = None
                self.last[run.hook] = run
                if run.outcome != HookOutcome.OK:  # given again, with what comes next
                    self._pending[hook.name] = changes | self._pending[hook.name]
                    self._waiting.add(hook.name)
                self._save()
            if run.outcome != HookOutcome.OK:
                break
        return runs

    def start(self) -> None:
        """Run rounds on a thread of their own as changes arrive (the daemon)."""
        if self.hooks and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="hooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Start no more hooks; wait for a running one up to its timeout."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            longest = max(hook.timeout for hook in self.hooks) + KILL_GRACE + 2
            self._thread.join(longest)

    def statuses(self) -> list[dict[str, Any]]:
        """Each configured hook and its last run, for /status and `aggregator hooks`."""
        with self._lock:
            running = self.running
            pending = {name: bool(changes) for name, changes in self._pending.items()}
        return [
            {
                "name": hook.name,
                "when": str(hook.when),
                "running": hook.name == running,
                "pending": pending.get(hook.name, False),
                "last_run": _plain(self.last.get(hook.name)),
            }
            for hook in self.hooks
        ]

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not self._due():
                    self._lock.wait()
                if self._stopping:
                    return
            try:
                self.run_due()
            except Exception:  # a bug here must not end the hooks for good
                log.exception("publish hooks failed")
                time.sleep(1)

    def _due(self) -> bool:
        """Whether a round would run a hook (call with the lock held): the first hook with
        changes it runs after, unless it failed on them and no change came since."""
        for hook in self.hooks:
            if wanted(hook, self._pending[hook.name]):
                return hook.name not in self._waiting
        return False

    def _save(self) -> None:
        """Keep the last runs and what is pending (call with the lock held)."""
        try:
            write_state(self._state_file, HooksState(self._pending, self.last))
        except OSError as exc:
            log.warning("cannot keep the hooks' state in %s: %s", self._state_file, exc)

    def _log(self, run: HookRun) -> None:
        level = logging.INFO if run.outcome == HookOutcome.OK else logging.ERROR
        log.log(
            level,
            "hook=%s outcome=%s exit=%s duration=%.2fs written=%d removed=%d feeds=%s%s",
            run.hook,
            run.outcome,
            run.exit_code if run.exit_code is not None else "-",
            run.duration,
            run.written,
            run.removed,
            run.feeds,
            f" last={run.output[-1]!r}" if run.output and run.outcome != HookOutcome.OK else "",
        )


def _plain(run: HookRun | None) -> dict[str, Any] | None:
    return None if run is None else {**asdict(run), "output": list(run.output)}


def state_file(paths: Paths) -> Path:
    """Where the hooks' state is kept: beside the database, as the group feeds' record is."""
    return paths.database.with_name(paths.database.name + ".hooks.json")


@dataclass(frozen=True)
class HooksState:
    """What is kept beside the database: changes not yet told to each hook, last runs."""

    pending: dict[str, Published]
    runs: dict[str, HookRun]


def read_state(path: Path) -> HooksState:
    """What `write_state` kept; nothing when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text("utf-8"))
        runs = {
            item["hook"]: HookRun(**{**item, "output": tuple(item["output"])})
            for item in data["runs"]
        }
        pending = {
            name: Published(frozenset(item["written"]), frozenset(item["removed"]), item["feeds"])
            for name, item in data["pending"].items()
        }
        return HooksState(pending, runs)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return HooksState({}, {})


def write_state(path: Path, state: HooksState) -> None:
    data = {
        "pending": {
            name: {"written": sorted(c.written), "removed": sorted(c.removed), "feeds": c.feeds}
            for name, c in state.pending.items()
            if c
        },
        "runs": [_plain(run) for run in state.runs.values()],
    }
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))


def run_hooks_once(hooks: Sequence[Hook], paths: Paths, changes: Published) -> list[HookRun]:
    """`aggregator update`'s last step: tell the hooks what the pass changed and run them,
    here and now (with what a failed hook of an earlier pass still has to be told)."""
    runner = HookRunner(hooks, paths)
    runner.changed(changes)
    return runner.run_due() if changes else []
