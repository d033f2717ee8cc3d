"""What /status of `aggregator run` answers: every configured source's state, ready for
JSON. Built from plain values (the configured sources, their stored states, the scheduled
times), so the shape of the answer is decided in one place and needs no daemon to check."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aggregator import __version__
from aggregator.models import ALL_PUBLISHED, Publishing, Source, SourceStatus
from aggregator.outputs.redact import public_url, redact_text
from aggregator.store.rows import SourceState


def status_report(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    scheduled: Mapping[str, datetime | None],
    running: Collection[str],
    waiting: Collection[str],
    started: datetime,
    healthy: bool,
    publishing: Publishing = ALL_PUBLISHED,
) -> dict[str, Any]:
    """The /status document: the daemon's version, start and health, then one object per
    configured source, in config order (a source not polled yet shows as `new`)."""
    report = []
    for source in sources:
        state = states.get(source.name) or SourceState(source.name, source.url)
        report.append(
            {
                "name": source.name,
                "title": source.title or state.title,
                "url": public_url(source.url, source.public_url),
                "current_url": public_url(state.current_url or source.url, source.public_url),
                "enabled": source.enabled,
                "status": state.status if source.enabled else SourceStatus.DISABLED,
                "polling": source.name in running,
                # Due, and waiting for a free worker (many sources due at once).
                "waiting": source.name in waiting,
                "http_status": state.http_status,
                "error": redact_text(state.error),
                "consecutive_errors": state.consecutive_errors,
                "entries": state.entries,
                "last_poll": _iso(state.last_fetch),
                "last_success": _iso(state.last_success),
                "next_poll": _iso(scheduled.get(source.name)),
            }
        )
    return {
        "version": __version__,
        "started": _iso(started),
        "healthy": healthy,
        "publishing": {
            "ok": publishing.ok,
            "error": redact_text(publishing.failure),
            "documents_failing": publishing.documents_failing,
            "document_error": publishing.document_error,
        },
        "sources": report,
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
