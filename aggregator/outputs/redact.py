"""What of a source's address may be published: never its user info, and its query's
values only when the user says the address is public (`public_url: true` on the source).

A feed URL often carries a credential (`https://alice:hunter2@host/feed`,
`?access_key=…`, `?token=…`); the index page, `/status` and the origin of every published
item would show it to anyone. Keys are kept, so two addresses stay told apart.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

REDACTED = "redacted"
# An http(s) URL inside free text (an error message): up to whitespace, a quote or `>`.
URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")


def public_url(url: str | None, public: bool = False) -> str | None:
    """`url` without user info and, unless `public`, with every query value replaced."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query and not public:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = (
            "&".join(
                f"{quote(key, safe='')}={REDACTED}" if value else quote(key, safe="")
                for key, value in pairs
            )
            if pairs
            else REDACTED
        )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str | None) -> str | None:
    """`text` (an error message) with every URL in it made public as `public_url` does."""
    if not text or "://" not in text:
        return text
    return URL_IN_TEXT.sub(lambda match: public_url(match.group(0)) or "", text)
