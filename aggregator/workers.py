"""Start-up of the parser processes that `update` runs parsing and document writing in.

Kept apart from `update` on purpose: a spawned worker imports the module of its initializer,
and importing only the standard library here keeps each worker ~16 MB smaller than one that
imports the whole pipeline (HTTP, SQLite, feed generation) it never uses.
"""

from __future__ import annotations

import os
import signal
import threading
import time


def start_worker(parent: int) -> None:
    """Leave Ctrl-C to the parent, which shuts the workers down in order, and end when the
    parent is gone (SIGKILL, OOM): nothing else would ever wake an idle worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)
