"""The systemd units in systemd/: what they promise, and `systemd-analyze verify` where the
machine has systemd (the daemon's own sd_notify is tested in tests/e2e/test_daemon.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.config.settings import load_config

UNITS = Path(__file__).parent.parent / "systemd"
INSTALLED = "/opt/aggregator/bin/aggregator"


def settings(unit: str) -> dict[str, list[str]]:
    """key -> every value it is given (systemd allows a key more than once)."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_service_is_a_notify_service_that_reloads_and_is_sandboxed() -> None:
    unit = settings("aggregator.service")
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == [f"{INSTALLED} run --config %E/aggregator/config.yaml"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Restart"] == ["on-failure"]
    assert "WatchdogSec" in unit
    for key, value in {
        "DynamicUser": "yes",
        "StateDirectory": "aggregator",
        "ConfigurationDirectory": "aggregator",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet": "",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
    }.items():
        assert unit[key] == [value], key
    assert "@system-service" in unit["SystemCallFilter"]


def test_the_service_is_bounded() -> None:
    """Open files for the HTTP server's connections and the daemon's own work (server.py
    caps connections under half of it), and a ceiling on threads and memory."""
    unit = settings("aggregator.service")
    assert int(unit["LimitNOFILE"][0]) >= 4096
    assert 64 <= int(unit["TasksMax"][0]) <= 4096
    assert unit["MemoryMax"] == ["1G"]


def test_the_timer_variant_runs_update_as_the_same_user() -> None:
    service, daemon = settings("aggregator-update.service"), settings("aggregator.service")
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"] == [f"{INSTALLED} update --config %E/aggregator/config.yaml"]
    assert service["User"] == daemon["User"]
    assert service["StateDirectory"] == daemon["StateDirectory"]
    assert "OnCalendar" in settings("aggregator-update.timer")


def test_the_example_config_keeps_every_path_in_the_state_folder() -> None:
    config = load_config(UNITS / "config.example.yaml")
    for path in (config.paths.database, config.paths.documents, config.paths.public):
        assert path.is_relative_to("/var/lib/aggregator")


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart exists, so point it at this environment's command.
    command = Path(sys.executable).with_name("aggregator")
    if not command.exists():
        pytest.skip(f"{command} is not installed (pip install -e .)")
    for name in ("aggregator.service", "aggregator-update.service", "aggregator-update.timer"):
        text = (UNITS / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(INSTALLED, str(command)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "aggregator" not in result.stderr, result.stderr


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_systemd_analyze_security_rates_the_service_at_most_1_5(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("aggregator")
    if not command.exists():
        pytest.skip(f"{command} is not installed (pip install -e .)")
    unit = tmp_path / "aggregator.service"
    text = (UNITS / unit.name).read_text(encoding="utf-8")
    unit.write_text(text.replace(INSTALLED, str(command)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in result.stderr or "Unknown command" in result.stderr:
        pytest.skip(f"this systemd-analyze cannot rate a unit file: {result.stderr.strip()}")
    found = re.search(r"Overall exposure level for aggregator.service: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) <= 1.5, result.stdout
