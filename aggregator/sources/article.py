"""An entry's full text, from its page, for sources whose feed carries a summary only.

`fetch_article` GETs the page (`fetch_source`'s limits and defences, asking for HTML, with a
smaller size cap); `extract_article` turns its bytes into the article's main content as
sanitised HTML, or says why it cannot (`ArticleResult.reason`); `HostGate` keeps the fetches
of one host few and spaced out.

`extract_article` is pure and meant for a parser process. Its extractor is readability-lxml
(bench/article.py measures it against trafilatura: on the test pages it keeps figures,
captions and ordered lists, which trafilatura drops, honours `<base href>`, and finds nothing
in a page of links, where trafilatura returns the link texts as a paragraph). It is imported
on the first call, not with this module: ~12 MB and ~0.1 s once per process, over what lxml
and nh3 already cost there.

What extraction does, in order: decode (BOM, the Content-Type charset, `<meta charset>`,
UTF-8, else charset-normalizer; GB2312/GBK read as GB18030, their superset); parse with lxml;
make lazy images real (`data-src`, `data-original`, `data-srcset`, ... replace a placeholder
`src`/`srcset`); let readability pick the main content (it resolves links against the page
URL and its `<base href>`); `sanitize_html` against that same base (absolute `srcset`,
`referrerpolicy`, no scripts/styles/foreign iframes); then judge the result: too little text
(< `MIN_TEXT` characters, or no more than the feed's own content) or mostly link text is a
failure with a reason, and the caller keeps the feed's content.
"""

from __future__ import annotations

import codecs
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from aggregator.sources.sanitize import clean_html

if TYPE_CHECKING:
    import requests

    from aggregator.models import FetchResult
    from aggregator.sources.fetch import FetchLimits
    from aggregator.sources.reach import Reach

HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")
# A news page, scripts and all, is 50 KB-1.5 MB; readability's time grows with the page's
# elements (a 3 MB page of 50,000 small divs took 3.3 s), so a bigger one is not worth it.
MAX_PAGE_BYTES = 4 * 2**20
# What readability's time grows with, beyond the bytes: its passes over the page compute the
# text of every candidate element, so a page with many elements, or much text nested in many
# levels, costs seconds (40,000 paragraphs inside 250 divs, 2.5 MB: 4.2 s). News pages have
# 1,500-15,000 elements and some 5-100 KB of text once scripts and styles are gone; the
# slowest page within these limits we made took 1.3 s (15,500 paragraphs inside 250 divs).
MAX_ELEMENTS = 30_000
MAX_TEXT = 1_000_000
MIN_TEXT = 200  # characters of text below which an "article" is a teaser or a page of links
MAX_LINK_SHARE = 0.5  # more of the text in links than this: a list of links, not an article
DETECT_BYTES = 64 * 1024
META_BYTES = 4096  # where a <meta charset> is looked for (HTML says 1024; CMSs put it later)

CHARSET = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
META_TAG = re.compile(rb"<meta\b[^>]*>", re.IGNORECASE)
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# The lazy loaders' attributes for the real image, most common first.
LAZY_SRC = (
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-lazy",
    "data-actualsrc",
    "data-original-src",
    "data-hi-res-src",
    "data-echo",
)
LAZY_SRCSET = ("data-srcset", "data-lazy-srcset", "data-original-srcset")
# The encodings a page's label names loosely: its superset is what it really is.
SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "latin_1": "cp1252",
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
}


@dataclass(frozen=True)
class ArticleResult:
    """What extraction found: `html` (sanitised, ready for a document) or a `reason`."""

    html: str | None
    text_length: int = 0  # characters of text in `html`, whitespace runs counted as one
    title: str | None = None  # og:title or <title>, as the page has it
    image: str | None = None  # the first real image of `html`
    base_url: str | None = None  # what relative URLs were resolved against
    encoding: str | None = None  # what the body was decoded as
    reason: str | None = None  # why `html` is None

    @property
    def ok(self) -> bool:
        return self.html is not None


def extract_article(
    body: bytes, url: str, headers: Mapping[str, str], feed_text_length: int = 0
) -> ArticleResult:
    """The main content of the page `body` fetched from `url`; never raises for the page's
    fault. `headers` are the response's (any case); `feed_text_length` is the text length of
    the entry's own content, which the article must exceed to be worth having."""
    try:
        return _extract(body, url, headers, feed_text_length)
    except Exception as exc:  # the extractor's own failures on hostile markup
        return ArticleResult(html=None, reason=f"extraction failed: {type(exc).__name__}")


