"""What the CLI prints is text, never a terminal command (issue 13.11)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import run_cli

from aggregator.cli.output import CleanFormatter, clean_text, one_line
from aggregator.store.database import Store


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("半岛电视台 - 新闻 | Al Jazeera", "半岛电视台 - 新闻 | Al Jazeera"),
        ("line one\n\tline two", "line one\n\tline two"),
        ("\x1b[31mred\x1b[0m text", "red text"),
        ("\x1b[2J\x1b[Hcleared", "cleared"),
        ("\x1b]0;new window title\x07Title", "Title"),
        ("\x1b]0;new window title\x1b\\Title", "Title"),
        ("\x1b]52;c;ZXZpbA==\x07copy", "copy"),
        ("\x1b]8;;http://evil.test/\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1bPdevice\x1b\\control", "control"),
        ("\x9b31mC1 CSI", "C1 CSI"),
        ("\x9d0;title\x9cC1 OSC", "C1 OSC"),
        ("\x1b]0;unterminated\nnext line", "\nnext line"),
        ("\x1bcreset", "reset"),
        ("ok\rERROR", "okERROR"),
        ("nul\x00 del\x7f bell\x07 nel\x85", "nul del bell nel"),
        ("invoice\u202efdp.exe\u202c", "invoicefdp.exe"),
        ("\u2066isolate\u2069 and \u2067rtl\u2069", "isolate and rtl"),
        ("عربي \u200fمع علامة", "عربي \u200fمع علامة"),
        ("no\u00a0break", "no\u00a0break"),
    ],
    ids=["chinese", "tab-newline", "colour", "clear-screen", "osc-bel", "osc-st",
         "clipboard", "hyperlink", "dcs", "c1-csi", "c1-osc", "osc-to-line-end", "reset",
         "carriage-return", "c0-del-c1", "bidi-override", "bidi-isolates", "rtl-mark",
         "no-break-space"],
)  # fmt: skip
def test_clean_text(text: str, shown: str) -> None:
    assert clean_text(text) == shown


def test_one_line_and_log_lines() -> None:
    assert one_line("HTTP 500\nfake: line\tand\x1b[8mhidden") == "HTTP 500 fake: line andhidden"
    record = logging.LogRecord(
        "aggregator.poll.poller", logging.WARNING, __file__, 1, "source=%s error=%s",
        ("news", "bad \x1b]0;title\x07answer"), None,
    )  # fmt: skip
    assert CleanFormatter("%(levelname)s %(message)s").format(record) == (
        "WARNING source=news error=bad answer"
    )


def test_sources_prints_stored_errors_as_text(tmp_path: Path) -> None:
    """`aggregator sources` shows names, URLs and the last error from the database."""
    config = tmp_path / "config.yaml"
    config.write_text("sources:\n  - {name: news, url: 'http://127.0.0.1:9/feed'}\n")
    store = Store(tmp_path / "aggregator.db")
    try:
        store.sync_sources([("news", "http://127.0.0.1:9/feed")])
        state = store.source_state("news")
        assert state is not None
        store.save_state(
            replace(state, status="error", error="HTTP 502 \x1b]0;owned\x07Bad\nGateway\x1b[2J")
        )
    finally:
        store.close()
    result = run_cli("sources", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    (row,) = result.stdout.splitlines()[1:]
    assert row.startswith("news ") and row.endswith("HTTP 502 Bad Gateway")
