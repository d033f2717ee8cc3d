"""The `aggregator` command group and what its commands share: the config option, exit codes,
logging, reading the config, the pipeline and the instance lock.

Exit codes: 0 all well, 1 some sources failed, 2 bad config (or unusable database/output).
Commands live in `commands`, `entries` and `sources`, each importing this module and none
another; the group imports a command's module (which registers it) when the command is named
or the commands are listed (`COMMAND_MODULES`).
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from aggregator import __version__
from aggregator.cli.output import CleanFormatter, echo
from aggregator.config.settings import Config, load_config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.outputs.publisher import remove_interrupted_writes
from aggregator.poll.pipeline import Pipeline
from aggregator.service.instance_lock import InstanceLock
from aggregator.store.database import Store

EXIT_OK, EXIT_SOURCES_FAILED, EXIT_CONFIG = 0, 1, 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger(__name__)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("config.yaml"),
    show_default=True,
    help="The configuration file.",
)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CleanFormatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # urllib3 warns, with a traceback quoting the whole header block twice, of headers it
    # cannot parse: a server sending 97 lines of 64 KB without a colon made 12.6 MB of log
    # a poll. What a fetch meets is said once, on its source.
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def fail(message: str, code: int = EXIT_CONFIG) -> None:
    echo(f"aggregator: {message}", err=True)
    sys.exit(code)


def read_config(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))
        raise  # unreachable; keeps type checkers content


@contextmanager
def open_pipeline(config: Config) -> Iterator[Pipeline]:
    try:
        store = Store(config.paths.database)
    except AggregatorError as exc:
        fail(str(exc))
    pipeline = Pipeline(config, store)
    try:
        yield pipeline
    finally:
        pipeline.close()
        store.close()


@contextmanager
def held_lock(config: Config) -> Iterator[None]:
    """The database's one-instance lock (the one `run` holds), or exit 2 saying who has it."""
    lock = InstanceLock(config.paths.database)
    try:
        lock.acquire()
    except AggregatorError as exc:
        fail(str(exc))
    try:
        if lock.interrupted:  # the daemon sweeps at every start
            removed = remove_interrupted_writes(config.paths)
            log.info("the last run was interrupted: stale temp files removed=%d", removed)
        yield
    finally:
        lock.release()


# The module that defines each command, imported only when the command is run or listed:
# `update` then never imports what `add` and `import-opml` need (the config editor, OPML,
# lxml), ~20 ms of every pass's start.
COMMAND_MODULES = {
    **dict.fromkeys(["update", "run", "hooks", "check-config", "sources"], "commands"),
    **dict.fromkeys(["search", "render"], "entries"),
    **dict.fromkeys(["add", "remove", "import-opml", "export-opml"], "sources"),
}


class _LazyCommands(click.Group):
    """A group whose commands are registered by their module when it is first imported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"aggregator.cli.{COMMAND_MODULES[cmd_name]}")
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aggregator")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    show_default=True,
)
def main(log_level: str) -> None:
    """Follow RSS/Atom sources, write documents for a static site, republish one merged feed."""
    setup_logging(log_level)
