"""HTTP for sources: one pooled session, conditional GET, and hard limits on what a server
can make us do (time, size after decompression, redirects).

Never raises for a source's fault: every failure comes back as a `FetchResult` with `error`
set, so one broken source can never stop a pass over the others.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter

from .models import FetchResult, HttpState

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
PERMANENT = {301, 308}
CHUNK = 64 * 1024
MAX_AGE_RE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class FetchLimits:
    """What one fetch may cost; Miniflux's defaults (15 MiB, 20 s) are the model."""

    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_body: int = 15 * 2**20
    max_redirects: int = 10


def make_session(limits: FetchLimits, pool_size: int = 10) -> requests.Session:
    """A session that reuses connections across sources and across polls."""
    session = requests.Session()
    session.max_redirects = limits.max_redirects
    session.trust_env = False  # no proxy or .netrc surprises in a daemon
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(
        {
            "User-Agent": limits.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        }
    )
    return session


def fetch_source(
    session: requests.Session, url: str, previous: HttpState, limits: FetchLimits
) -> FetchResult:
    """GET `url` conditionally; a 304, or a 200 whose body is unchanged, is `not_modified`."""
    headers = {}
    if previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    deadline = time.monotonic() + limits.total_timeout
    try:
        response = session.get(
            url,
            headers=headers,
            timeout=(limits.connect_timeout, limits.read_timeout),
            stream=True,
            allow_redirects=True,
        )
    except requests.TooManyRedirects:
        return FetchResult(url=url, error=f"too many redirects (more than {limits.max_redirects})")
    except requests.Timeout as exc:
        return FetchResult(url=url, error=f"timed out: {_reason(exc)}")
    except requests.ConnectionError as exc:
        return FetchResult(url=url, error=f"connection failed: {_reason(exc)}")
    except requests.RequestException as exc:
        return FetchResult(url=url, error=f"request failed: {_reason(exc)}")

    with response:
        final_url = response.url or url
        answer = {k.lower(): v for k, v in response.headers.items()}
        common = {
            "url": final_url,
            "status": response.status_code,
            "headers": answer,
            "permanent_redirect": _permanent_target(response, url),
            "max_age": _max_age(answer.get("cache-control")),
        }
        if response.status_code == 304:
            return FetchResult(
                **common,
                not_modified=True,
                http=HttpState(
                    etag=answer.get("etag") or previous.etag,
                    last_modified=answer.get("last-modified") or previous.last_modified,
                    body_hash=previous.body_hash,
                ),
            )
        if response.status_code != 200:
            return FetchResult(
                **common,
                error=_status_text(response),
                retry_after=_retry_after(answer.get("retry-after")),
                http=previous,
            )
        try:
            body = _read_capped(response, limits.max_body, deadline)
        except _TooBig:
            return FetchResult(
                **common,
                error=f"response larger than the {limits.max_body} byte limit",
                http=previous,
            )
        except _TooSlow:
            return FetchResult(
                **common,
                error=f"took longer than {limits.total_timeout:g} s in total",
                http=previous,
            )
        except requests.RequestException as exc:
            return FetchResult(
                **common, error=f"reading body failed: {_reason(exc)}", http=previous
            )
    digest = hashlib.sha256(body).hexdigest()
    # RSSHub sends a fresh Last-Modified each time; a validator that is only "now" is useless,
    # so ETag wins when both are present.
    state = HttpState(
        etag=answer.get("etag"),
        last_modified=None if answer.get("etag") else answer.get("last-modified"),
        body_hash=digest,
    )
    if digest == previous.body_hash:
        return FetchResult(**common, not_modified=True, http=state)
    return FetchResult(**common, body=body, http=state)


class _TooBig(Exception):
    pass


class _TooSlow(Exception):
    pass


def _read_capped(response: requests.Response, limit: int, deadline: float) -> bytes:
    """Read the decompressed body, stopping as soon as it passes `limit` or the deadline."""
    declared = response.headers.get("Content-Length")
    encoded = response.headers.get("Content-Encoding")
    if declared and declared.isdigit() and not encoded and int(declared) > limit:
        raise _TooBig
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > limit:
            raise _TooBig
        if time.monotonic() > deadline:
            raise _TooSlow
        chunks.append(chunk)
    return b"".join(chunks)


def _permanent_target(response: requests.Response, original: str) -> str | None:
    """The new URL when every hop was permanent (301/308); a temporary hop is not adopted."""
    if not response.history:
        return None
    if all(hop.status_code in PERMANENT for hop in response.history) and response.url != original:
        return response.url
    return None


def _status_text(response: requests.Response) -> str:
    reason = response.reason or ""
    if isinstance(reason, bytes):
        reason = reason.decode("latin-1")
    return f"HTTP {response.status_code} {reason}".strip()


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int((when - datetime.now(UTC)).total_seconds()))


def _max_age(value: str | None) -> int | None:
    if not value or "no-store" in value.lower():
        return None
    match = MAX_AGE_RE.search(value)
    return int(match.group(1)) if match else None


def _reason(exc: Exception) -> str:
    """The innermost useful words of a requests/urllib3 error, without object reprs."""
    text = str(exc)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    text = re.sub(r"<[^>]+>:?\s*", "", text).strip(" ()'\"")
    return text or type(exc).__name__
