"""The installed `aggregator` command: it works, and its entry module stays light, because
every spawned parser process runs it again before doing any work."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path


def test_the_command_points_at_a_module_that_imports_nothing_of_the_program() -> None:
    (command,) = entry_points(group="console_scripts", name="aggregator")
    module = command.value.partition(":")[0]
    probe = (
        f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('aggregator')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # The packages' empty __init__s and the entry module; not the commands, daemon, store...
    loaded = ast.literal_eval(done.stdout)  # a printed list of module names
    packages = [module.rpartition(".")[0]] if "." in module else []
    assert loaded == sorted(["aggregator", *packages, module])


def test_the_installed_command_runs() -> None:
    script = Path(sys.executable).parent / "aggregator"  # where pip installs it
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "aggregator" in done.stdout


def test_every_command_is_found_through_its_module_and_update_imports_no_other() -> None:
    """The group imports a command's module only when the command is named: a command
    missing from `COMMAND_MODULES` would vanish from the CLI, one listed under the wrong
    module would fail when run. What `update` imports before it polls is every pass's start:
    the parser, feed generation, HTML parsing and RE2 are imported where they are used."""
    probe = """
import importlib, json, sys
from aggregator.cli.app import COMMAND_MODULES, main
main.get_command(None, "update")
update_loaded = sorted(m for m in sys.modules if m.startswith("aggregator.cli."))
heavy = ["selectolax", "re2", "lxml", "feedparser", "feedgen", "apscheduler", "readability"]
update_loaded += [m for m in heavy if m in sys.modules]
for module in set(COMMAND_MODULES.values()):
    importlib.import_module(f"aggregator.cli.{module}")
where = {name: command.callback.__module__ for name, command in main.commands.items()}
print(json.dumps([update_loaded, where]))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    update_loaded, where = json.loads(done.stdout)
    from aggregator.cli.app import COMMAND_MODULES

    assert where == {name: f"aggregator.cli.{module}" for name, module in COMMAND_MODULES.items()}
    assert update_loaded == [
        "aggregator.cli.app",
        "aggregator.cli.commands",
        "aggregator.cli.output",
    ]
