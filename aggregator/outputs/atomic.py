"""The one way this program writes a file: temp file in the same folder, then `os.replace`.

A reader (Hexo, a feed reader, the HTTP server) therefore sees the old file or the new one,
never half of one, whatever kills the process. Temp names start with a dot so static-site
generators ignore any that a crash leaves behind; `remove_stale_temps` clears them.

A temp file is always a new file: its name carries a random part, and it is opened with
O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink or file planted under any name it could take is
never followed or truncated (another name is tried); only a temp file this call created is
ever removed.
"""

from __future__ import annotations

import errno
import glob
import os
import secrets
from contextlib import suppress
from pathlib import Path

TEMP_SUFFIX = ".tmp"
TEMP_TRIES = 8  # names tried when one is taken (by a planted file, or by chance)
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_atomic(path: Path, data: bytes, *, only_if_changed: bool = True) -> bool:
    """Write `data` to `path` atomically; return False when the file already held it."""
    if only_if_changed:
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
    # os-level calls: a cold pass writes ~50 files a feed, and `open()` adds a buffered
    # writer and two system calls (fstat, ioctl) to each.
    name = os.fspath(path)
    temp = write_temp(name, data)
    try:
        os.replace(temp, name)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return True


def write_temp(name: str, data: bytes) -> str:
    """A new temp file beside `name` holding `data` (created, never opened through a
    planted link); return its path. Removed again if writing fails."""
    temp, handle = _create_temp(name)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view) :]
        finally:
            os.close(handle)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return temp


def _create_temp(name: str) -> tuple[str, int]:
    """A new, empty temp file beside `name`: (its path, a descriptor open for writing)."""
    folder, separator, base = name.rpartition(os.sep)  # a bare name stays in this folder
    for _ in range(TEMP_TRIES):
        temp = f"{folder}{separator}.{base}.{temp_tag()}{TEMP_SUFFIX}"
        try:
            return temp, os.open(temp, TEMP_FLAGS, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(
        errno.EEXIST, f"{TEMP_TRIES} temp file names beside it were all taken", name
    )


def temp_tag() -> str:
    """The random part of a temp file's name (not guessable, so nothing can wait there)."""
    return secrets.token_hex(8)


def remove_stale_temps(folder: Path, prefix: str = "") -> int:
    """Delete the temp files an interrupted run left in `folder` (of the files whose names
    start with `prefix`: in a folder this program shares); return how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    for candidate in folder.glob(f".{glob.escape(prefix)}*{TEMP_SUFFIX}"):
        candidate.unlink(missing_ok=True)
        removed += 1
    return removed
