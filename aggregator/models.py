"""Plain, frozen data passed between the pipeline steps.

Every step takes and returns these values and nothing richer, so each step can be tested
alone and moved to another process (they all pickle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class SourceStatus(StrEnum):
    """A source's standing, stored in its row and shown by `sources`, `/status` and the
    index page (which show "disabled" for a source switched off in the configuration)."""

    NEW = "new"  # never polled
    OK = "ok"
    WARNING = "warning"  # polled, but the feed had a problem worth showing
    ERROR = "error"
    GONE = "gone"  # HTTP 410: no longer polled
    DISABLED = "disabled"  # displayed only, never stored


class PollStatus(StrEnum):
    """What one poll of one source did."""

    NEW = "new"  # new entries stored
    CHANGED = "changed"  # entries changed, none new
    UNCHANGED = "unchanged"
    NOT_MODIFIED = "not-modified"  # HTTP 304, or the same body as last time
    ERROR = "error"


class MediaType(StrEnum):
    """The media types of the feeds this program publishes (served with `; charset=utf-8`)."""

    RSS = "application/rss+xml"
    ATOM = "application/atom+xml"
    JSON_FEED = "application/feed+json"


# The one table of published file names: the merged feeds' (RSS and Atom by default; their
# names are configurable) and each group folder's, with the word for the format and the
# media type each is served as.
RSS_FEED_NAME = "feed.xml"
ATOM_FEED_NAME = "atom.xml"
JSON_FEED_NAME = "feed.json"
FEED_FILES = (
    (RSS_FEED_NAME, "RSS", MediaType.RSS),
    (ATOM_FEED_NAME, "Atom", MediaType.ATOM),
    (JSON_FEED_NAME, "JSON Feed", MediaType.JSON_FEED),
)


@dataclass(frozen=True)
class Source:
    """One followed feed, as configured."""

    name: str
    url: str
    title: str | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()
    interval: int = 1800  # seconds
    enabled: bool = True
    image: str | None = None  # default headimg/thumbnail for entries without one
    include: tuple[str, ...] = ()  # regexes: when given, an entry must match one to be kept
    exclude: tuple[str, ...] = ()  # regexes: an entry matching any is dropped
    keep: int | None = None  # cap on stored entries; the oldest by date are pruned
    # Internal addresses (loopback, private, link-local) reachable whatever the URL's own host
    # is; see aggregator/sources/reach.py.
    allow_private: bool = False
    public_url: bool = False  # its URL may be published whole (else query values redacted)
    full_text: bool = False  # fetch each new entry's page and keep its main content


@dataclass(frozen=True)
class HttpState:
    """What the last successful fetch of a source left for the next conditional GET."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one HTTP fetch; exactly one of body / not_modified / error is set."""

    url: str  # the URL finally answered, after redirects
    status: int | None = None  # HTTP status, None when no response arrived
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    not_modified: bool = False
    error: str | None = None
    http: HttpState = field(default_factory=HttpState)
    permanent_redirect: str | None = None  # new URL to adopt after a 301/308
    retry_after: int | None = None  # seconds, from a 429/503
    max_age: int | None = None  # seconds, from Cache-Control


@dataclass(frozen=True)
class Entry:
    """One normalised feed entry, independent of the feed format it came in."""

    source: str
    identity: str
    link: str | None
    title: str
    author: str | None
    published: datetime | None  # UTC, None when the feed gave no date
    updated: datetime | None
    content: str  # sanitised HTML
    image: str | None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedFeed:
    """What parsing one fetched body gives: entries plus the feed's own metadata."""

    entries: tuple[Entry, ...]
    title: str | None = None
    link: str | None = None
    author: str | None = None
    ttl: int | None = None  # seconds
    error: str | None = None  # feedparser's complaint when the feed was broken (bozo)


@dataclass(frozen=True)
class StoredEntry:
    """An entry as the database keeps it, with the facts the outputs need."""

    id: int
    entry: Entry
    date: datetime  # published, else updated, else first seen: always set
    first_seen: datetime
    document: str  # file name inside the documents folder, fixed at first sight
    source_title: str | None = None
    source_url: str | None = None
    version: int = 1  # raised by every change of the stored entry


@dataclass(frozen=True)
class PollResult:
    """What one poll of one source did, for the summary line and the status."""

    source: str
    status: PollStatus
    new: int = 0
    changed: int = 0
    error: str | None = None
    duration: float = 0.0  # seconds, the whole poll
    http_status: int | None = None
    fetch_duration: float = 0.0  # seconds of `duration` spent fetching
    # When the source is due again, as the poll stored it; None: never (410 Gone).
    next_poll: datetime | None = None


@dataclass(frozen=True)
class Paths:
    """Where outputs live; all absolute."""

    database: Path
    documents: Path
    public: Path


@dataclass(frozen=True)
class ImageOutcome:
    """The last try to mirror one image URL (aggregator/outputs/images.py): the file it gave inside
    `images.folder`, or why there is none."""

    url: str
    name: str | None  # "ab/<sha-256 of the bytes>.jpg" when mirrored
    error: str | None  # when not
    checked: datetime  # when it was fetched or tried


@dataclass(frozen=True)
class EntryLimits:
    """How much of one poll is kept (`limits` in config.yaml; aggregator/sources/entry_limits.py):
    characters, except `categories` (per entry) and `entries` (per poll)."""

    title: int = 300  # a title is a line, not a book
    author: int = 200
    category: int = 100
    categories: int = 20
    content: int = 512 * 1024  # the entry's sanitised HTML
    entries: int = 1000  # a feed lists its newest first


@dataclass(frozen=True)
class Publishing:
    """Whether the outputs are being written, for /status, / and /healthz."""

    failure: str | None = None  # why the last republish failed as a whole
    documents_failing: int = 0  # documents owed after failing, retried by each republish
    document_error: str | None = None  # one of their reasons

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.documents_failing


ALL_PUBLISHED = Publishing()


class HookWhen(StrEnum):
    """What a publish hook runs after: documents written or removed, feeds changed, either."""

    DOCUMENTS = "documents"
    FEEDS = "feeds"
    ANY = "any"


@dataclass(frozen=True)
class Hook:
    """One command run after a publish that changed something (`hooks:` in the config)."""

    name: str
    run: tuple[str, ...] | str  # argv, or one shell command line when `shell`
    cwd: Path | None = None
    timeout: float = 600.0  # seconds; then the hook's whole process group is killed
    when: HookWhen = HookWhen.ANY
    environment: tuple[tuple[str, str], ...] = ()
    shell: bool = False


@dataclass(frozen=True)
class Published:
    """What publishing changed since it was last asked: document file names written and
    removed (inside the documents folder), and whether any feed file changed."""

    written: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    feeds: bool = False

    def __bool__(self) -> bool:
        return bool(self.written or self.removed or self.feeds)

    def __or__(self, other: Published) -> Published:
        """Both changes, as one: a document removed after it was written is removed."""
        return Published(
            (self.written - other.removed) | other.written,
            (self.removed - other.written) | other.removed,
            self.feeds or other.feeds,
        )
