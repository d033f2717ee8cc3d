"""Publish hooks (outputs/hooks.py): real scripts in real processes, told what changed; one
run at a time, bursts coalesced, timeouts kill the whole process group, failures visible and
retried with what they missed; `aggregator update` runs them after its pass."""

# ruff: noqa: E501  (tables of cases read best one a line)

from __future__ import annotations

import os
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from feedworld import rsshub_feed, rsshub_item

from aggregator.config.settings import load_config
from aggregator.errors import ConfigError
from aggregator.models import Hook, HookWhen, Paths, Published
from aggregator.outputs.hooks import HookOutcome, HookRunner, read_state, state_file, wanted

# The hook every test runs: it appends one line per run to a log, with what it was told.
SCRIPT = textwrap.dedent(
    """\
    import os, sys, time
    written = open(os.environ["AGGREGATOR_WRITTEN_LIST"]).read().split()
    removed = open(os.environ["AGGREGATOR_REMOVED_LIST"]).read().split()
    with open(sys.argv[1], "a") as log:
        log.write(" ".join([os.environ["AGGREGATOR_WRITTEN"], os.environ["AGGREGATOR_REMOVED"],
                            os.environ["AGGREGATOR_FEEDS_CHANGED"], os.environ.get("SITE", "-"),
                            ",".join(os.path.basename(p) for p in written),
                            ",".join(os.path.basename(p) for p in removed)]) + "\\n")
    print("generated", len(written), "posts")
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
    sys.exit(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    """
)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    (tmp_path / "docs").mkdir()
    return Paths(
        database=tmp_path / "db.sqlite", documents=tmp_path / "docs", public=tmp_path / "pub"
    )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "hook.py"
    path.write_text(SCRIPT)
    return path


def hook(script: Path, log: Path, *extra: str, **settings: object) -> Hook:
    return Hook(
        name=str(settings.pop("name", "generate")),
        run=(sys.executable, str(script), str(log), *extra),
        **settings,
    )  # type: ignore[arg-type]


def runs_of(log: Path) -> list[list[str]]:
    return [line.split(" ") for line in log.read_text().splitlines()] if log.exists() else []


CHANGES = Published(frozenset({"2026-12-02-a.md", "2026-12-02-b.md"}), frozenset({"old.md"}), True)


