"""The one way files are written: whole or not at all, and nothing left behind on failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aggregator.atomic import remove_stale_temps, write_atomic


def test_writes_replaces_and_reports_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    assert write_atomic(target, b"one") is True
    assert write_atomic(target, b"one") is False  # same bytes: the file is left alone
    assert write_atomic(target, b"two, longer") is True
    assert target.read_bytes() == b"two, longer"
    assert write_atomic(target, b"two, longer", only_if_changed=False) is True
    assert sorted(os.listdir(tmp_path)) == ["feed.xml"]


def test_a_bare_name_is_written_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert write_atomic(Path("out.opml"), b"<opml/>") is True
    assert sorted(os.listdir(tmp_path)) == ["out.opml"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "doc.md"
    target.write_bytes(b"old")
    (tmp_path / "blocker").mkdir()
    with pytest.raises(OSError):
        write_atomic(tmp_path / "blocker", b"new")  # a folder cannot be replaced by a file
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "doc.md", b"new")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["blocker", "doc.md"]


def test_temps_a_crash_left_are_hidden_and_removed(tmp_path: Path) -> None:
    (tmp_path / ".doc.md.123.tmp").write_bytes(b"half")
    (tmp_path / "doc.md").write_bytes(b"whole")
    assert remove_stale_temps(tmp_path) == 1
    assert sorted(os.listdir(tmp_path)) == ["doc.md"]
