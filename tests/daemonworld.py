"""A running `aggregator run` for the end-to-end tests: the process, its log, its address,
and the waits and config files they share (tests/e2e/test_daemon.py and
tests/e2e/test_index_browser.py). The `start_daemon` fixture in conftest.py stops each one.

Every wait polls a condition against a deadline; nothing sleeps for a fixed long time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    from conftest import FeedServer  # conftest imports this module for its fixture

T = TypeVar("T")
DEADLINE = 20.0


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """The first truthy value of `condition()`, checked every 0.1 s until `timeout`."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def local(feed_server: FeedServer, path: str) -> str:
    return feed_server.url(path).replace("//localhost:", "//127.0.0.1:")


def write_config(folder: Path, sources: list[dict], **settings: Any) -> Path:
    path = folder / "config.yaml"
    data = {
        "database": "state/agg.db",
        "documents": "site/_posts",
        "interval": "1s",
        "max_interval": "1s",  # the test feeds say <ttl>5</ttl>; don't wait 5 minutes
        "workers": 4,
        "server": {"host": "127.0.0.1", "port": 0},
        "feed": {"folder": "public", "title": "Test merged feed"},
        **settings,
        "sources": sources,
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


class RunningDaemon:
    """One `python -m aggregator run` process, its log file and its HTTP address."""

    def __init__(
        self,
        config: Path,
        env: dict[str, str] | None = None,
        open_files: tuple[int, int] | None = None,
    ) -> None:
        """`open_files`: the (soft, hard) limit the process starts with, as systemd sets it."""
        self.config = config
        self.log = config.parent / "daemon.log"
        self._log_file = self.log.open("ab")

        def limit() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "run", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
            env={**os.environ, **(env or {})},
            preexec_fn=limit if open_files is not None else None,
        )
        match = wait_for(
            lambda: self.running() and re.search(r"serving http://([\d.]+):(\d+)/", self.text()),
            "the daemon to log its address",
        )
        self.host, self.port = match.group(1), int(match.group(2))

    def running(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the daemon exited early:\n{self.text()}")
        return True

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def request(self, path: str, method: str = "GET", **headers: str) -> Response:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(
                method, path, headers={k.replace("_", "-"): v for k, v in headers.items()}
            )
            answer = connection.getresponse()
            return Response(answer.status, dict(answer.getheaders()), answer.read())
        finally:
            connection.close()

    def status(self, name: str) -> dict[str, Any]:
        return next(s for s in self.request("/status").json()["sources"] if s["name"] == name)

    def stop(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took to exit)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            # Left running by a failed test: note what it was doing, for the report.
            with contextlib.suppress(Exception):
                print(json.dumps(self.request("/status").json(), indent=1))
            self.process.send_signal(signal.SIGUSR1)  # thread stacks into the log
            time.sleep(0.5)
            self.process.kill()
            self.process.wait(10)
        self._log_file.close()
