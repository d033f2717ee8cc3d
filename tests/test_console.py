"""The installed `aggregator` command: it works, and its entry module stays light, because
every spawned parser process runs it again before doing any work."""

from __future__ import annotations

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
    # The package's __init__ and the entry module; not cli, daemon, store, update...
    assert done.stdout.split() == ["['aggregator',", f"'{module}']"]


def test_the_installed_command_runs() -> None:
    script = Path(sys.executable).parent / "aggregator"  # where pip installs it
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "aggregator" in done.stdout
