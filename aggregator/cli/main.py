"""The whole command line: the group of `app`, whose commands are imported from their
modules when named (`app.COMMAND_MODULES`)."""

from aggregator.cli.app import main

__all__ = ["main"]
