"""Entries' images mirrored into the site (config.yaml's `images`; off unless it is given).

Owns which URLs of an entry are its images, getting them, and the entry as documents then
show it. The images are the entry's `image` (a document's `headimg`/`thumbnail`, or the
source's `image` when the entry has none) and, in its body, `<img src>`, `<img srcset>` and
`<source srcset>` (a `<picture>`'s alternatives), http(s) only, at most MAX_PER_ENTRY URLs.

Guarantees:

- An image is fetched with the machinery and limits of sources (`fetch.fetch_source`: the
  same session, connect/read timeouts, total deadline, redirect cap, no `Referer`), with
  `images.max_size` as the cap on its decompressed bytes, read while streaming, and with
  the reach of the source whose entry holds it (aggregator/sources/reach.py): a feed on a public
  address cannot have an image copied from your own network into the site.
- Only bytes that are an image by their first bytes are kept: JPEG, PNG, GIF, WebP, AVIF.
  SVG is refused (an SVG can carry script, which would run on the site's own origin when
  the file is opened), and so is anything else whatever its Content-Type says.
- A file is named only by the SHA-256 of its bytes and the extension of the type found in
  them, `ab/<64 hex>.jpg`: nothing a feed writes names a file or leads out of the folder,
  and the same bytes from any number of URLs are one file. Every file is written atomically
  (`atomic.write_atomic`), so a crash never leaves half an image under its name.
- What each URL gave (a file, or an error and when) is kept in the store, so an image is
  fetched once; a failed one is tried again only after RETRY_FAILED, and only when a
  document holding it is written again. A failure never stops a document: it keeps the
  original URL. A folder that cannot be written is an `OutputError` (as for documents):
  the documents stay owed and the next run after the fix writes them with local copies.
- Documents receive already-rewritten entries (`localise`); the store, and so the merged
  and group feeds, keep the original URLs (feed readers fetch images from anywhere).

Downloads are I/O: a few threads, at most PER_HOST at a time to one host.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.entities import html5 as HTML_ENTITIES
from pathlib import Path
from urllib.parse import urlsplit

import requests

from aggregator.config.settings import ImageSettings
from aggregator.errors import OutputError
from aggregator.models import HttpState, ImageOutcome, Source, StoredEntry
from aggregator.outputs.atomic import remove_stale_temps, write_atomic
from aggregator.outputs.documents import shown_image
from aggregator.sources.fetch import FetchLimits, fetch_source
from aggregator.sources.reach import Reach, reach_for
from aggregator.sources.sanitize import ENTITY_LIKE, srcset_candidates
from aggregator.store.database import Store

log = logging.getLogger(__name__)

RETRY_FAILED = timedelta(days=1)
THREADS = 4  # each holds up to max_size (twice while joining): a bound on memory too
PER_HOST = 2
MAX_PER_ENTRY = 64  # distinct image URLs of one entry; more keep their original URLs
IMAGE_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,*/*;q=0.1"
# The only names a mirrored file can have (checked again on names read from the store).
FILE_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}\.(?:jpg|png|gif|webp|avif)")
# An HTML tag as a browser's tokenizer reads it (attribute values in double, single or no
# quotes, `>` allowed inside quotes), or a comment; scanning every tag in order keeps a
# `<img` written inside another tag's attribute value from being taken for a tag. Atomic
# and possessive, as the tokenizer is: an unclosed tag costs one scan, never backtracking.
ATTRIBUTE = re.compile(r"""([^\s"'>/=]++)(?>\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*+)))?""")
TAG = re.compile(
    r"<!--(?:.*?-->|.*\Z)|<([A-Za-z][^\s/>]*+)((?>[\s/]+[^\s\"'>/=]+"
    r"""(?>\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]*+))?)*+)[\s/]*>""",
    re.DOTALL,
)
# What an image attribute names, per tag: (attribute, holds a srcset).
IMAGE_ATTRIBUTES = {"img": (("src", False), ("srcset", True)), "source": (("srcset", True),)}


# -- what an image is --------------------------------------------------------------------


def image_type(data: bytes) -> str | None:
    """The file extension of the image format `data` starts like, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp":  # ISO base media: AVIF's brand is the major or a compatible one
        size = int.from_bytes(data[:4], "big")
        brands = data[8:12] + data[16 : min(max(size, 16), 64)]
        if any(brands[i : i + 4] in (b"avif", b"avis") for i in range(0, len(brands), 4)):
            return "avif"
    return None


def not_an_image(data: bytes, content_type: str | None) -> str:
    """Why `data` is refused, in words."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head or (content_type or "").lower().startswith("image/svg"):
        return "an SVG image (refused: SVG can carry script)"
    if head.startswith((b"<!doctype html", b"<head", b"<body")) or b"<html" in head:
        kind = "an HTML page"
    elif not data:
        kind = "an empty answer"
    else:
        kind = "not a JPEG, PNG, GIF, WebP or AVIF image"
    said = f", sent as {content_type}" if content_type else ""
    return f"not an image ({kind}{said})"


def image_file_name(data: bytes, extension: str) -> str:
    """`ab/<sha-256 of data>.<extension>`: the bytes alone decide the name."""
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:2]}/{digest}.{extension}"


