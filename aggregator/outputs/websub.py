"""Announcing a republished merged feed to its WebSub hub, so subscribers get it at once.

The ping is a courtesy: the feeds are already on disk and readers that poll still get them,
so a hub that is down or refuses is logged and never fails a publish.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import requests

log = logging.getLogger(__name__)

PING_TIMEOUT = 10.0  # seconds; a hub answers at once (it fetches the feed later)


def ping_hub(session: requests.Session, hub: str, urls: Sequence[str]) -> list[str]:
    """POST `hub.mode=publish` for each feed URL; return one problem line per failed ping."""
    problems: list[str] = []
    for url in urls:
        try:
            response = session.post(
                hub,
                data={"hub.mode": "publish", "hub.url": url},
                timeout=PING_TIMEOUT,
                allow_redirects=False,
            )
            response.close()
        except requests.RequestException as exc:
            problems.append(f"hub={hub} url={url} error={type(exc).__name__}: {exc}")
            continue
        if not 200 <= response.status_code < 300:
            problems.append(f"hub={hub} url={url} error=HTTP {response.status_code}")
    for problem in problems:
        log.warning("websub ping failed: %s", problem)
    if urls and not problems:
        log.info("websub pinged hub=%s feeds=%d", hub, len(urls))
    return problems
