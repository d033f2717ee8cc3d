"""Small text helpers shared by the steps: dates (RFC 3339, HTTP), slugs, XML-safe text,
Markdown-safe HTML.

A step never imports another step for a helper; what two of them need lives here, defined
once, so a date or a slug is spelled the same in every output.
"""

from __future__ import annotations

import email.utils
import re
import unicodedata
from datetime import UTC, datetime

# An HTTP weight (RFC 9110 12.4.2): 0 to 1, at most three decimals.
QVALUE = re.compile(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")
# Characters XML 1.0 does not allow (controls, lone surrogates, U+FFFE/FFFF): a single one in
# an entry's content would make every later merged feed unwritable, so they go at the door.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*(?=\n)")
LINE_BREAK = re.compile(r"\r\n?")
PRE_BLOCK = re.compile(r"<pre\b.*?</pre>", re.DOTALL | re.IGNORECASE)
FENCE = re.compile(r"^([ \t]*)([`~])(?=\2\2)", re.MULTILINE)
FENCE_REFERENCE = {"`": "&#96;", "~": "&#126;"}
# What a one-line text field (a title, an author, a category) cannot hold: controls, lone
# surrogates, noncharacters, and line and paragraph separators. Not `str.isprintable()`,
# which also refuses format characters (the zero-width non-joiner and joiner Persian words
# and emoji sequences are made of, direction marks, soft hyphens) and every character newer
# than this Python's Unicode tables (emoji of Unicode 15 and later).
PLANE_ENDS = "".join(
    chr(plane + 0xFFFE) + chr(plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)
)
NOT_TEXT = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufdd0-\ufdef{PLANE_ENDS}]")


def one_line(text: str) -> str:
    """`text` as one line: what is not text, and each run of white space, as one space."""
    return " ".join(NOT_TEXT.sub(" ", text).split())


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


def parse_http_date(value: str) -> datetime | None:
    """An HTTP date (RFC 9110 5.6.7, or the obsolete forms) as an aware datetime; None when
    it is not one. A date without a zone is taken as GMT, as HTTP dates always are."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def decimal_number(value: str | None, cap: int) -> int | None:
    """A number a server wrote (a header, a `<ttl>`), at most `cap`; None when it is not
    one. ASCII digits only: `isdigit` also takes `²`, which `int` refuses, and `int` reads
    Arabic-Indic digits, `+5` and `5_0`; and however many digits (`int` refuses more than
    4,300, and SQLite an integer past 2**63)."""
    digits = (value or "").strip()
    if not (digits.isascii() and digits.isdigit()):
        return None
    digits = digits.lstrip("0") or "0"
    return min(int(digits), cap) if len(digits) <= 15 else cap


def html_block(fragment: str) -> str:
    """`fragment` as one HTML block of Markdown, which a blank line would end (and what
    follows it be read as Markdown: `[x](javascript:…)` a live link), and in which Hexo
    reads a line opening with three backticks or tildes as a code fence:

    - a carriage return is a line break to Markdown renderers (marked turns it into one),
      so it is written as one before blank lines are looked for;
    - whitespace-only lines go, but inside `<pre>`, where they are the content, each is
      kept as a character reference to a line break;
    - a fence's first character is written as a character reference."""
    fragment = LINE_BREAK.sub("\n", fragment)
    if "<pre" in fragment:
        fragment = PRE_BLOCK.sub(lambda block: BLANK_LINES.sub("&#10;", block.group(0)), fragment)
    fragment = BLANK_LINES.sub("", fragment.strip("\n")).strip()
    return FENCE.sub(lambda fence: fence.group(1) + FENCE_REFERENCE[fence.group(2)], fragment)


def accept_weight(params: str) -> float:
    """The weight `q=` of one element of an Accept-* header, from its parameters; 1 when
    none is given, 0 (refused) when it is not a valid weight."""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            value = value.strip()
            return float(value) if QVALUE.fullmatch(value) else 0.0
    return 1.0
