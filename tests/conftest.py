"""The world the tests run in: a temp folder, a config file, a real HTTP server of feeds,
running daemons (tests/daemonworld.py)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from daemonworld import RunningDaemon
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config.settings import Config, load_config
from aggregator.poll.pipeline import Pipeline
from aggregator.store.database import Store


@dataclass
class Feed:
    """A feed the server answers with, honouring If-None-Match like RSSHub does."""

    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    def respond(self, request: Request) -> Response:
        self.requests += 1
        tag = '"' + hashlib.sha1(self.body).hexdigest() + '"'
        if self.etag and self.status == 200 and request.headers.get("If-None-Match") == tag:
            return Response(status=304, headers={"ETag": tag})
        headers = dict(self.headers)
        if self.etag and self.status == 200:
            headers["ETag"] = tag
        return Response(
            self.body, status=self.status, headers=headers, content_type=self.content_type
        )


class FeedServer:
    """pytest-httpserver with mutable feeds at fixed paths."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.feeds: dict[str, Feed] = {}

    def serve(self, path: str, body: bytes, **options) -> Feed:
        feed = Feed(body=body, **options)
        if path not in self.feeds:
            self.server.expect_request(path).respond_with_handler(
                lambda request, path=path: self.feeds[path].respond(request)
            )
        self.feeds[path] = feed
        return feed

    def url(self, path: str) -> str:
        return self.server.url_for(path)


@pytest.fixture
def feed_server(httpserver: HTTPServer) -> FeedServer:
    return FeedServer(httpserver)


@pytest.fixture
def pipeline_for() -> Iterator[Callable[[Config], Pipeline]]:
    """Open pipelines on configs; every one is closed after the test."""
    opened: list[tuple[Pipeline, Store]] = []

    def make(config: Config) -> Pipeline:
        store = Store(config.paths.database)
        pipeline = Pipeline(config, store)
        opened.append((pipeline, store))
        return pipeline

    yield make
    for pipeline, store in opened:
        pipeline.close()
        store.close()


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Write a config.yaml in tmp_path from keyword settings and load it."""

    def make(sources: list[dict], **settings) -> Config:
        path = tmp_path / "config.yaml"
        data = {"database": "data/test.db", **settings, "sources": sources}
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return load_config(path)

    return make


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """The real command line, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def start_daemon() -> Iterator[Callable[..., RunningDaemon]]:
    """Start `aggregator run` processes; each is stopped (and its log shown) afterwards."""
    started: list[RunningDaemon] = []

    def start(config: Path, env: dict[str, str] | None = None) -> RunningDaemon:
        daemon = RunningDaemon(config, env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()
        print(f"--- {daemon.log} ---\n{daemon.text()}")  # shown when the test failed


def kill_while_holding_the_lock(database: Path) -> None:
    """What an `update` or a daemon killed with SIGKILL leaves in `<database>.lock`: a
    process takes the lock with the real class and is killed holding it."""
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys; from pathlib import Path; "
            "from aggregator.service.instance_lock import InstanceLock; "
            "InstanceLock(Path(sys.argv[1])).acquire(); os.kill(os.getpid(), signal.SIGKILL)",
            str(database),
        ],
        timeout=60,
    )
    assert killed.returncode == -9
