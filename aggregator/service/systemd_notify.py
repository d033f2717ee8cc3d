"""sd_notify for `aggregator run` under systemd (Type=notify, WatchdogSec=): READY, STOPPING,
RELOADING and WATCHDOG messages, without depending on libsystemd or python-systemd."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*messages: str) -> bool:
    """Send sd_notify messages (READY=1, STOPPING=1, WATCHDOG=1, ...) when run by systemd.

    A datagram to $NOTIFY_SOCKET is the whole protocol; without the variable this does
    nothing, so the same code runs under systemd, in a container or in a terminal.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract socket namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(messages).encode())
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", os.environ["NOTIFY_SOCKET"], exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when not asked."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6 / 2
