"""Config files a mistake or an attacker could write, through the real command line and a
running daemon: each is one line and exit code 2, never a traceback or a crash (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

SOURCE = "sources:\n  - {name: news, url: 'http://127.0.0.1:9/feed'}\n"


def check_refused(config: Path, expected: str) -> None:
    for command in ("check-config", "update"):
        result = run_cli(command, "--config", str(config))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"aggregator: {config}: {expected}"), result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sources:\n  - {name: a, url: 'http://127.0.0.1:9/f', interval: 999999999999d}\n",
            "sources[0].interval (line 2): '999999999999d' is not between 1s and 30d",
        ),
        ("timeout: {read: 1e400}\n" + SOURCE, "timeout.read (line 1): inf is not a duration"),
        (
            "feed: {max_items: 99999999999999999999}\n" + SOURCE,
            "feed.max_items (line 1): 99999999999999999999 is more than 100,000",
        ),
        ('feed: {title: "T\\0"}\n' + SOURCE, "feed.title (line 1): 'T\\x00' holds a control"),
        ("database: /\n" + SOURCE, "database (line 1): / is a folder"),
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
