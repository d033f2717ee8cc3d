"""The daemon's small OS-facing parts with the real OS: flock and the systemd socket."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.daemon import InstanceLock, notify, watchdog_interval
from aggregator.errors import StoreError


def test_one_lock_per_database(tmp_path: Path) -> None:
    database = tmp_path / "state" / "agg.db"
    first = InstanceLock(database)
    first.acquire()
    try:
        assert first.path == tmp_path / "state" / "agg.db.lock"
        assert first.path.read_text().strip() == str(os.getpid())
        with pytest.raises(StoreError, match=rf"\(pid {os.getpid()}\) is already running"):
            InstanceLock(database).acquire()
        with InstanceLock(tmp_path / "other.db"):  # another database is another instance
            pass
    finally:
        first.release()
    with InstanceLock(database):  # free again once released
        pass


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    with tempfile.TemporaryDirectory(prefix="agg-") as folder:
        path = os.path.join(folder, "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(2)
            monkeypatch.setenv("NOTIFY_SOCKET", path)
            yield sock


def test_notify_sends_one_datagram(notify_socket: socket.socket) -> None:
    assert notify("READY=1", "STATUS=following 3 sources")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=following 3 sources"


def test_notify_without_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify("READY=1")


def test_notify_to_a_vanished_socket_is_only_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert not notify("READY=1")


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None
