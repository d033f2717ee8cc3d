"""Per-source filters: which parsed entries a source keeps; pure, so tested without a feed.

The rule, as documented for config.yaml: each pattern of `include` and `exclude` is a regular
expression searched anywhere (case-sensitive unless it starts with `(?i)`) in the entry's
title, in the plain text of its content, and in each of its own categories. With `include`,
an entry is kept only when some include pattern matches; any matching `exclude` pattern drops
it, include or not. Filters decide what is stored: an entry already stored stays when a
filter is added later.

Patterns run on RE2 (google-re2), whose time is linear in the text whatever the pattern:
with Python's `re`, `(a+)+$` against a title of 27 `a`s and a `!` held the interpreter (and
every thread of the daemon, `/healthz` too) for 12 s, and each further letter doubles that.
RE2 cannot backtrack, so it has no backreferences or lookaround; `compile_filter` refuses
those, and patterns too large to run in bounded memory, when the config is read. Python's
spellings are kept: `\\d`, `\\w`, `\\s` (and `\\D`, `\\W`, `\\S`) mean what they mean in
Python, Unicode digits, letters and spaces (in RE2 they are ASCII), `\\Z` is the end of the
text and `\\uXXXX`, `\\UXXXXXXXX`, `\\N{name}` name characters. `\\b` and `\\B` are RE2's:
a boundary between an ASCII letter, digit or `_` and anything else.

`keep: N` caps what a source keeps: after each poll that stored something, all but its N
newest entries (by date: published, else updated, else first seen) are deleted with their
documents. Of a fetched feed only the N newest entries are considered at all, so entries
the cap would delete at once are not stored and deleted again on every poll.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from aggregator.models import Entry, Source
from aggregator.sources.sanitize import plain_text

if TYPE_CHECKING:
    import re2

# Python's classes for str patterns, in RE2's syntax: \w is str.isalnum() or _, \d a decimal
# digit, \s str.isspace() (\t-\r, \x1c-\x1f, space, U+0085 and Unicode's separators).
WORD, DIGIT, SPACE = r"\p{L}\p{N}_", r"\p{Nd}", r"\t-\r\x1c-\x20\x{85}\p{Z}"
CLASSES = {"w": f"[{WORD}]", "W": f"[^{WORD}]", "d": DIGIT, "D": r"\P{Nd}",
           "s": f"[{SPACE}]", "S": f"[^{SPACE}]"}  # fmt: skip
IN_BRACKETS = {"w": WORD, "d": DIGIT, "D": r"\P{Nd}", "s": SPACE}  # \W, \S: none in RE2
HEX_ESCAPES = {"u": 4, "U": 8}
LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")
BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
# RE2 compiles a pattern into at most this much memory; a larger one is refused.
FILTER_MEMORY = 8 * 2**20


@cache
def _options() -> re2.Options:
    import re2

    options = re2.Options()
    options.log_errors = False  # errors are ours to report, not RE2's to print on stderr
    options.max_mem = FILTER_MEMORY
    return options


@cache  # bounded by the config: every pattern stays compiled
def compile_filter(pattern: str) -> re2._Regexp:
    """The compiled filter; ValueError, in words, for a pattern RE2 cannot run. RE2 is
    imported here, when a filter is first compiled: most configs have none, and loading its
    library is ~8 ms of every `update`'s start."""
    import re2

    options = _options()
    try:
        return re2.compile(_as_re2(pattern), options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else str(exc)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        if any(f"invalid perl operator: {group}" in reason for group in LOOKAROUND):
            reason += " (lookaround is not supported: filters run in linear time)"
        elif BACKREFERENCE.search(pattern):
            reason += " (backreferences are not supported: filters run in linear time)"
        raise ValueError(reason) from None


def _as_re2(pattern: str) -> str:
    """`pattern` with Python's escapes written as RE2 reads them (see the module's doc)."""
    out: list[str] = []
    in_brackets = False
    index, length = 0, len(pattern)
    while index < length:
        char = pattern[index]
        if char == "\\" and index + 1 < length:
            letter = pattern[index + 1]
            index += 2
            if letter in HEX_ESCAPES:
                digits = pattern[index : index + HEX_ESCAPES[letter]]
                if len(digits) != HEX_ESCAPES[letter] or not _is_hex(digits):
                    raise ValueError(f"bad escape \\{letter}{digits}")
                out.append(f"\\x{{{digits}}}")
                index += len(digits)
            elif letter == "N" and pattern[index : index + 1] == "{":
                end = pattern.find("}", index)
                try:
                    found = unicodedata.lookup(pattern[index + 1 : end]) if end > 0 else ""
                except KeyError:
                    found = ""
                if not found:
                    raise ValueError(f"bad character name in \\N{pattern[index : end + 1]}")
                out.append(f"\\x{{{ord(found):x}}}")
                index = end + 1
            elif in_brackets and letter in "WS":
                raise ValueError(f"\\{letter} inside [...] is not supported; write [^...]")
            elif letter in CLASSES:
                out.append(IN_BRACKETS[letter] if in_brackets else CLASSES[letter])
            elif letter == "Z" and not in_brackets:
                out.append("\\z")
            else:
                out.append(char + letter)
            continue
        if char == "[" and not in_brackets:
            in_brackets = True
            out.append(char)
            index += 1
            # A ] right after [ or [^ is a literal one.
            for opener in ("^", "]"):
                if pattern[index : index + 1] == opener:
                    out.append(opener)
                    index += 1
            continue
        if char == "]" and in_brackets:
            in_brackets = False
        out.append(char)
        index += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdefABCDEF" for char in text)


def select_entries(
    entries: Sequence[Entry], source: Source, now: datetime
) -> tuple[tuple[Entry, ...], int]:
    """(entries the source keeps, in feed order; how many its filters and cap dropped)."""
    kept = tuple(entries)
    if source.include or source.exclude:
        kept = tuple(entry for entry in kept if keeps(entry, source.include, source.exclude))
    if source.keep is not None and len(kept) > source.keep:
        # sorted() is stable, so entries of the same date keep their feed order.
        by_date = sorted(kept, key=lambda e: e.published or e.updated or now, reverse=True)
        chosen = {id(entry) for entry in by_date[: source.keep]}
        kept = tuple(entry for entry in kept if id(entry) in chosen)
    return kept, len(entries) - len(kept)


def keeps(entry: Entry, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether one entry passes an include / exclude pair of pattern lists."""
    # UTF-8 once per entry: RE2 reads bytes, and would encode each text for each pattern.
    fields = [text.encode("utf-8") for text in (entry.title, plain_text(entry.content))]
    fields.extend(category.encode("utf-8") for category in entry.categories)
    if include and not _any_match(include, fields):
        return False
    return not (exclude and _any_match(exclude, fields))


def _any_match(patterns: Iterable[str], fields: Sequence[bytes]) -> bool:
    # Each pattern was compiled once when the config was read (the cache keeps it).
    return any(compile_filter(pattern).search(text) for pattern in patterns for text in fields)
