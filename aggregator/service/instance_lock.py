"""One process per database: `aggregator run` and `aggregator update` (and `render`) each
hold an exclusive lock on `<database>.lock`, so two never poll and write the same outputs
at once."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from aggregator.errors import StoreError


class InstanceLock:
    """An exclusive flock on `<database>.lock`, held for the life of `run` or `update`.

    The kernel releases it however the process ends, so there is never a stale lock to
    clean up by hand. The file stays after release: deleting it would race with the next
    process taking it.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None
        # Whether the last holder ended without releasing the lock (SIGKILL, power loss):
        # its pid is still in the file, which a release empties. Its writes may have left
        # temp files behind.
        self.interrupted = False

    def acquire(self) -> None:
        """Take the lock or raise StoreError naming the process that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the lock file ({exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise StoreError(
                f"another aggregator{who} is already running on {self.database}; "
                f"stop it first (lock file {self.path})"
            ) from None
        self.interrupted = bool(os.pread(fd, 32, 0).strip())
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # a full disk: the next start sweeps for nothing
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