def _extract(
    body: bytes, url: str, headers: Mapping[str, str], feed_text_length: int
) -> ArticleResult:
    if not body or not body.strip():
        return ArticleResult(html=None, reason="empty page")
    if len(body) > MAX_PAGE_BYTES:
        return ArticleResult(
            html=None, reason=f"page too large to extract ({len(body) // 2**20} MiB)"
        )
    content_type = _header(headers, "content-type")
    text, encoding = decode_page(body, content_type)
    if "\0" in text[:META_BYTES] or text.count("\ufffd") > len(text) // 100:
        return ArticleResult(html=None, encoding=encoding, reason="not text (binary data)")
    document, base = _parse(text, url)
    if document is None:
        return ArticleResult(html=None, encoding=encoding, reason="not an HTML page")
    title = _title(document)
    for element in list(document.iter("script", "style", "template")):
        if element.getparent() is not None:  # not the root, nor inside one dropped before
            element.drop_tree()  # with its content, keeping the text after it
    elements = sum(1 for _ in document.iter())
    size = len(document.text_content()) if elements <= MAX_ELEMENTS else 0
    if elements > MAX_ELEMENTS or size > MAX_TEXT:
        reason = (
            f"page too big to extract ({elements} elements)"
            if elements > MAX_ELEMENTS
            else f"page too big to extract ({size} characters of text)"
        )
        return ArticleResult(html=None, title=title, encoding=encoding, reason=reason)
    real_lazy_images(document)
    summary = _readable(document, base)
    html, image = clean_html(summary, base) if summary else ("", None)
    length, link_length = _text_lengths(html)
    found = {"title": title, "base_url": base, "encoding": encoding, "text_length": length}
    if length < MIN_TEXT:
        return ArticleResult(html=None, **found, reason=f"too little text ({length} characters)")
    if length <= feed_text_length:
        reason = f"no more text than the feed's ({length} <= {feed_text_length} characters)"
        return ArticleResult(html=None, **found, reason=reason)
    if link_length > MAX_LINK_SHARE * length:
        return ArticleResult(html=None, **found, reason="mostly links (a list, not an article)")
    return ArticleResult(html=html, image=image, **found)


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value or ""
    return ""


def decode_page(body: bytes, content_type: str = "") -> tuple[str, str]:
    """`body` as text and the codec read it with: the byte-order mark, else the first
    declared charset (HTTP header, then `<meta>`) that decodes it, else UTF-8 if it decodes,
    else what charset-normalizer finds; a declared one that fits no better, with
    replacement characters, last."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, errors="replace"), codec
    declared = [
        name
        for name in (_charset(content_type.encode("latin-1", "replace")), _meta_charset(body))
        if name
    ]
    for codec in declared:
        try:
            return body.decode(codec), codec
        except UnicodeDecodeError:
            continue
    if "utf-8" not in declared:
        try:
            return body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    detected = _detect(body)
    codec = detected or (declared[0] if declared else "utf-8")
    return body.decode(codec, errors="replace"), codec


def _charset(text: bytes) -> str | None:
    match = CHARSET.search(text)
    return _codec(match.group(1).decode("ascii")) if match else None


def _meta_charset(body: bytes) -> str | None:
    for tag in META_TAG.findall(body[:META_BYTES]):
        name = _charset(tag)
        if name:
            return name
    return None


def _codec(label: str) -> str | None:
    """Python's codec for a charset label, widened to its superset; None if unknown or a
    UTF-16/32 label (a page that says so in ASCII bytes is not one)."""
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return SUPERSETS.get(name, name)


def _detect(body: bytes) -> str | None:
    import charset_normalizer  # only for a page that neither declares nor is UTF-8

    best = charset_normalizer.from_bytes(body[:DETECT_BYTES]).best()
    return _codec(best.encoding) if best is not None else None


def _parse(text: str, url: str) -> tuple[Any, str | None]:
    """The page's lxml tree and the base its relative URLs resolve against."""
    import lxml.html

    text = XML_DECLARATION.sub("", text, count=1)  # lxml refuses str with an encoding decl
    if not text.strip():
        return None, None
    try:
        document = lxml.html.document_fromstring(text)
    except Exception:  # lxml's ParserError on a document with nothing in it
        return None, None
    base = url if url.startswith(("http://", "https://")) else None
    for element in document.iter("base"):
        href = (element.get("href") or "").strip()
        if href:
            try:
                joined = urljoin(base or "", href)
            except ValueError:
                break
            if joined.startswith(("http://", "https://")) and urlsplit(joined).hostname:
                base = joined
        break
    return document, base


def _title(document: Any) -> str | None:
    for meta in document.iter("meta"):
        if meta.get("property") == "og:title" and (meta.get("content") or "").strip():
            return " ".join(meta.get("content").split())
    for element in document.iter("title"):
        text = " ".join(element.text_content().split())
        return text or None
    return None


def real_lazy_images(document: Any) -> None:
    """Point each lazily loaded image at its real source: a `data-src` (and the like)
    replaces `src`, which holds a placeholder until a script swaps it; `data-srcset`
    likewise `srcset`, in `<img>` and `<picture>`'s `<source>`."""
    for element in document.iter("img", "source"):
        attributes = element.attrib
        for name in LAZY_SRC:
            value = (attributes.get(name) or "").strip()
            if value and not value.startswith("data:") and element.tag == "img":
                attributes["src"] = value
                break
        for name in LAZY_SRCSET:
            value = (attributes.get(name) or "").strip()
            if value and not value.startswith("data:"):
                attributes["srcset"] = value
                break
        src = attributes.get("src") or ""
        if src.startswith("data:") and element.tag == "img":
            del attributes["src"]  # a placeholder no lazy attribute replaced


