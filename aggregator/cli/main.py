"""The whole command line: the group of `app` with every command module imported, which
registers their commands on it."""

from aggregator.cli import commands, entries, sources  # noqa: F401  (they register commands)
from aggregator.cli.app import main

__all__ = ["main"]