# -- an entry's images -------------------------------------------------------------------


def image_urls(stored: StoredEntry, source: Source | None) -> list[str]:
    """The entry's image URLs, the one documents show as its image first; http(s) only,
    each once, at most MAX_PER_ENTRY."""
    image = shown_image(stored.entry, source)
    found = [image] if image else []
    for _, _, attribute, value in _image_attributes(stored.entry.content):
        if attribute == "srcset":
            found += [url for url, _ in srcset_candidates(value)]
        else:
            found.append(value)
    urls = [url for url in dict.fromkeys(found) if _is_web_url(url)]
    return urls[:MAX_PER_ENTRY]


def localise(stored: StoredEntry, source: Source | None, local: Mapping[str, str]) -> StoredEntry:
    """The entry as documents show it with the mirrored copies: `local` maps an original
    URL to the URL of its copy; URLs not in it stay as they are."""
    entry = stored.entry
    image = shown_image(entry, source)
    new_image = local.get(image, entry.image) if image else None
    content = rewrite_html(entry.content, local)
    if new_image == entry.image and content == entry.content:
        return stored
    return replace(stored, entry=replace(entry, image=new_image, content=content))


def rewrite_html(fragment: str, local: Mapping[str, str]) -> str:
    """`fragment` with the image attributes whose URLs are in `local` pointing at the
    copies; every other byte as it was."""
    if not local or ("<img" not in fragment and "<source" not in fragment):
        return fragment
    pieces: list[str] = []
    position = 0
    for start, end, attribute, value in _image_attributes(fragment):
        if attribute == "srcset":
            candidates = srcset_candidates(value)
            if not any(url in local for url, _ in candidates):
                continue
            new = ", ".join(
                f"{local.get(url, url)} {descriptor}".strip() for url, descriptor in candidates
            )
        elif value in local:
            new = local[value]
        else:
            continue
        pieces += [fragment[position:start], f'"{html.escape(new)}"']
        position = end
    return "".join(pieces) + fragment[position:] if pieces else fragment


def _image_attributes(fragment: str) -> Iterable[tuple[int, int, str, str]]:
    """(start, end, name, value) of each image attribute's value in `fragment`: where its
    text is (quotes included) and what it means (references decoded). The first of a
    repeated attribute counts, as in a browser."""
    if "<img" not in fragment and "<source" not in fragment:
        return
    for tag in TAG.finditer(fragment):
        wanted = IMAGE_ATTRIBUTES.get((tag.group(1) or "").lower())
        if not wanted or not tag.group(2):
            continue
        names = dict(wanted)
        seen: set[str] = set()
        offset = tag.start(2)
        for attribute in ATTRIBUTE.finditer(tag.group(2)):
            name = attribute.group(1).lower()
            if name in seen:
                continue
            seen.add(name)
            group = next((g for g in (2, 3, 4) if attribute.group(g) is not None), None)
            if name not in names or group is None:
                continue
            start, end = attribute.span(group)
            if group in (2, 3):  # quoted: the quotes go too
                start, end = start - 1, end + 1
            value = _attribute_value(attribute.group(group))
            yield offset + start, offset + end, name, value.strip()


