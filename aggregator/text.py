"""Small text helpers shared by the steps: RFC 3339 dates and slugs.

A step never imports another step for a helper; what two of them need lives here, defined
once, so a date or a slug is spelled the same in every output.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime


def rfc3339_utc(moment: datetime) -> str:
    """`2026-01-01T12:00:00Z`: RFC 3339 in UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(text: str, max_bytes: int, fallback: str) -> str:
    """Letters and digits of any script (Chinese stays readable), joined by single dashes,
    at most `max_bytes` of UTF-8; `fallback` when nothing is left. Never `.` or `..`."""
    text = unicodedata.normalize("NFKC", text).lower()
    slug = re.sub(r"[\W_]+", "-", text).strip("-")
    slug = slug.encode("utf-8")[:max_bytes].decode("utf-8", "ignore").strip("-")
    return slug or fallback
