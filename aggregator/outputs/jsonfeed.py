"""The merged (and every group) feed as JSON Feed 1.1, for readers that prefer JSON.

Item ids are the same permanent ids as in the RSS and Atom feeds, so a reader following more
than one format sees one article once. Output is deterministic for the same entries, like the
XML feeds, so unchanged feeds are not rewritten and keep their ETag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aggregator.models import Source, StoredEntry
from aggregator.outputs.feeds import FeedInfo, item_id
from aggregator.outputs.redact import public_url
from aggregator.text import rfc3339_utc

VERSION = "https://jsonfeed.org/version/1.1"


def build_json_feed(
    info: FeedInfo,
    entries: Sequence[StoredEntry],
    sources: Mapping[str, Source],
) -> bytes:
    """JSON Feed 1.1 bytes for `entries`, newest first as given; `info.json_name` is its
    path under `info.link`."""
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": info.title,
        "home_page_url": info.link,
        "feed_url": info.link + info.json_name,
        "description": info.description,
        "authors": [{"name": info.title}],
    }
    if info.hub:
        feed["hubs"] = [{"type": "WebSub", "url": info.hub}]
    feed["items"] = [_item(stored, sources.get(stored.entry.source), info) for stored in entries]
    # Compact: with `indent` json falls back to its pure-Python encoder, 5x slower.
    return (json.dumps(feed, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _item(stored: StoredEntry, source: Source | None, info: FeedInfo) -> dict[str, Any]:
    entry = stored.entry
    public = source is not None and source.public_url
    origin = public_url(stored.source_url or (source.url if source else None), public)
    item: dict[str, Any] = {
        "id": item_id(entry.source, entry.identity),
        "url": entry.link or origin or info.link,
        "title": entry.title or "(untitled)",
    }
    if entry.content:
        item["content_html"] = entry.content
    else:
        item["content_text"] = entry.title or "(untitled)"
    if entry.image:
        item["image"] = entry.image
    item["date_published"] = rfc3339_utc(stored.date)
    item["date_modified"] = rfc3339_utc(entry.updated or stored.date)
    if entry.author:
        item["authors"] = [{"name": entry.author}]
    if entry.categories:
        item["tags"] = list(entry.categories)
    # JSON Feed has no field for an item's origin; extensions start with an underscore.
    label = (source.title if source else None) or stored.source_title or entry.source
    item["_source"] = {"name": entry.source, "title": label, **({"url": origin} if origin else {})}
    return item
