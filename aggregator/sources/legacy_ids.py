"""The identities that releases before 0.2 stored for entries, kept apart from parse.py so
that the process that stores polls can look them up without importing feedparser.

feedparser resolved an id that is not a URL (`<guid>12345</guid>`, Reddit's `t3_42r7mv`)
against the URL the feed was fetched from; parse.py no longer lets it (see
`can_be_relative_uri` there), so an entry stored by an old release is found again under what
feedparser's `_urljoin` made of its id. `_urljoin` is copied here, not imported:
tests/test_parse.py holds the copy to feedparser's own.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

_URI_FIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # feedparser.urls'


def legacy_identities(identity: str, bases: Iterable[str | None]) -> list[str]:
    """The identities releases before 0.2 may have stored for an entry whose id is
    `identity`, resolved against each of `bases` (the feed's URLs, which may have moved)."""
    resolved = {feedparser_urljoin(base, identity) for base in bases if base}
    return sorted(old for old in resolved if old and old != identity)


def feedparser_urljoin(base: str, uri: str) -> str:
    """feedparser 6's `urls._urljoin`."""
    uri = _URI_FIXER.sub(r"\1\3", uri)
    try:
        return urllib.parse.urljoin(base, uri)
    except ValueError:
        return ""
