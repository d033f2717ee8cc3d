"""When to poll a source next: pure decisions over plain numbers, so they are easy to test.

The rules are those of a polite fetcher that never gives up: wait at least the configured
interval, longer when the server asks (feed `<ttl>`, `Cache-Control: max-age`,
`Retry-After`), back off exponentially on consecutive errors up to a cap, and keep trying at
that cap forever so that a source recovers by itself when its server does.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.models import Source

BACKOFF_CAP = 24 * 3600
BACKOFF_BASE = 60
STARTUP_DELAY = 1.0  # seconds: "shortly after start", once the server is up
STARTUP_SPREAD = 30.0  # at most this many seconds of jitter over the first polls
STARTUP_PACE = 0.5  # seconds of spread per source starting together (about 2 polls a second)


def next_delay(
    interval: int,
    *,
    max_interval: int = 86400,
    ttl: int | None = None,
    max_age: int | None = None,
    retry_after: int | None = None,
    consecutive_errors: int = 0,
) -> int:
    """Seconds until the next poll of one source."""
    if consecutive_errors > 0:
        # 1, 2, 4, ... minutes, but never more often than the normal interval.
        backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(consecutive_errors - 1, 20))
        delay = max(interval, backoff)
    else:
        hints = [value for value in (ttl, max_age) if value]
        delay = min(max([interval, *hints]), max(interval, max_interval))
    if retry_after:
        delay = max(delay, min(retry_after, BACKOFF_CAP))
    return int(delay)


def first_poll_delay(
    now: datetime,
    next_poll: datetime | None,
    interval: int,
    *,
    gone: bool = False,
    url_changed: bool = False,
    starting: int = 1,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until a source's first poll after a start or a reload; None: do not poll.

    A stored time still ahead is kept (it may carry a backoff or a Retry-After). A source
    that is due, new, or whose URL changed is polled shortly: at random within a spread that
    grows with the number of sources `starting` together (STARTUP_PACE each), bounded by a
    tenth of its interval and by STARTUP_SPREAD, so that a restart does not fire every
    source at once while one new source is polled at once. A source that answered 410 Gone
    stays stopped until its configured URL changes.
    """
    if gone and not url_changed:
        return None
    if url_changed or next_poll is None or next_poll <= now:
        spread = min(STARTUP_SPREAD, interval / 10, STARTUP_PACE * max(1, starting))
        return STARTUP_DELAY + (rng or random).uniform(0, spread)
    # A time beyond the backoff cap can only come from a clock that jumped back.
    return min((next_poll - now).total_seconds(), float(BACKOFF_CAP))


def retimed_next_poll(
    last_fetch: datetime | None,
    stored_next_poll: datetime | None,
    interval: int,
    *,
    max_interval: int = 86400,
    ttl: int | None = None,
    consecutive_errors: int = 0,
) -> datetime | None:
    """When a source whose configured interval changed is due.

    A healthy source is due one new interval (or its feed's ttl) after its last fetch; a
    failing one keeps its stored time, since that carries its backoff and any Retry-After.
    """
    if consecutive_errors or last_fetch is None:
        return stored_next_poll
    return last_fetch + timedelta(seconds=next_delay(interval, max_interval=max_interval, ttl=ttl))


@dataclass(frozen=True)
class ReloadPlan:
    """What a new configuration changes for the scheduler, by source name."""

    start: tuple[str, ...] = ()  # new, or newly enabled
    stop: tuple[str, ...] = ()  # removed, or disabled
    moved: tuple[str, ...] = ()  # configured URL changed: poll the new one soon
    retimed: tuple[str, ...] = ()  # interval changed

    @property
    def empty(self) -> bool:
        return not (self.start or self.stop or self.moved or self.retimed)


def plan_reload(old: Mapping[str, Source], new: Mapping[str, Source]) -> ReloadPlan:
    """Compare two configurations' sources; only enabled sources are scheduled."""
    before = {name for name, source in old.items() if source.enabled}
    after = {name for name, source in new.items() if source.enabled}
    kept = sorted(before & after)
    return ReloadPlan(
        start=tuple(sorted(after - before)),
        stop=tuple(sorted(before - after)),
        moved=tuple(name for name in kept if old[name].url != new[name].url),
        retimed=tuple(
            name
            for name in kept
            if old[name].url == new[name].url and old[name].interval != new[name].interval
        ),
    )
