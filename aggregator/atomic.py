"""The one way this program writes a file: temp file in the same folder, then `os.replace`.

A reader (Hexo, a feed reader, the HTTP server) therefore sees the old file or the new one,
never half of one, whatever kills the process. Temp names start with a dot so static-site
generators ignore any that a crash leaves behind; `remove_stale_temps` clears them.
"""

from __future__ import annotations

import os
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
    temp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
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
