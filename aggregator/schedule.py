"""When to poll a source next: pure decisions over plain numbers, so they are easy to test.

The rules are those of a polite fetcher that never gives up: wait at least the configured
interval, longer when the server asks (feed `<ttl>`, `Cache-Control: max-age`,
`Retry-After`), back off exponentially on consecutive errors up to a cap, and keep trying at
that cap forever so that a source recovers by itself when its server does.
"""

from __future__ import annotations

import random

BACKOFF_CAP = 24 * 3600
BACKOFF_BASE = 60


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


def jitter(delay: float, fraction: float = 0.1) -> float:
    """Spread polls so that sources added together do not keep firing together."""
    return delay + random.uniform(0, delay * fraction)
