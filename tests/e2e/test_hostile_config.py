"""Config files a mistake or an attacker could write, through the real command line and a
running daemon: each is one line and exit code 2, never a traceback or a crash (issue 13)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FeedServer, run_cli
from daemonworld import RunningDaemon, local, wait_for, write_config
from feedworld import rsshub_feed, rsshub_item

SOURCE = "sources:\n  - {name: news, url: 'http://127.0.0.1:9/feed'}\n"


def check_refused(config: Path, expected: str) -> None:
    for command in ("check-config", "update"):
        result = run_cli(command, "--config", str(config))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"aggregator: {config}{expected}"), result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sources:\n  - {name: a, url: 'http://127.0.0.1:9/f', interval: 999999999999d}\n",
            ": sources[0].interval (line 2): '999999999999d' is not between 1s and 30d",
        ),
        ("timeout: {read: 1e400}\n" + SOURCE, ": timeout.read (line 1): inf is not a duration"),
        (
            "feed: {max_items: 99999999999999999999}\n" + SOURCE,
            ": feed.max_items (line 1): 99999999999999999999 is more than 100,000",
        ),
        ('feed: {title: "T\\0"}\n' + SOURCE, ": feed.title (line 1): 'T\\x00' holds a control"),
        ("database: /\n" + SOURCE, ": database (line 1): / is a folder"),
    ],
    ids=["interval", "timeout", "max-items", "control-character", "database-folder"],
)
def test_values_that_once_crashed_later_are_refused_at_once(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each of these passed `check-config` and then ended `update` in a traceback."""
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    check_refused(config, expected)


DEEP = {
    "flow-sequences": "sources: " + "[" * 30_000 + "]" * 30_000 + "\n",
    "flow-mappings": "sources: " + "{a: " * 30_000 + "1" + "}" * 30_000 + "\n",
    "block-sequences": "sources:\n" + "- " * 30_000 + "x\n",
    "pairs": "sources: " + "[a: " * 20_000 + "1" + "]" * 20_000 + "\n",
}


@pytest.mark.parametrize("text", DEEP.values(), ids=DEEP.keys())
def test_deep_nesting_is_refused_before_any_parser_sees_it(tmp_path: Path, text: str) -> None:
    """30,000 nested `[` crashed the YAML C extension: exit 139, no message (issue 13.9)."""
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    line = 2 if text.startswith("sources:\n") else 1
    check_refused(config, f" (line {line}): nested too deeply: more than 50 levels of lists")


def test_a_running_daemon_reloading_a_deeply_nested_file_stays_up(
    feed_server: FeedServer, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    """The daemon reloads its config when the file changes: a file that crashed the parser
    took the whole service down with it."""
    feed = feed_server.serve("/feed", rsshub_feed([rsshub_item(1)]))
    config = write_config(tmp_path, [{"name": "news", "url": local(feed_server, "/feed")}])
    daemon = start_daemon(config)
    wait_for(lambda: feed.requests >= 1, "the first poll")
    config.write_text(DEEP["flow-sequences"], encoding="utf-8")
    wait_for(lambda: "rejected, the running config stays" in daemon.text(), "the rejection")
    assert "nested too deeply" in daemon.text()
    polled = feed.requests
    wait_for(lambda: feed.requests > polled, "the source to be polled again")
    assert daemon.running() and daemon.request("/healthz").status == 200
    code, _ = daemon.stop()
    assert code == 0
