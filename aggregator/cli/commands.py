"""The commands of a day's work: `update`, `run`, `check-config`, `sources`; arguments and
output only, the work is in poll/ and service/."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from click.core import ParameterSource

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
from aggregator.cli.output import echo, one_line
from aggregator.errors import AggregatorError
from aggregator.models import PollResult, PollStatus, SourceStatus
from aggregator.outputs.hooks import (
    HookOutcome,
    HookRun,
    read_state,
    run_hooks_once,
    state_file,
)


@main.command()
@config_option
def update(config_path: Path) -> None:
    """Poll every enabled source once, write documents and the merged feed."""
    config = read_config(config_path)
    enabled = [s for s in config.sources if s.enabled]
    with held_lock(config), open_pipeline(config) as pipeline:
        try:
            if sys.stderr.isatty() and enabled:
                with click.progressbar(
                    length=len(enabled), label="Polling", file=sys.stderr
                ) as bar:
                    results = pipeline.update_all(progress=lambda _: bar.update(1))
            else:
                results = pipeline.update_all()
        except AggregatorError as exc:
            fail(str(exc))
        unwritten, reason = pipeline.store.document_failures()
        # Still under the lock: no other pass or daemon runs a hook over the same site.
        runs = run_hooks_once(config.hooks, config.paths, pipeline.publisher.take_published())
    for result in results:
        echo(summary_line(result))
    failed = sum(1 for r in results if r.status == PollStatus.ERROR)
    new = sum(r.new for r in results)
    changed = sum(r.changed for r in results)
    echo(
        f"{len(results)} sources: {new} new, {changed} changed, {failed} failed; "
        f"documents in {config.paths.documents}, merged feed in {config.paths.public}"
    )
    if unwritten:
        echo(f"{unwritten} documents could not be written (retried next time): {reason}")
    for run in runs:
        echo(hook_line(run))
    hook_failed = any(run.outcome != HookOutcome.OK for run in runs)
    sys.exit(EXIT_SOURCES_FAILED if failed or unwritten or hook_failed else EXIT_OK)


def hook_line(run: HookRun) -> str:
    told = (
        f"{run.written} written, {run.removed} removed, feeds {'changed' if run.feeds else 'same'}"
    )
    text = f"hook {run.hook}: {run.outcome} in {run.duration:.1f} s ({told})"
    if run.outcome != HookOutcome.OK:
        code = f"exit {run.exit_code}" if run.exit_code is not None else "no exit status"
        last = run.output[-1] if run.output else "no output"
        text += f"; {code}: {last}; retried at the next change"
    return text


@main.command()
@config_option
def hooks(config_path: Path) -> None:
    """Show every publish hook and its last run."""
    config = read_config(config_path)
    if not config.hooks:
        echo("no hooks configured (see `hooks:` in the README)")
        return
    state = read_state(state_file(config.paths))
    for hook in config.hooks:
        run = state.runs.get(hook.name)
        pending = " (changes waiting for it)" if state.pending.get(hook.name) else ""
        if run is None:
            echo(f"hook {hook.name}: never ran{pending}")
            continue
        echo(f"{hook_line(run)}, at {run.started}{pending}")
        for line in run.output[-5:]:
            echo(f"    {one_line(line)}")


def summary_line(result: PollResult) -> str:
    if result.status == PollStatus.ERROR:
        return f"{result.source}: error: {result.error}"
    if result.status == PollStatus.NOT_MODIFIED:
        return f"{result.source}: unchanged (not modified)"
    text = f"{result.source}: {result.new} new, {result.changed} changed"
    if result.error:
        text += f" (warning: {result.error})"
    return text


@main.command()
@config_option
@click.option(
    "--log-level",
    "run_log_level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default=None,
    help="Log level of the service [default: info, one line per poll; or the global one].",
)
@click.pass_context
def run(ctx: click.Context, config_path: Path, run_log_level: str | None) -> None:
    """Run as a service: poll each source on its schedule, republish, serve the feeds."""
    parent = ctx.parent
    if run_log_level:
        logging.getLogger().setLevel(run_log_level.upper())
    elif parent is None or parent.get_parameter_source("log_level") is ParameterSource.DEFAULT:
        logging.getLogger().setLevel(logging.INFO)
    config = read_config(config_path)
    try:
        from aggregator.service.daemon import run_daemon  # only `run` needs the service

        code = run_daemon(config)
    except AggregatorError as exc:
        fail(str(exc))
    sys.exit(code)


@main.command("check-config")
@config_option
def check_config(config_path: Path) -> None:
    """Validate the configuration and say what it contains."""
    config = read_config(config_path)
    enabled = sum(1 for s in config.sources if s.enabled)
    echo(
        f"{config.path}: ok, {len(config.sources)} sources ({enabled} enabled); "
        f"database {config.paths.database}, documents {config.paths.documents}, "
        f"merged feed {config.paths.public}"
    )


@main.command()
@config_option
def sources(config_path: Path) -> None:
    """Show every source: url, last fetch, status, entries, errors."""
    config = read_config(config_path)
    with open_pipeline(config) as pipeline:
        states = {state.name: state for state in pipeline.store.source_states()}
    rows = [("NAME", "URL", "LAST FETCH", "STATUS", "ENTRIES", "ERRORS", "LAST ERROR")]
    for source in config.sources:
        state = states.get(source.name)
        if state is None:
            continue
        url = state.current_url or source.url
        if state.current_url and state.current_url != source.url:
            url += " (moved)"
        status = state.status if source.enabled else SourceStatus.DISABLED
        rows.append(
            (
                source.name,
                url,
                _when(state.last_fetch),
                status,
                str(state.entries),
                str(state.consecutive_errors),
                state.error or "",
            )
        )
    rows = [tuple(one_line(cell) for cell in row) for row in rows]  # names, URLs, errors
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        echo("  ".join([*cells, row[-1]]).rstrip())


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
