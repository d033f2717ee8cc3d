"""The poll threads of a pass (poll/threads.py): one thread while polls do not wait, all
`workers` as soon as they do, every source polled once, results in the sources' order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from feedworld import rsshub_feed, rsshub_item

import aggregator.poll.threads as threads_module
from aggregator.models import Source
from aggregator.poll.threads import SLOW_POLL, SourceQueue, should_grow
from aggregator.store.rows import SourceState


@pytest.mark.parametrize(
    ("waited", "running", "elapsed", "grow"),
    [
        (0.002, 0.001, 0.05, False),
        (0.0, SLOW_POLL * 2, 0.05, True),
        (0.03, 0.0, 0.05, True),
        (0.024, 0.0, 0.05, False),
        (0.025, 0.0, 0.05, False),
        (0.026, 0.0, 0.05, True),
    ],
    ids=[
        "local 304s: busy all the tick",
        "one poll waiting on a distant server",
        "polls waiting on parser processes",
        "waiting less than half the tick",
        "waiting exactly half the tick",
        "waiting just over half the tick",
    ],
)
def test_should_grow(waited: float, running: float, elapsed: float, grow: bool):
    assert should_grow(waited, running, elapsed) is grow


def test_the_queue_hands_each_source_out_once_in_order_reading_states_a_chunk_at_a_time():
    sources = [Source(name=f"s{i}", url=f"http://127.0.0.1:9/{i}") for i in range(1000)]
    queries: list[list[str]] = []

    def states(names: list[str]) -> list[SourceState]:
        queries.append(names)
        return [SourceState(name, "http://127.0.0.1:9/") for name in names if name != "s7"]

    queue = SourceQueue(sources, states, chunk=300)
    taken: list[tuple[int, str, bool]] = []

    def take() -> None:
        while (job := queue.take()) is not None:
            index, source, state = job
            taken.append((index, source.name, state is not None))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(index for index, _, _ in taken) == list(range(1000))
    assert all(name == f"s{index}" for index, name, _ in taken)
    assert [index for index, _, known in taken if not known] == [7]
    assert [len(names) for names in queries] == [300, 300, 300, 100]


class _SlowFeeds(BaseHTTPRequestHandler):
    """Every feed answers after `DELAY` seconds, many at a time, as distant servers do."""

    DELAY = 0.4
    BODY = rsshub_feed([rsshub_item(1)])

    def do_GET(self) -> None:
        time.sleep(self.DELAY)
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowFeeds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_polls_that_wait_get_every_worker(slow_server: str, make_config, pipeline_for):
    """Twelve sources that each take 0.4 s to answer: one thread would need 4.8 s, eight
    need two rounds of them once the pass has seen its first poll wait."""
    config = make_config(
        [{"name": f"s{i}", "url": f"{slow_server}/feed/{i}.xml"} for i in range(12)],
        workers=8,
    )
    pipeline = pipeline_for(config)
    started = time.monotonic()
    results = pipeline.update_all()
    took = time.monotonic() - started
    assert [r.source for r in results] == [f"s{i}" for i in range(12)]
    assert all(r.status == "new" for r in results)
    assert took < 12 * _SlowFeeds.DELAY / 2, took


def test_polls_that_do_not_wait_stay_on_one_thread(feed_server, make_config, pipeline_for):
    """Three 304s answered at once end before the pass first looks at its thread: it never
    starts another. (How long the polls wait is not measured here: the server runs in this
    process and holds the GIL while it answers.)"""
    feed_server.serve("/feed", rsshub_feed([rsshub_item(1)]))
    config = make_config(
        [{"name": f"s{i}", "url": feed_server.url("/feed") + f"?{i}"} for i in range(3)],
        workers=8,
    )
    pipeline = pipeline_for(config)
    pipeline.update_all()
    started: list[threading.Thread] = []
    original = threads_module.PollThread.start

    def start(thread: threading.Thread) -> None:
        started.append(thread)
        original(thread)

    threads_module.PollThread.start = start  # type: ignore[method-assign]
    try:
        results = pipeline.update_all()
    finally:
        threads_module.PollThread.start = original  # type: ignore[method-assign]
    assert [r.status for r in results] == ["not-modified"] * 3
    assert len(started) == 1


def test_a_poll_that_raises_ends_the_pass_with_its_error(
    feed_server, make_config, pipeline_for, monkeypatch
):
    """Not a source's fault (those are results): a bug, or a disk that cannot be written,
    raises out of the pass in the caller's thread, and no thread goes on polling."""
    feed_server.serve("/feed", rsshub_feed([rsshub_item(1)]))
    config = make_config(
        [{"name": f"s{i}", "url": feed_server.url("/feed") + f"?{i}"} for i in range(20)]
    )
    pipeline = pipeline_for(config)
    polled: list[str] = []
    poll = pipeline._poll

    def failing(source, state, unchanged, fetch=None):
        polled.append(source.name)
        if source.name == "s3":
            raise OSError(28, "No space left on device")
        return poll(source, state, unchanged, fetch)

    monkeypatch.setattr(pipeline, "_poll", failing)
    with pytest.raises(OSError, match="No space left"):
        pipeline.update_all()
    assert "s3" in polled and len(polled) < 20
    assert not [t for t in threading.enumerate() if t.name == "poll"]
