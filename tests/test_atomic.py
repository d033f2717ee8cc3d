"""The one way files are written: whole or not at all, and nothing left behind on failure."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from aggregator.config.subscriptions import remove_source
from aggregator.outputs import atomic
from aggregator.outputs.atomic import remove_stale_temps, write_atomic


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


def test_a_symlink_planted_at_the_old_predictable_temp_name_is_not_followed(
    tmp_path: Path,
) -> None:
    """The temp name was `.<name>.<pid>.tmp`, opened with O_TRUNC and without O_EXCL: a
    symlink planted there had its target overwritten with the document (issue 13.10)."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / f".feed.xml.{os.getpid()}.tmp").symlink_to(victim)
    assert write_atomic(tmp_path / "feed.xml", b"<rss/>") is True
    assert victim.read_bytes() == b"precious"
    target = tmp_path / "feed.xml"
    assert not target.is_symlink() and target.read_bytes() == b"<rss/>"


def test_a_taken_temp_name_is_never_opened_and_another_is_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever name the random part gives, an existing entry there (a symlink, dangling
    or not, or a file) is left alone: O_EXCL|O_NOFOLLOW, then the next name."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / ".doc.md.aaaa.tmp").symlink_to(victim)
    (tmp_path / ".doc.md.bbbb.tmp").symlink_to(tmp_path / "nowhere")
    (tmp_path / ".doc.md.cccc.tmp").write_bytes(b"someone else's")
    tags = iter(["aaaa", "bbbb", "cccc", "dddd"])
    monkeypatch.setattr(atomic, "temp_tag", lambda: next(tags))
    assert write_atomic(tmp_path / "doc.md", b"new") is True
    assert (tmp_path / "doc.md").read_bytes() == b"new"
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "nowhere").exists()
    assert (tmp_path / ".doc.md.cccc.tmp").read_bytes() == b"someone else's"
    assert sorted(os.listdir(tmp_path)) == [
        ".doc.md.aaaa.tmp", ".doc.md.bbbb.tmp", ".doc.md.cccc.tmp", "doc.md", "victim.txt",
    ]  # fmt: skip


def test_when_every_temp_name_is_taken_the_write_fails_and_removes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".doc.md.same.tmp").symlink_to(tmp_path / "nowhere")
    monkeypatch.setattr(atomic, "temp_tag", lambda: "same")
    with pytest.raises(FileExistsError, match="temp file names beside it were all taken"):
        write_atomic(tmp_path / "doc.md", b"new")
    assert sorted(os.listdir(tmp_path)) == [".doc.md.same.tmp"]
    assert (tmp_path / ".doc.md.same.tmp").is_symlink()


def test_temp_names_are_unpredictable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777) -> int:
        opened.append(os.path.basename(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(atomic.os, "open", spy)
    for number in range(3):
        write_atomic(tmp_path / "doc.md", f"version {number}".encode())
    assert len(set(opened)) == 3
    assert all(re.fullmatch(r"\.doc\.md\.[0-9a-f]{16}\.tmp", name) for name in opened)


def test_a_config_edit_checks_its_new_text_in_a_new_file_not_a_planted_link(
    tmp_path: Path,
) -> None:
    """`add`/`remove` write the new config beside the old to check it first: through a new
    file, so a link planted at the name an earlier release used (`.<name>.check.<pid>.tmp`)
    is never followed."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "sources:\n  - name: a\n    url: http://127.0.0.1:1/a\n"
        "  - name: b\n    url: http://127.0.0.1:1/b\n",
        encoding="utf-8",
    )
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / f".config.yaml.check.{os.getpid()}.tmp").symlink_to(victim)
    remove_source(config, "b")
    assert victim.read_bytes() == b"precious"
    assert "name: b" not in config.read_text(encoding="utf-8")