def test_a_hook_is_told_what_changed(paths: Paths, script: Path, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    runner = HookRunner([hook(script, log, environment=(("SITE", "blog"),))], paths)
    runner.changed(CHANGES)
    (run,) = runner.run_due()
    assert run.outcome == HookOutcome.OK and run.exit_code == 0
    assert run.output == ("generated 2 posts",)
    assert runs_of(log) == [["2", "1", "1", "blog", "2026-12-02-a.md,2026-12-02-b.md", "old.md"]]
    assert runner.run_due() == []  # nothing new: nothing runs
    kept = read_state(state_file(paths))  # `aggregator hooks` reads this
    assert kept.runs["generate"].output == ("generated 2 posts",) and kept.pending == {}


@pytest.mark.parametrize(
    "when, changes, runs",
    [
        (HookWhen.ANY, Published(feeds=True), True),
        (HookWhen.DOCUMENTS, Published(feeds=True), False),
        (HookWhen.DOCUMENTS, Published(removed=frozenset({"x.md"})), True),
        (HookWhen.FEEDS, Published(written=frozenset({"x.md"})), False),
        (HookWhen.FEEDS, Published(feeds=True), True),
        (HookWhen.ANY, Published(), False),
    ],
    ids=[
        "any-feeds",
        "documents-not-feeds",
        "documents-removed",
        "feeds-not-documents",
        "feeds",
        "nothing",
    ],
)
def test_when(when: HookWhen, changes: Published, runs: bool) -> None:
    assert wanted(Hook("h", ("true",), when=when), changes) is runs


def test_changes_merge_a_document_removed_after_written() -> None:
    first = Published(frozenset({"a.md", "b.md"}))
    merged = first | Published(removed=frozenset({"a.md"})) | Published(feeds=True)
    assert merged == Published(frozenset({"b.md"}), frozenset({"a.md"}), True)


def test_a_burst_of_changes_while_a_hook_runs_is_one_more_run(
    paths: Paths, script: Path, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    runner = HookRunner([hook(script, log, "1.0")], paths)
    runner.start()
    try:
        runner.changed(Published(frozenset({"first.md"})))
        deadline = time.monotonic() + 10
        while runner.running is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.running == "generate"
        for n in range(20):  # twenty polls' publishes while it runs
            runner.changed(Published(frozenset({f"burst-{n}.md"})))
        while (len(runs_of(log)) < 2 or runner.running) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a third run would have started by now
    finally:
        runner.stop()
    runs = runs_of(log)
    assert len(runs) == 2
    assert runs[0][4] == "first.md"
    assert sorted(runs[1][4].split(",")) == sorted(f"burst-{n}.md" for n in range(20))


def test_a_timeout_kills_the_whole_process_group(paths: Paths, tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {child_pid}\necho started\nsleep 60\n")
    script.chmod(0o755)
    runner = HookRunner([Hook("deploy", (str(script),), timeout=1)], paths)
    runner.changed(CHANGES)
    started = time.monotonic()
    (run,) = runner.run_due()
    assert time.monotonic() - started < 10
    assert run.outcome == HookOutcome.TIMEOUT
    assert run.output[0] == "started" and "killed after 1 s" in run.output[-1]
    pid = int(child_pid.read_text())
    for _ in range(50):  # the background child is gone too (reaped by init)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the hook's child survived its timeout")


def test_a_failing_hook_is_visible_keeps_its_changes_and_stops_the_next(
    paths: Paths, script: Path, tmp_path: Path
) -> None:
    log, deploy_log = tmp_path / "generate.log", tmp_path / "deploy.log"
    hooks = [hook(script, log, "0", "3"), hook(script, deploy_log, name="deploy")]
    runner = HookRunner(hooks, paths)
    runner.changed(Published(frozenset({"a.md"})))
    (run,) = runner.run_due()
    assert (run.outcome, run.exit_code, run.output) == (
        HookOutcome.FAILED,
        3,
        ("generated 1 posts",),
    )
    assert runs_of(deploy_log) == []  # no deploy of a site that did not build
    status = {item["name"]: item for item in runner.statuses()}
    assert status["generate"]["last_run"]["outcome"] == "failed" and status["generate"]["pending"]
    # A new process (the next `update`, a restart) still owes it "a.md": told with the next.
    again = HookRunner(hooks, paths)
    assert again.statuses()[0]["pending"] and again.last["generate"].exit_code == 3
    again.changed(Published(frozenset({"b.md"})))
    again.run_due()
    assert [run[4] for run in runs_of(log)] == ["a.md", "a.md,b.md"]


def test_a_command_that_cannot_start(paths: Paths) -> None:
    runner = HookRunner([Hook("missing", ("/nonexistent/hexo", "generate"))], paths)
    runner.changed(CHANGES)
    (run,) = runner.run_due()
    assert run.outcome == HookOutcome.NOT_STARTED
    assert "No such file" in run.output[0]


def test_a_shell_hook(paths: Paths, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    runner = HookRunner([Hook("sh", f'echo "$AGGREGATOR_WRITTEN" > {marker}', shell=True)], paths)
    runner.changed(CHANGES)
    runner.run_due()
    assert marker.read_text() == "2\n"


def write_config(tmp_path: Path, hooks: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sources": [], "hooks": hooks}))
    return path


@pytest.mark.parametrize(
    "hooks, where",
    [
        ("hexo generate", ("hooks", "expected a list of hooks")),
        ([{"cwd": "."}], ("hooks[0].run", "missing")),
        ([{"run": "hexo generate"}], ("hooks[0].run", "a command line runs through a shell only when")),
        ([{"run": []}], ("hooks[0].run", "the command is empty")),
        ([{"run": ["hexo"], "when": "always"}], ("hooks[0].when", "'always' is not one of documents, feeds, any")),
        ([{"run": ["hexo"], "cwd": "no/such/site"}], ("hooks[0].cwd", "no/such/site is not an existing folder")),
        ([{"run": ["hexo"], "timeout": 0}], ("hooks[0].timeout", "")),
        ([{"run": ["hexo"], "env": {"1BAD": "x"}}], ("hooks[0].env", "'1BAD' is not a variable name")),
        ([{"run": ["hexo"]}, {"run": ["hexo"]}], ("hooks[1]", "duplicate hook name 'hexo'")),
        ([{"run": ["hexo"], "shell": "yes"}], ("hooks[0].shell", "expected true or false")),
        ([{"run": ["hexo"], "retries": 3}], ("hooks[0].retries", "unknown key")),
    ],
    ids=["not-a-list", "no-run", "string-without-shell", "empty-argv", "bad-when", "missing-cwd",
         "zero-timeout", "bad-env-name", "duplicate-names", "shell-not-bool", "unknown-key"],
)  # fmt: skip
def test_config_mistakes_are_named(tmp_path: Path, hooks: object, where: tuple[str, str]) -> None:
    """The file, the key (and its line), then what is wrong."""
    key, problem = where
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, hooks))
    assert re.match(
        rf"{re.escape(str(tmp_path / 'config.yaml'))}: {re.escape(key)} \(line \d+\): ",
        str(caught.value),
    )
    assert problem in str(caught.value)


def test_config_of_a_hook(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    config = load_config(
        write_config(
            tmp_path,
            [
                {"run": ["npx", "hexo", "generate"], "cwd": "site", "timeout": "5m", "when": "documents"},
                {"name": "deploy", "run": "git add -A && git commit -qm posts", "shell": True, "env": {"GIT_AUTHOR_NAME": "bot", "QUIET": True}},
            ],
        )
    )  # fmt: skip
    generate, deploy = config.hooks
    assert generate == Hook(
        "npx hexo generate",
        ("npx", "hexo", "generate"),
        tmp_path / "site",
        300.0,
        HookWhen.DOCUMENTS,
    )
    assert deploy.run == "git add -A && git commit -qm posts" and deploy.shell
    assert deploy.environment == (("GIT_AUTHOR_NAME", "bot"), ("QUIET", "true"))


def test_update_runs_the_hooks_after_its_pass(feed_server, tmp_path: Path, script: Path) -> None:
    """The real command: a first pass writes two documents and tells the hook; a pass
    with nothing new runs no hook; a hook that fails is shown and makes the exit status 1."""
    feed_server.serve("/feed", rsshub_feed([rsshub_item(1), rsshub_item(2)]))
    log = tmp_path / "runs.log"
    config = tmp_path / "config.yaml"
    settings = {
        "sources": [{"name": "news", "url": feed_server.url("/feed")}],
        "hooks": [{"name": "generate", "run": [sys.executable, str(script), str(log)]}],
    }
    config.write_text(yaml.safe_dump(settings))
    first = run_cli("update", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert (
        "hook generate: ok in" in first.stdout
        and "(2 written, 0 removed, feeds changed)" in first.stdout
    )
    (run,) = runs_of(log)
    assert run[:3] == ["2", "0", "1"] and len(run[4].split(",")) == 2
    second = run_cli("update", "--config", str(config))
    assert "hook generate" not in second.stdout and len(runs_of(log)) == 1
    shown = run_cli("hooks", "--config", str(config))
    assert "hook generate: ok" in shown.stdout and "generated 2 posts" in shown.stdout
    # Now it fails: visible, exit status 1, retried (with what it missed) at the next change.
    settings["hooks"][0]["run"] += ["0", "7"]  # type: ignore[index]
    config.write_text(yaml.safe_dump(settings))
    feed_server.serve("/feed", rsshub_feed([rsshub_item(1), rsshub_item(2), rsshub_item(3)]))
    failed = run_cli("update", "--config", str(config))
    assert failed.returncode == 1
    assert "hook generate: failed" in failed.stdout and "exit 7" in failed.stdout
    assert "(changes waiting for it)" in run_cli("hooks", "--config", str(config)).stdout
