"""The installed `aggregator` command: it works, and its entry module stays light, because
every spawned parser process runs it again before doing any work."""

from __future__ import annotations

import ast
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
