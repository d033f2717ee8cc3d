"""The scheduling decisions, as pure functions over plain values: no clock, no server."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.models import Source
from aggregator.poll.schedule import (
    BACKOFF_CAP,
    STARTUP_DELAY,
    STARTUP_PACE,
    STARTUP_SPREAD,
    ReloadPlan,
    first_poll_delay,
    next_delay,
    plan_reload,
    retimed_next_poll,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


# -- next_delay -----------------------------------------------------------------------------


DAY = 86400
NEXT_DELAY = [  # (id, interval, keyword arguments, seconds until the next poll)
    ("interval only", 1800, {}, 1800),
    ("ttl longer", 1800, {"ttl": 3600}, 3600),
    ("max-age longer", 1800, {"max_age": 7200}, 7200),
    ("longest hint wins", 1800, {"ttl": 3600, "max_age": 7200}, 7200),
    ("shorter hints never poll more often", 1800, {"ttl": 60, "max_age": 120}, 1800),
    ("max-age 0 is no hint", 1800, {"max_age": 0}, 1800),
    ("max_interval caps ttl", 1800, {"ttl": 10 * DAY, "max_interval": DAY}, DAY),
    ("max_interval caps max-age", 1800, {"max_age": 3 * DAY, "max_interval": 7200}, 7200),
    ("interval above max_interval kept", 2 * DAY, {"ttl": 3 * DAY, "max_interval": DAY}, 2 * DAY),
    ("Retry-After beyond interval", 1800, {"retry_after": 5000}, 5000),
    ("Retry-After within interval", 1800, {"retry_after": 60}, 1800),
    ("Retry-After beyond max_interval", 1800, {"retry_after": 7200, "max_interval": 3600}, 7200),
    ("Retry-After capped", 60, {"retry_after": 10 * DAY}, BACKOFF_CAP),
    ("backoff 1st error", 60, {"consecutive_errors": 1}, 60),
    ("backoff 2nd error", 60, {"consecutive_errors": 2}, 120),
    ("backoff 3rd error", 60, {"consecutive_errors": 3}, 240),
    ("backoff 10th error", 60, {"consecutive_errors": 10}, 60 * 2**9),
    ("backoff 11th error", 60, {"consecutive_errors": 11}, 60 * 2**10),
    ("backoff 12th error: cap", 60, {"consecutive_errors": 12}, BACKOFF_CAP),
    ("backoff cap forever, no overflow", 60, {"consecutive_errors": 10_000}, BACKOFF_CAP),
    ("backoff never below interval", 3600, {"consecutive_errors": 1}, 3600),
    ("hints ignored while failing", 60, {"consecutive_errors": 1, "ttl": 3600}, 60),
    ("Retry-After beyond backoff", 60, {"consecutive_errors": 3, "retry_after": 5000}, 5000),
    ("Retry-After within backoff", 60, {"consecutive_errors": 3, "retry_after": 100}, 240),
    (
        "Retry-After capped while failing",
        60,
        {"consecutive_errors": 3, "retry_after": 10 * DAY},
        BACKOFF_CAP,
    ),
]


@pytest.mark.parametrize(
    ("interval", "hints", "expected"),
    [case[1:] for case in NEXT_DELAY],
    ids=[case[0] for case in NEXT_DELAY],
)
def test_next_delay(interval: int, hints: dict[str, int], expected: int) -> None:
    assert next_delay(interval, **hints) == expected


def test_backoff_only_grows() -> None:
    delays = [next_delay(60, consecutive_errors=n) for n in range(1, 30)]
    assert delays == sorted(delays)


# -- first_poll_delay ---------------------------------------------------------------------


@pytest.mark.parametrize("next_poll", [None, NOW - timedelta(hours=5), NOW])
def test_a_due_or_new_source_is_polled_shortly_after_start(next_poll: datetime | None) -> None:
    delay = first_poll_delay(NOW, next_poll, 1800, starting=500, rng=random.Random(1))
    assert delay is not None
    assert STARTUP_DELAY <= delay <= STARTUP_DELAY + STARTUP_SPREAD


def test_first_polls_are_spread_so_sources_do_not_fire_together() -> None:
    rng = random.Random(7)
    delays = [first_poll_delay(NOW, None, 1800, starting=100, rng=rng) for _ in range(100)]
    assert len({round(d or 0, 3) for d in delays}) > 90
    assert max(d or 0 for d in delays) - min(d or 0 for d in delays) > STARTUP_SPREAD / 2
    assert max(d or 0 for d in delays) <= STARTUP_DELAY + STARTUP_SPREAD


def test_the_spread_grows_with_the_number_of_sources_starting() -> None:
    """One new source is polled at once; ten are spread over a few seconds."""
    alone = [first_poll_delay(NOW, None, 1800, starting=1) for _ in range(50)]
    assert all(d is not None and d <= STARTUP_DELAY + STARTUP_PACE for d in alone)
    ten = [first_poll_delay(NOW, None, 1800, starting=10) for _ in range(50)]
    assert all(d is not None and d <= STARTUP_DELAY + 10 * STARTUP_PACE for d in ten)


def test_the_spread_is_small_for_short_intervals() -> None:
    delays = [first_poll_delay(NOW, None, 2) for _ in range(50)]
    assert all(d is not None and STARTUP_DELAY <= d <= STARTUP_DELAY + 0.2 for d in delays)


def test_a_stored_time_ahead_is_kept() -> None:
    assert first_poll_delay(NOW, NOW + timedelta(minutes=7), 1800) == 420.0


def test_a_stored_time_from_a_clock_gone_wrong_is_capped() -> None:
    assert first_poll_delay(NOW, NOW + timedelta(days=400), 1800) == BACKOFF_CAP


def test_a_gone_source_stays_stopped_until_its_url_changes() -> None:
    assert first_poll_delay(NOW, None, 1800, gone=True) is None
    moved = first_poll_delay(NOW, None, 1800, gone=True, url_changed=True)
    assert moved is not None and moved <= STARTUP_DELAY + STARTUP_SPREAD


def test_a_changed_url_is_polled_soon_even_during_a_backoff() -> None:
    delay = first_poll_delay(NOW, NOW + timedelta(hours=8), 1800, url_changed=True)
    assert delay is not None and delay <= STARTUP_DELAY + STARTUP_SPREAD


# -- retimed_next_poll --------------------------------------------------------------------


def test_a_new_interval_counts_from_the_last_fetch() -> None:
    last = NOW - timedelta(minutes=10)
    assert retimed_next_poll(last, NOW + timedelta(hours=5), 3600) == last + timedelta(hours=1)
    assert retimed_next_poll(last, NOW + timedelta(hours=5), 300) == last + timedelta(minutes=5)


def test_a_new_interval_still_respects_the_feed_ttl() -> None:
    last = NOW - timedelta(minutes=10)
    due = retimed_next_poll(last, None, 300, ttl=3600, max_interval=86400)
    assert due == last + timedelta(hours=1)


def test_a_failing_source_keeps_its_backoff_when_the_interval_changes() -> None:
    stored = NOW + timedelta(hours=3)
    assert retimed_next_poll(NOW, stored, 60, consecutive_errors=4) == stored


def test_a_never_fetched_source_keeps_what_is_stored() -> None:
    assert retimed_next_poll(None, None, 60) is None


# -- plan_reload --------------------------------------------------------------------------


def sources(*items: Source) -> dict[str, Source]:
    return {source.name: source for source in items}


def test_an_unchanged_config_changes_nothing() -> None:
    same = sources(Source("a", "http://x/a"), Source("b", "http://x/b", interval=60))
    assert plan_reload(same, dict(same)) == ReloadPlan()
    assert plan_reload(same, dict(same)).empty


def test_reload_plan_names_every_kind_of_change() -> None:
    old = sources(
        Source("kept", "http://x/kept"),
        Source("removed", "http://x/removed"),
        Source("disabled", "http://x/disabled"),
        Source("enabled", "http://x/enabled", enabled=False),
        Source("moved", "http://x/moved"),
        Source("retimed", "http://x/retimed", interval=1800),
    )
    new = sources(
        Source("kept", "http://x/kept", title="A new title changes no schedule"),
        Source("disabled", "http://x/disabled", enabled=False),
        Source("enabled", "http://x/enabled"),
        Source("moved", "http://y/moved"),
        Source("retimed", "http://x/retimed", interval=60),
        Source("added", "http://x/added"),
    )
    plan = plan_reload(old, new)
    assert plan == ReloadPlan(
        start=("added", "enabled"),
        stop=("disabled", "removed"),
        moved=("moved",),
        retimed=("retimed",),
    )
    assert not plan.empty


def test_a_moved_source_with_a_new_interval_is_only_moved() -> None:
    plan = plan_reload(
        sources(Source("a", "http://x/a", interval=60)),
        sources(Source("a", "http://x/b", interval=120)),
    )
    assert plan == ReloadPlan(moved=("a",))
