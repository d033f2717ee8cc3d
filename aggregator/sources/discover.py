"""Finding the feed behind a URL a user pastes: a feed itself, or a web page that leads to one.

A page leads to its feeds through `<link rel="alternate" type="application/rss+xml">` (or
Atom, RDF, JSON Feed) tags; when it advertises none, the usual paths (/feed, /rss, /atom.xml,
/feed.xml, /rss.xml, /index.xml) are tried at the site's root and below the page. Every
candidate is fetched and parsed with the same steps a poll uses, so what is found is known
to work, and with the reach of the URL the user gave (sources/reach.py): a page on a public
address never leads to a feed on an internal one (that candidate is refused before any
connection, and shown among those tried).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests
from selectolax.lexbor import LexborHTMLParser

from aggregator.errors import FetchError, ParseError
from aggregator.models import HttpState, MediaType, ParsedFeed, Source
from aggregator.sources.fetch import FetchLimits, fetch_source
from aggregator.sources.parse import parse_feed
from aggregator.sources.reach import reach_for

FEED_TYPES = (
    MediaType.RSS,
    MediaType.ATOM,
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    MediaType.JSON_FEED,
    "application/json",  # JSON Feed's first media type; WordPress's REST API uses it too
)
COMMON_PATHS = ("feed", "rss", "atom.xml", "feed.xml", "rss.xml", "index.xml")


@dataclass(frozen=True)
class Advertised:
    """A feed a page names in its head."""

    url: str
    title: str | None = None
    media_type: str = ""


@dataclass(frozen=True)
class Discovery:
    """The feed found for a URL, and how it was found."""

    url: str  # the feed's URL, to put in config.yaml
    feed: ParsedFeed
    page: str | None = None  # the web page it was found from, when the URL was a page
    advertised: tuple[Advertised, ...] = ()  # everything the page advertised
    tried: tuple[tuple[str, str], ...] = field(default=())  # (url, why not) before success


def discover_feed(
    session: requests.Session, url: str, limits: FetchLimits, *, allow_private: bool = False
) -> Discovery:
    """The feed at `url`, or found from the page at `url`; FetchError when `url` cannot be
    fetched, ParseError when it is neither a feed nor a page leading to one. `allow_private`
    is the source setting: internal addresses may be reached whatever `url` is on."""
    reach = reach_for(url, allow_private)
    fetched = fetch_source(session, url, HttpState(), limits, reach=reach)
    if fetched.error or fetched.body is None:
        raise FetchError(f"{url}: {fetched.error or 'empty answer'}")
    try:
        feed = parse_feed(fetched.body, _probe(url), fetched.url, fetched.headers)
        return Discovery(url=fetched.permanent_redirect or url, feed=feed)
    except ParseError as exc:
        if not _is_html(fetched.body, fetched.headers.get("content-type", "")):
            raise ParseError(f"{url}: {exc}") from None
    advertised = tuple(feed_links(fetched.body, fetched.url))
    # Plain `application/json` last: every WordPress page advertises its REST API with it.
    candidates = [link.url for link in sorted(advertised, key=_is_plain_json)]
    if not candidates:
        candidates = common_feed_urls(fetched.url)
    tried: list[tuple[str, str]] = []
    for candidate in _unique([c for c in candidates if c not in {url, fetched.url}]):
        result = fetch_source(session, candidate, HttpState(), limits, reach=reach)
        if result.error or result.body is None:
            tried.append((candidate, result.error or "empty answer"))
            continue
        try:
            feed = parse_feed(result.body, _probe(candidate), result.url, result.headers)
        except ParseError as exc:
            tried.append((candidate, str(exc)))
            continue
        return Discovery(
            url=result.permanent_redirect or candidate,
            feed=feed,
            page=url,
            advertised=advertised,
            tried=tuple(tried),
        )
    if advertised:
        reason = "none of the feeds it advertises works"
    else:
        reason = f"it advertises no feed, and none of {', '.join(COMMON_PATHS)} is one"
    details = "; ".join(f"{candidate}: {why}" for candidate, why in tried)
    raise ParseError(f"{url} is a web page, but {reason}" + (f" ({details})" if details else ""))


def feed_links(html: bytes, page_url: str) -> list[Advertised]:
    """The feeds a page advertises with `<link rel="alternate">`, absolute, in page order."""
    tree = LexborHTMLParser(html.decode("utf-8", "replace"))
    base_node = tree.css_first("base[href]")
    base = urljoin(page_url, base_node.attributes.get("href") or "") if base_node else page_url
    found: list[Advertised] = []
    for node in tree.css("link[rel][href]"):
        rel = (node.attributes.get("rel") or "").lower().split()
        media_type = (node.attributes.get("type") or "").split(";")[0].strip().lower()
        if "alternate" not in rel or media_type not in FEED_TYPES:
            continue
        href = urljoin(base, (node.attributes.get("href") or "").strip())
        if urlsplit(href).scheme in {"http", "https"} and href not in {f.url for f in found}:
            title = (node.attributes.get("title") or "").strip() or None
            found.append(Advertised(href, title, media_type))
    return found


def common_feed_urls(page_url: str) -> list[str]:
    """Where feeds usually live: at the site's root, then below the page's own folder."""
    root = [urljoin(page_url, "/" + path) for path in COMMON_PATHS]
    folder = page_url if page_url.endswith("/") else page_url.rsplit("/", 1)[0] + "/"
    below = [urljoin(folder, path) for path in COMMON_PATHS]
    return _unique([*root, *below])


def _probe(url: str) -> Source:
    return Source(name="new", url=url)


def _is_plain_json(link: Advertised) -> bool:
    return link.media_type == "application/json"


def _is_html(body: bytes, content_type: str) -> bool:
    head = body[:2048].lstrip().lower()
    return "html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))


def _unique(urls: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(urls))
