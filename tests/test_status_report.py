"""The /status document from plain values: what a reader of /status can rely on, without a
daemon (the daemon's own /status is exercised in tests/e2e/test_daemon.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from aggregator import __version__
from aggregator.models import Source
from aggregator.service.status_report import status_report
from aggregator.store.rows import SourceState


def test_every_configured_source_in_config_order() -> None:
    started = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    beijing = timezone(timedelta(hours=8))
    sources = [
        Source("news", "https://example.org/old", title="News"),
        Source("fresh", "https://example.org/fresh"),
        Source("paused", "https://example.org/paused", enabled=False),
    ]
    states = {
        "news": SourceState(
            "news",
            "https://example.org/old",
            current_url="https://example.org/new",
            status="error",
            http_status=500,
            error="HTTP 500",
            consecutive_errors=2,
            last_fetch=datetime(2024, 5, 1, 17, 30, 15, tzinfo=beijing),
            entries=7,
        ),
        "paused": SourceState("paused", "https://example.org/paused", status="ok"),
    }
    scheduled = {"news": datetime(2024, 5, 1, 10, 0, tzinfo=UTC), "fresh": None}
    report = status_report(sources, states, scheduled, {"fresh"}, {"news"}, started, healthy=True)

    assert report["version"] == __version__
    assert (report["started"], report["healthy"]) == ("2024-05-01T08:00:00Z", True)
    assert [s["name"] for s in report["sources"]] == ["news", "fresh", "paused"]
    news, fresh, paused = report["sources"]
    assert news["current_url"] == "https://example.org/new"
    assert (news["status"], news["http_status"], news["consecutive_errors"]) == ("error", 500, 2)
    assert news["last_poll"] == "2024-05-01T09:30:15Z"  # always UTC, with a Z
    assert news["next_poll"] == "2024-05-01T10:00:00Z"
    assert (news["polling"], news["waiting"]) == (False, True)
    assert (fresh["status"], fresh["polling"], fresh["waiting"], fresh["entries"]) == (
        "new",
        True,
        False,
        0,
    )
    assert fresh["current_url"] == fresh["url"] and fresh["last_poll"] is None
    assert paused["status"] == "disabled" and paused["next_poll"] is None
    json.dumps(report)  # served as JSON as it is