def _readable(document: Any, base: str | None) -> str:
    """readability's pick of the main content, as an HTML fragment. It gets the page as text:
    given a tree, its second, less ruthless try would start from what the first removed."""
    import lxml.html

    page = lxml.html.tostring(document, encoding="unicode")
    return _document_class()(page, url=base).summary(html_partial=True) or ""


_DOCUMENT_CLASS: Any = None


def _document_class() -> Any:
    """readability's Document without its attribute cleaning, imported on first use. That
    cleaning is a regex loop over the serialised article, one pass per attribute it removes,
    whose count the page chooses; the sanitiser removes what it does (styles, event
    handlers) anyway."""
    global _DOCUMENT_CLASS
    if _DOCUMENT_CLASS is None:
        import logging

        from lxml.etree import tounicode
        from readability import Document

        # It logs a traceback for every page it cannot read; the result's reason says it.
        logging.getLogger("readability.readability").setLevel(logging.CRITICAL)

        class PlainDocument(Document):
            def get_clean_html(self) -> str:
                return tounicode(self.html, method="html")

        _DOCUMENT_CLASS = PlainDocument
    return _DOCUMENT_CLASS


def _text_lengths(html: str) -> tuple[int, int]:
    """Characters of text in `html` and of them in links, whitespace runs counted as one."""
    if not html:
        return 0, 0
    import lxml.html

    fragment = lxml.html.fragment_fromstring(html, create_parent="div")
    text = " ".join(fragment.text_content().split())
    links = sum(len(" ".join(a.text_content().split())) for a in fragment.iter("a"))
    return len(text), links


def fetch_article(
    session: requests.Session,
    url: str,
    limits: FetchLimits,
    reach: Reach,
) -> FetchResult:
    """GET an entry's page with `fetch_source` (its timeouts, redirect limit, address checks
    and decompressed-size cap), asking for HTML, unconditionally, with the size cap at most
    `MAX_PAGE_BYTES`. A body that is not a web page (an image, a PDF, JSON) is an error.
    `reach` is what the fetch and its redirects may connect to: the entry's source's
    (`reach_for(source_url, allow_private)`), never the link's own, which would let a feed
    send us to any address it names (`reach_for("http://127.0.0.1/...")` allows loopback)."""
    from aggregator.models import HttpState
    from aggregator.sources.fetch import fetch_source

    if limits.max_body > MAX_PAGE_BYTES:
        limits = replace(limits, max_body=MAX_PAGE_BYTES, size_setting="article pages")
    result = fetch_source(session, url, HttpState(), limits, accept=HTML_ACCEPT, reach=reach)
    if result.body is not None:
        kind = result.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind and not kind.startswith(HTML_TYPES):
            return replace(result, body=None, error=f"not a web page ({kind[:60]})")
    return result


class HostGate:
    """Politeness per host, for threads fetching pages: at most `per_host` requests to one
    host at a time, and their starts at least `interval` seconds apart.

        with gate.slot(url):
            result = fetch_article(session, url, limits)

    A slot of a busy host waits (hosts do not hold each other up); `slot(url, timeout=...)`
    raises TimeoutError when none came within `timeout` seconds. Hosts are compared by
    name, lower case, without the port."""

    def __init__(self, per_host: int = 2, interval: float = 1.0) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.per_host = per_host
        self.interval = max(0.0, interval)
        self._changed = threading.Condition()
        self._in_flight: dict[str, int] = {}
        self._next_start: dict[str, float] = {}

    @contextmanager
    def slot(self, url: str, timeout: float | None = None) -> Iterator[None]:
        host = host_of(url)
        self._acquire(host, timeout)
        try:
            yield
        finally:
            self._release(host)

    def _acquire(self, host: str, timeout: float | None) -> None:
        give_up = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                busy = self._in_flight.get(host, 0) >= self.per_host
                wait = 0.0 if busy else self._next_start.get(host, 0.0) - now
                if not busy and wait <= 0:
                    break
                if give_up is not None and now >= give_up:
                    raise TimeoutError(f"no free slot for {host} within {timeout:g} s")
                # Busy: until a release; too soon: until the host's next start.
                until = None if busy else wait
                if give_up is not None:
                    until = give_up - now if until is None else min(until, give_up - now)
                self._changed.wait(until)
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self._next_start[host] = now + self.interval
            if len(self._next_start) > 1024:
                self._forget_idle(now)

    def _release(self, host: str) -> None:
        with self._changed:
            left = self._in_flight[host] - 1
            if left:
                self._in_flight[host] = left
            else:
                del self._in_flight[host]
            self._changed.notify_all()

    def _forget_idle(self, now: float) -> None:
        """Drop hosts with nothing in flight whose interval has passed: the gate stays as
        small as the hosts being fetched."""
        for host, start in list(self._next_start.items()):
            if start <= now and host not in self._in_flight:
                del self._next_start[host]


def host_of(url: str) -> str:
    """The host a URL's requests go to, as HostGate compares them."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
