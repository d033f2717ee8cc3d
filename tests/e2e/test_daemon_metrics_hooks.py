"""`aggregator run` closes the loop: its publish hooks run after republishes (one at a time,
shown on /status), and /metrics is scraped with prometheus_client's own parser while it runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from conftest import FeedServer
from daemonworld import RunningDaemon, local, wait_for, write_config
from feedworld import rsshub_feed, rsshub_item
from prometheus_client.parser import text_string_to_metric_families

HOOK = """\
import os, sys
with open(sys.argv[1], "a") as log:
    log.write(os.environ["AGGREGATOR_WRITTEN"] + "\\n")
print("built", os.environ["AGGREGATOR_WRITTEN"], "posts")
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_hooks_run_and_metrics_are_scraped_while_the_daemon_runs(
    feed_server: FeedServer, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    feed_server.serve("/news", rsshub_feed([rsshub_item(1), rsshub_item(2)]))
    feed_server.serve("/broken", b"<html>oops</html>", status=500, etag=False)
    hook_log, script = tmp_path / "hook.log", tmp_path / "hook.py"
    script.write_text(HOOK)
    config = write_config(
        tmp_path,
        [
            {"name": "news", "url": local(feed_server, "/news")},
            {"name": "broken", "url": local(feed_server, "/broken")},
        ],
        hooks=[{"name": "generate", "run": [sys.executable, str(script), str(hook_log)]}],
    )
    daemon = start_daemon(config)
    wait_for(lambda: hook_log.exists() and "2" in hook_log.read_text().split(), "the hook's run")

    def hook_status() -> dict | None:
        (hook,) = daemon.request("/status").json()["hooks"]
        return hook if hook["last_run"] and not hook["running"] else None

    hook = wait_for(hook_status, "the hook's run on /status")
    assert hook["name"] == "generate" and hook["last_run"]["outcome"] == "ok"
    assert hook["last_run"]["output"][-1] == "built 2 posts"

    def scraped() -> dict | None:
        answer = daemon.request("/metrics")
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        found = samples(answer.body.decode())
        polled = found.get(("aggregator_polls_total", (("outcome", "error"), ("source", "broken"))))
        return (
            found if polled and ("aggregator_publish_duration_seconds_count", ()) in found else None
        )

    found = wait_for(scraped, "metrics of both polls and a republish")
    assert found[("aggregator_polls_total", (("outcome", "new"), ("source", "news")))] == 1
    assert found[("aggregator_entries_stored_total", (("kind", "new"),))] == 2
    assert found[("aggregator_documents_written_total", ())] >= 2
    assert found[("aggregator_poll_duration_seconds_count", ())] >= 2
    assert found[("aggregator_fetch_duration_seconds_count", ())] >= 2
    assert found[("aggregator_sources_enabled", ())] == 2
    assert found[("aggregator_source_consecutive_errors", (("source", "broken"),))] >= 1
    assert found[("aggregator_source_consecutive_errors", (("source", "news"),))] == 0
    assert ("aggregator_source_last_success_timestamp_seconds", (("source", "news"),)) in found
    assert (
        "aggregator_source_last_success_timestamp_seconds",
        (("source", "broken"),),
    ) not in found
    assert ("aggregator_polls_running", ()) in found and ("aggregator_polls_waiting", ()) in found
    ran = wait_for(
        lambda: samples(daemon.request("/metrics").body.decode()).get(
            ("aggregator_hook_runs_total", (("hook", "generate"), ("outcome", "ok")))
        ),
        "the hook's run in the metrics",
    )
    assert ran >= 1
    # A scraper that asks for OpenMetrics gets it.
    open_metrics = daemon.request("/metrics", Accept="application/openmetrics-text; version=1.0.0")
    assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert open_metrics.body.rstrip().endswith(b"# EOF")
    code, _ = daemon.stop()
    assert code == 0
