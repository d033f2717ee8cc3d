"""The one way this program writes a file: temp file in the same folder, then `os.replace`.

A reader (Hexo, a feed reader, the HTTP server) therefore sees the old file or the new one,
never half of one, whatever kills the process. Temp names start with a dot so static-site
generators ignore any that a crash leaves behind; `remove_stale_temps` clears them.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

TEMP_SUFFIX = ".tmp"


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
    folder, separator, base = name.rpartition(os.sep)  # a bare name stays in this folder
    temp = f"{folder}{separator}.{base}.{os.getpid()}{TEMP_SUFFIX}"
    try:
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view) :]
        finally:
            os.close(handle)
        os.replace(temp, name)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return True


def remove_stale_temps(folder: Path) -> int:
    """Delete temp files an interrupted run left in `folder`; return how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    for candidate in folder.glob(f".*{TEMP_SUFFIX}"):
        candidate.unlink(missing_ok=True)
        removed += 1
    return removed
