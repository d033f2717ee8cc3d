"""The `search` and `render` commands: stored entries, looked up or written out again.

Importing this module (`cli.main` does) registers the commands on the `aggregator` group.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aggregator.cli.app import (
    EXIT_OK,
    EXIT_SOURCES_FAILED,
    config_option,
    fail,
    held_lock,
    main,
    open_pipeline,
    read_config,
)
from aggregator.cli.output import echo
from aggregator.errors import AggregatorError


@main.command()
@config_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.argument("text", nargs=-1, required=True)
def search(config_path: Path, limit: int, text: tuple[str, ...]) -> None:
    """Find stored entries whose title or text contains every word of TEXT, newest first.

    Words are matched anywhere, inside Chinese text too; case does not matter for Latin
    letters. Exit code 1 when nothing matches."""
    config = read_config(config_path)
    with open_pipeline(config) as pipeline:
        found = pipeline.store.search_entries(" ".join(text), limit=limit)
    if not found:
        echo(f"no entries match {' '.join(text)!r}")
        sys.exit(EXIT_SOURCES_FAILED)
    for stored in found:
        entry = stored.entry
        echo(f"{stored.date:%Y-%m-%d %H:%M}  {entry.source}  {entry.title}")
        echo(f"    {entry.link or '(no link)'}  {config.paths.documents / stored.document}")
    sys.exit(EXIT_OK)


@main.command()
@config_option
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Rewrite every document from the database (after changing documents_format).",
)
def render(config_path: Path, everything: bool) -> None:
    """Write documents from the database without fetching anything.

    By default only documents still pending (stored but never written, e.g. after a crash);
    with --all every document, in the configured documents_format."""
    config = read_config(config_path)
    # Not while `run` writes the same documents: the instance lock says who holds them.
    with held_lock(config), open_pipeline(config) as pipeline:
        try:
            count = (
                pipeline.publisher.render_all()
                if everything
                else pipeline.publisher.write_documents()
            )
        except AggregatorError as exc:
            fail(str(exc))
    what = "documents" if everything else "pending documents"
    echo(f"{count} {what} written ({config.documents_format} format) in {config.paths.documents}")
