"""The `aggregator` command's entry point, kept apart from `cli` on purpose.

Parser processes are spawned, and a spawned process first runs its parent's main module
again: for the installed `aggregator` script, a file whose only import is this module. Were
it `aggregator.cli.main`, as before, every parser process would import the whole program (the
scheduler, the HTTP server, the store: ~40 MB each) and use none of it.
"""

from __future__ import annotations

import gc


def main() -> None:
    # What imports make (modules, classes, functions) lives as long as the process: the
    # cyclic collector, scanning it ~130 times as it grew, found nothing to free and took
    # ~0.016 s of every command's start.
    gc.disable()
    try:
        from aggregator.cli.main import main as cli_main
    finally:
        gc.enable()
    try:
        cli_main()
    finally:
        # The process ends here. The interpreter's last full collection would scan every
        # object only to free memory the system takes back anyway (~0.045 s of each
        # command); what it leaves holds no open file or database (those are closed by
        # then, and objects outside cycles are still freed one by one).
        gc.freeze()