def _attribute_value(raw: str) -> str:
    """An attribute's text as a browser reads it: references decoded, except a named one
    without `;` that runs on into letters, digits or `=` (`?a=1&copy=2` stays)."""
    if "&" not in raw:
        return raw

    def one(match: re.Match[str]) -> str:
        reference = match.group(0)
        if reference.endswith(";") or reference[1] == "#":
            return html.unescape(reference)
        follows = raw[match.end() : match.end() + 1]
        if follows != "=" and reference[1:] in HTML_ENTITIES:
            return html.unescape(reference)
        return reference

    return ENTITY_LIKE.sub(one, raw)


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


# -- getting them ------------------------------------------------------------------------


def plan_downloads(
    urls: Sequence[str], known: Mapping[str, ImageOutcome], present: set[str], now: datetime
) -> tuple[dict[str, str], list[str]]:
    """Which URLs have a copy (URL -> file name) and which to fetch: those never tried,
    those whose file is gone, those that failed more than RETRY_FAILED ago."""
    local: dict[str, str] = {}
    due: list[str] = []
    for url in urls:
        outcome = known.get(url)
        if outcome is None:
            due.append(url)
        elif outcome.name:
            if outcome.name in present:
                local[url] = outcome.name
            else:
                due.append(url)
        elif outcome.checked is None or now - outcome.checked >= RETRY_FAILED:
            due.append(url)
    return local, due


