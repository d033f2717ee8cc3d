"""The commands that change what is followed: `add`, `remove`, `import-opml`, `export-opml`.

Each says exactly what it changed in config.yaml; the file keeps its comments and order.
Importing this module (`cli.main` does) registers the commands on `aggregator`.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from aggregator.cli.app import (
    EXIT_CONFIG,
    EXIT_SOURCES_FAILED,
    config_option,
    fail,
    held_lock,
    main,
    open_pipeline,
    read_config,
)
from aggregator.cli.output import echo
from aggregator.config.subscriptions import (
    NewSource,
    add_sources,
    feed_key,
    is_valid_name,
    plan_import,
    remove_source,
    source_name,
)
from aggregator.errors import AggregatorError, ConfigError, FetchError, ParseError
from aggregator.outputs.atomic import write_atomic
from aggregator.sources.fetch import fetch_limits, make_session
from aggregator.sources.opml import parse_opml, render_opml
from aggregator.store.database import Store


@main.command()
@config_option
@click.option("--name", help="Name in config.yaml [default: from the feed's title].")
@click.option("--title", help="Title shown for the source [default: the feed's own].")
@click.option(
    "--categories",
    default="",
    help="Comma-separated categories, e.g. 'Tech,Python'.",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Let this source reach loopback, private and link-local addresses, whatever address "
    "URL is on (writes allow_private: true).",
)
@click.argument("url")
def add(
    config_path: Path,
    name: str | None,
    title: str | None,
    categories: str,
    allow_private: bool,
    url: str,
):
    """Follow URL: a feed, or a web page whose feed is found for you.

    The feed is fetched once and must parse before config.yaml is changed."""
    config = read_config(config_path)
    url = re.sub(r"^[A-Za-z]+(?=://)", lambda scheme: scheme.group(0).lower(), url.strip())
    if not url.startswith(("http://", "https://")):
        fail(f"{url!r} is not an http:// or https:// URL")
    if name is not None and not is_valid_name(name):
        fail(f"--name {name!r} must be lowercase letters, digits, - or _ (it is used in names)")
    # Imported here: it brings the feed parser, which no other command runs in this process.
    from aggregator.sources.discover import discover_feed

    limits = fetch_limits(config)
    session = make_session(limits, pool_size=2)
    try:
        found = discover_feed(
            session, url, limits, allow_private=allow_private or config.allow_private
        )
    except (FetchError, ParseError) as exc:
        fail(str(exc), EXIT_SOURCES_FAILED)
    finally:
        session.close()
    if found.page:
        echo(f"{found.page} is a web page.")
        if found.advertised:
            echo(f"It advertises {len(found.advertised)} feed(s):")
            for link in found.advertised:
                label = f"  ({link.title})" if link.title else ""
                echo(f"  {link.url}  {link.media_type}{label}")
        for candidate, why in found.tried:
            echo(f"  not {candidate}: {why}")
    feed = found.feed
    newest = feed.entries[0].title if feed.entries else "(no entries yet)"
    echo(
        f"Feed {found.url}: {feed.title or '(untitled)'}, {len(feed.entries)} entries; "
        f"first: {newest}"
    )
    for source in config.sources:
        if feed_key(source.url) == feed_key(found.url):
            fail(f"{found.url} is already followed as {source.name}", EXIT_SOURCES_FAILED)
    taken = {source.name for source in config.sources}
    if name in taken:
        fail(f"a source named {name!r} already exists; choose another --name")
    chosen = name or source_name(title or feed.title, found.url, taken)
    cats = tuple(part.strip() for part in categories.split(",") if part.strip())
    new = NewSource(chosen, found.url, title or feed.title, cats, allow_private)
    try:
        add_sources(config.path, [new])
    except AggregatorError as exc:
        fail(str(exc))
    extra = f", categories {', '.join(cats)}" if cats else ""
    echo(f"Added source {chosen!r} ({found.url}{extra}) to {config.path}")


@main.command()
@config_option
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete its stored entries and their documents, and republish the feeds.",
)
@click.argument("name")
def remove(config_path: Path, purge: bool, name: str) -> None:
    """Stop following the source NAME; its entries stay unless --purge.

    (To pause a source instead, set `enabled: false` on it in config.yaml.)"""
    config = read_config(config_path)
    configured = any(source.name == name for source in config.sources)
    if configured:
        try:
            config = remove_source(config.path, name)
        except ConfigError as exc:
            fail(str(exc))
        echo(f"Removed source {name!r} from {config.path}")
    elif not purge:
        fail(f"no source named {name!r} in {config.path}")
    if not purge:
        echo("Its stored entries and documents are kept (use --purge to delete them).")
        return
    if not config.paths.database.exists():
        echo("No database yet: nothing stored to purge.")
        return
    with held_lock(config), open_pipeline(config) as pipeline:
        try:
            documents = pipeline.store.delete_source(name)
            removed, failed = pipeline.publisher.remove_orphans()
            pipeline.publisher.write_documents()  # another source's copy of an article it carried
            pipeline.publisher.publish()
        except AggregatorError as exc:
            fail(str(exc))
    if not configured and not documents:
        fail(f"no source named {name!r} in {config.path} or in the database")
    echo(
        f"Purged {name!r}: {len(documents)} entries deleted, {removed} documents removed; "
        f"feeds republished in {config.paths.public}"
    )
    for _, error in failed:
        echo(f"warning: {error}")


@main.command("import-opml")
@config_option
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.argument("file", type=click.File("rb"))
def import_opml(config_path: Path, dry_run: bool, file) -> None:
    """Follow every feed of an OPML FILE exported by a feed reader ('-' reads stdin).

    Folders become categories; feeds already followed (same URL) are skipped."""
    config = read_config(config_path)
    try:
        subscriptions = parse_opml(file.read())
    except AggregatorError as exc:
        fail(f"{file.name}: {exc}")
    added, skipped = plan_import(subscriptions, config.sources)
    for item in added:
        cats = f"  [{', '.join(item.categories)}]" if item.categories else ""
        echo(f"add   {item.name}  {item.url}{cats}")
    for item in skipped:
        echo(f"skip  {item.url}  ({item.reason})")
    if added and not dry_run:
        try:
            add_sources(config.path, added)
        except AggregatorError as exc:
            fail(str(exc))
    if dry_run:
        outcome = "dry run, config not changed"
    elif added:
        outcome = f"{config.path} updated"
    else:
        outcome = f"{config.path} unchanged"
    echo(f"{len(added)} added, {len(skipped)} skipped; {outcome}")


@main.command("export-opml")
@config_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
def export_opml(config_path: Path, output: Path | None) -> None:
    """Write the configured sources as OPML 2.0, for any feed reader to import."""
    config = read_config(config_path)
    html_urls: dict[str, str] = {}
    if config.paths.database.exists():
        try:
            store = Store(config.paths.database)
        except AggregatorError as exc:
            fail(str(exc))
        try:
            html_urls = {s.name: s.link for s in store.source_states() if s.link}
        finally:
            store.close()
    data = render_opml(config.feed.title, config.sources, html_urls, datetime.now(UTC))
    if output is None:
        sys.stdout.buffer.write(data)
        return
    try:
        write_atomic(output, data, only_if_changed=False)
    except OSError as exc:
        fail(f"cannot write {output}: {exc}", EXIT_CONFIG)
    echo(f"{len(config.sources)} sources written to {output}")