class ImageMirror:
    """Mirrors entries' images into `settings.folder`, remembering outcomes in `store`."""

    def __init__(
        self,
        settings: ImageSettings,
        store: Store,
        session: requests.Session,
        limits: FetchLimits,
    ) -> None:
        self.settings = settings
        self.store = store
        self.session = session
        self.limits = replace(limits, max_body=settings.max_size, size_setting="images.max_size")
        self._write_lock = threading.Lock()
        self._swept = False

    def localise_all(
        self, entries: Sequence[StoredEntry], sources: Mapping[str, Source]
    ) -> list[StoredEntry]:
        """The entries with the images that are (or now get) mirrored pointing at their
        copies. Raises OutputError only when the folder cannot be written."""
        wanted = [image_urls(stored, sources.get(stored.entry.source)) for stored in entries]
        reaches: dict[str, Reach] = {}
        of_source: dict[str, Reach] = {}  # one reach per source, not per entry
        for stored, found in zip(entries, wanted, strict=True):
            name = stored.entry.source
            if name not in of_source:
                of_source[name] = _source_reach(sources.get(name))
            reach = of_source[name]
            for url in found:
                known = reaches.get(url)  # held by several sources: what any of them may reach
                wider = reach if known is None else Reach(known.kinds | reach.kinds, known.origin)
                reaches[url] = wider
        if not reaches:
            return list(entries)
        names = self.mirror(reaches)
        local = {url: self.settings.url + name for url, name in names.items()}
        return [
            localise(stored, sources.get(stored.entry.source), local)
            if any(url in local for url in found)  # else nothing to rewrite: no second scan
            else stored
            for stored, found in zip(entries, wanted, strict=True)
        ]

    def mirror(self, reaches: Mapping[str, Reach]) -> dict[str, str]:
        """URL -> file name inside the folder, for each URL of `reaches` that has a copy now;
        each is fetched with its reach."""
        started = time.monotonic()
        urls = list(reaches)
        known = self.store.image_outcomes(urls)
        present = {
            outcome.name
            for outcome in known.values()
            if outcome.name and FILE_NAME.fullmatch(outcome.name) and self._has(outcome.name)
        }
        local, due = plan_downloads(urls, known, present, datetime.now(UTC))
        if not due:
            return local
        self._sweep_once()
        outcomes: list[ImageOutcome] = []
        stop = threading.Event()  # set when the folder cannot be written: stop fetching
        try:
            with ThreadPoolExecutor(THREADS, thread_name_prefix="images") as pool:
                lanes = [pool.submit(self._lane, lane, reaches, stop) for lane in _lanes(due)]
                failure: OutputError | None = None
                for lane in lanes:
                    try:
                        outcomes += lane.result()
                    except OutputError as exc:
                        stop.set()
                        failure = failure or exc
                if failure is not None:
                    raise failure
        finally:
            self.store.save_image_outcomes(outcomes)  # what was done is not done again
        local.update({o.url: o.name for o in outcomes if o.name})
        failed = [o for o in outcomes if not o.name]
        for outcome in failed:
            log.info("image not mirrored: url=%s error=%r", outcome.url, outcome.error)
        log.info(
            "images mirrored=%d failed=%d had=%d duration=%.2fs",
            len(outcomes) - len(failed),
            len(failed),
            len(urls) - len(due),
            time.monotonic() - started,
        )
        return local

    def _lane(
        self, urls: Sequence[str], reaches: Mapping[str, Reach], stop: threading.Event
    ) -> list[ImageOutcome]:
        """One host's share of the downloads, one after another."""
        done: list[ImageOutcome] = []
        for url in urls:
            if stop.is_set():
                break
            done.append(self._download(url, reaches[url]))
        return done

    def _download(self, url: str, reach: Reach) -> ImageOutcome:
        fetched = fetch_source(
            self.session, url, HttpState(), self.limits, accept=IMAGE_ACCEPT, reach=reach
        )
        now = datetime.now(UTC)
        if fetched.error:
            return ImageOutcome(url, None, fetched.error, now)
        if fetched.body is None:  # a 304 to a request that asked for no such thing
            return ImageOutcome(url, None, f"no image (HTTP {fetched.status})", now)
        extension = image_type(fetched.body)
        if extension is None:
            error = not_an_image(fetched.body, fetched.headers.get("content-type"))
            return ImageOutcome(url, None, error, now)
        name = image_file_name(fetched.body, extension)
        self._write(name, fetched.body)
        return ImageOutcome(url, name, None, now)

    def _write(self, name: str, data: bytes) -> None:
        """Write a file unless the same bytes are there already (same name, same size: the
        name is their hash). One at a time: two URLs may bring the same bytes at once."""
        path = self.settings.folder / name
        with self._write_lock:
            try:
                if path.stat().st_size == len(data):
                    return
            except OSError:
                pass
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, data, only_if_changed=False)
            except OSError as exc:
                raise OutputError(
                    f"cannot write mirrored image {path}: {exc.strerror or exc} "
                    "(check images.folder)"
                ) from exc

    def _has(self, name: str) -> bool:
        return (self.settings.folder / name).is_file()

    def _sweep_once(self) -> None:
        """Remove temp files a killed run left in the folder, once per process."""
        if self._swept:
            return
        self._swept = True
        folder: Path = self.settings.folder
        if folder.is_dir():
            for sub in folder.iterdir():
                if sub.is_dir() and len(sub.name) == 2:
                    try:
                        remove_stale_temps(sub)
                    except OSError as exc:
                        log.warning("cannot clear temp files in %s: %s", sub, exc)


def _source_reach(source: Source | None) -> Reach:
    """What an image in `source`'s entries may reach: what the source itself may (public
    addresses only for entries whose source is no longer configured)."""
    if source is None:
        return reach_for("")
    return reach_for(source.url, source.allow_private)


def _lanes(urls: Sequence[str]) -> list[list[str]]:
    """`urls` split into lanes of one host each, at most PER_HOST lanes per host."""
    by_host: dict[str, list[str]] = {}
    for url in urls:
        by_host.setdefault((urlsplit(url).hostname or "").lower(), []).append(url)
    lanes: list[list[str]] = []
    for same_host in by_host.values():
        lanes += [same_host[i::PER_HOST] for i in range(min(PER_HOST, len(same_host)))]
    return lanes
