"""How much work an HTML fragment can make an HTML parser do, found in one linear pass.

nh3 (html5ever) and lexbor follow the HTML parsing algorithm, two parts of which cost more
than the input's length. "In scope" checks walk the stack of open elements, so every tag
costs as much as the nesting is deep (40,000 nested `<div>` took the two 6 s). And after a
block closes, the formatting elements still active are opened again for the next text
("reconstruct the active formatting elements"): 200 distinct unclosed `<b>` before many
short paragraphs made nh3 turn 130 KB into 22 MB, and lexbor into 49 MB. Real articles nest
a few dozen deep and leave a few formatting elements open at most; a fragment beyond the
limits below is not an article, and `sanitize` keeps its text only.

The pass reads tags as the HTML tokenizer does where it matters (quoted attribute values,
comments, raw text) and errs towards counting more: a start tag it cannot be sure of is
counted, an end tag it cannot be sure of is not. Tables, SVG and the adoption agency are
approximated; a property test holds lexbor's actual tree to within a factor of four of
what the pass counts. It runs only on fragments with enough tags to reach a limit at all.
"""

from __future__ import annotations

import functools
import re

MAX_OPEN_ELEMENTS = 256
MAX_ACTIVE_FORMATTING = 12
# Elements reopened in all, beyond one per 4 characters of input (which at most doubles
# the output): what a fragment under the other two limits with at most 256 tags could reach,
# so that shorter ones need not be read.
REOPEN_BUDGET = 2 * (MAX_OPEN_ELEMENTS + 1) * MAX_ACTIVE_FORMATTING

FORMATTING = frozenset(
    {"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong",
     "tt", "u"}
)  # fmt: skip
VOID = frozenset(
    {"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
     "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr"}
)  # fmt: skip
# A start tag of these closes an open one of the same name on top of the stack.
SIBLINGS = frozenset(
    {"option", "optgroup", "tr", "td", "th", "rb", "rp", "rt", "rtc", "tbody", "thead",
     "tfoot"}
)  # fmt: skip
# A start tag of these closes an open <p> in scope, and whatever is open inside it.
CLOSES_P = frozenset(
    {"address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
     "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu",
     "nav", "ol", "p", "search", "section", "summary", "ul", "h1", "h2", "h3", "h4", "h5",
     "h6", "pre", "listing", "form", "li", "dd", "dt", "plaintext", "hr", "xmp"}
)  # fmt: skip
LIST_ITEMS = {"li": ("li",), "dd": ("dd", "dt"), "dt": ("dd", "dt")}
# Table parts close in "table scope", which only these limit; a new cell or row closes the
# open one.
TABLE_SCOPE = frozenset({"html", "table", "template"})
TABLE_PARTS = frozenset(
    {"table", "caption", "colgroup", "tbody", "thead", "tfoot", "tr", "td", "th"}
)
TABLE_STARTS = {"td": ("td", "th"), "th": ("td", "th"), "tr": ("tr", "td", "th")}
# The algorithm's "special" elements (and a few more): a new list item closes an open one
# only across elements not among these.
SPECIAL = frozenset(
    {"address", "applet", "area", "article", "aside", "base", "basefont", "bgsound",
     "blockquote", "body", "br", "button", "caption", "center", "col", "colgroup", "dd",
     "details", "dialog", "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption",
     "figure", "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6",
     "head", "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li",
     "link", "listing", "main", "marquee", "menu", "meta", "nav", "noembed", "noframes",
     "noscript", "object", "ol", "p", "param", "plaintext", "pre", "script", "search",
     "section", "select", "source", "style", "summary", "table", "tbody", "td", "template",
     "textarea", "tfoot", "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp", "svg",
     "math", "mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc"}
)  # fmt: skip
# Start tags before which the algorithm does not reopen formatting elements (the others,
# and text, do): the element lands outside what is reopened next.
NO_REOPEN = (CLOSES_P - {"xmp"}) | {
    "html", "head", "body", "base", "basefont", "bgsound", "link", "meta", "noframes",
    "script", "style", "template", "title", "frameset", "frame", "table", "caption", "col",
    "colgroup", "tbody", "thead", "tfoot", "tr", "td", "th", "param", "source", "track",
    "hr", "textarea", "iframe", "noembed", "noscript", "rb", "rtc", "rp", "rt",
}  # fmt: skip
# An end tag does not reach past these: the algorithm's scopes (its default, button and
# list item ones together, so that an end tag here closes no more than there).
SCOPE_LIMITS = frozenset(
    {"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "svg",
     "math", "foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext",
     "annotation-xml", "button", "ol", "ul", "select"}
)  # fmt: skip
# End tags the algorithm closes through any element in scope; any other end tag stops at
# the first "special" element.
BLOCK_ENDS = CLOSES_P | {"applet", "button", "marquee", "object", "select"} | FORMATTING
OTHER_END_LIMITS = SCOPE_LIMITS | SPECIAL
# SVG and MathML have rules of their own (elements break out of them): inside, as in raw
# text, start tags count and end tags do not.
FOREIGN = frozenset({"svg", "math"})
# Their content is text to the tokenizer in HTML, markup inside <svg>.
RAW_TEXT = frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
     "noscript", "plaintext"}
)  # fmt: skip

_FORMATTING_START = re.compile(
    rf"<(?:{'|'.join(sorted(FORMATTING, key=len, reverse=True))})[\t\n\f\r />]", re.IGNORECASE
)
# A start or end tag; in its attributes a quote opens a value only right after `=`.
# Possessive, so that a tag with no `>` fails at once instead of backtracking.
_TAG = re.compile(
    r"""<(/?)([A-Za-z][^\t\n\f\r />]*)((?:=[\t\n\f\r ]*"[^"]*"|=[\t\n\f\r ]*'[^']*'|[^>])*+)>"""
)
_TAG_NAME = re.compile(r"</?([A-Za-z][^\t\n\f\r />]*)")
_COMMENT_END = re.compile(r"--!?>")


@functools.cache
def _raw_text_end(name: str) -> re.Pattern[str]:
    return re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE)


def within_bounds(fragment: str) -> bool:
    """Whether an HTML parser's work on `fragment` stays in proportion to its length: at
    most MAX_OPEN_ELEMENTS elements open at once, MAX_ACTIVE_FORMATTING formatting elements
    waiting to be reopened, and no more elements reopened than REOPEN_BUDGET allows."""
    if (
        fragment.count("<") <= MAX_OPEN_ELEMENTS
        and len(_FORMATTING_START.findall(fragment)) <= MAX_ACTIVE_FORMATTING
    ):
        return True  # too few tags to reach any limit, however they are arranged
    return _Model(len(fragment)).read(fragment)


class _Formatting:
    """An entry of the list of active formatting elements."""

    __slots__ = ("attributes", "listed", "name", "open")

    def __init__(self, name: str, attributes: str) -> None:
        self.name, self.attributes = name, attributes
        self.open = self.listed = True


class _Model:
    """The stack of open elements and the list of active formatting elements, kept as the
    algorithm keeps them where that makes the count larger, loosely elsewhere."""

    def __init__(self, length: int) -> None:
        self.names: list[str] = []  # the stack of open elements
        self.entries: list[_Formatting | None] = []  # beside it: formatting entries
        self.formatting: list[_Formatting] = []
        self.closed_but_listed = 0  # entries the next text or tag will reopen
        self.allowed_reopens = REOPEN_BUDGET + length // 4
        self.reopened = self.deepest = 0  # deepest: what tests compare with the parser

    def read(self, fragment: str) -> bool:
        raw_until = -1  # inside raw text up to here: end tags are not believed
        lowered = ""
        position = fragment.find("<")
        if position > 0:
            self.reopen()
        while position >= 0:
            following = fragment[position + 1 : position + 2]
            if position < raw_until:
                # Raw text ("<!--" in a <textarea> is text) or SVG: no comment or quoted
                # attribute may hide what follows; every start tag counts as opened.
                name = _TAG_NAME.match(fragment, position)
                if name is not None and following != "/":
                    self.open_unsure(name.group(1).lower(), position)
                position = fragment.find("<", position + 1)
                if self.beyond_limits():
                    return False
                continue
            if following in "!?" or (
                following == "/" and not fragment[position + 2 : position + 3].isalpha()
            ):
                end = _skip_declaration(fragment, position)
                if end < 0:
                    return True  # the rest is a comment: no more tags
                position = fragment.find("<", end)
                continue
            tag = _TAG.match(fragment, position)
            if tag is None:
                if following.isalpha():
                    return True  # a tag the input ends in: no more tags
                self.reopen()  # "<" as text
                position = fragment.find("<", position + 1)
                continue
            end = tag.end()
            position = fragment.find("<", end)
            name = tag.group(2).lower()
            if tag.group(1):
                if end > raw_until:
                    self.end_tag(name)
            else:
                self.start_tag(name, tag.group(3))
                if name in RAW_TEXT:
                    closing = _raw_text_end(name).search(fragment, end)
                    raw_until = max(raw_until, closing.start() if closing else len(fragment))
                elif name in FOREIGN:
                    # SVG and MathML follow other rules (elements break out of them, end
                    # tags close differently): up to the last </svg>, end tags are not
                    # believed, so everything opened in there counts as still open.
                    lowered = lowered or fragment.lower()
                    closing = lowered.rfind(f"</{name}")
                    raw_until = max(raw_until, closing if closing >= 0 else len(fragment))
            if position != end:  # text follows
                self.reopen()
            if self.beyond_limits():
                return False
        return True

    def beyond_limits(self) -> bool:
        return (
            len(self.names) > MAX_OPEN_ELEMENTS
            or len(self.formatting) > MAX_ACTIVE_FORMATTING
            or self.reopened > self.allowed_reopens
        )

    def open_unsure(self, name: str, position: int) -> None:
        """A start tag inside raw text or SVG: opened, closing nothing, and if a formatting
        element, listed as unlike any other (no "Noah's Ark" or <a> rule takes it out)."""
        if name in VOID:
            return
        entry = None
        if name in FORMATTING:
            entry = _Formatting(name, f"@{position}")
            self.formatting.append(entry)
        self.push(name, entry)

    def start_tag(self, name: str, attributes: str) -> None:
        """What a start tag closes, then the formatting elements it reopens, then itself."""
        names = self.names
        if name in TABLE_PARTS and name != "table" and "table" not in names:
            return  # a table's part outside any table: ignored
        if name in SIBLINGS and names and names[-1] == name:
            return  # replaces the one open: no deeper
        if name == "table":
            self.close_open_table()
        elif name == "button":
            self.close("button")
        elif name in LIST_ITEMS:
            self.close_list_item(LIST_ITEMS[name])
        elif name in TABLE_STARTS:
            self.close_among(TABLE_STARTS[name], TABLE_SCOPE)
            if names and names[-1] == "table":  # the rows' <tbody>, a cell's <tr> are implied
                for implied in ("tbody",) if name == "tr" else ("tbody", "tr"):
                    self.push(implied, None)
        if name in CLOSES_P:
            self.close("p")
        if name not in NO_REOPEN:
            self.reopen()
        if name in VOID:
            return
        entry = None
        if name in FORMATTING:
            entry = _Formatting(name, attributes.strip().lower())
            self.add_formatting(entry)
        self.push(name, entry)

    def push(self, name: str, entry: _Formatting | None) -> None:
        self.names.append(name)
        self.entries.append(entry)
        self.deepest = max(self.deepest, len(self.names))

    def end_tag(self, name: str) -> None:
        """Close `name` if it is open in scope. A formatting element leaves the list only
        then, or when it is not open at all, as in the adoption agency; when a block was
        opened inside it, the agency keeps that block open and the element listed."""
        if name in FORMATTING:
            names = self.names
            for index in range(len(names) - 1, -1, -1):
                if names[index] == name:
                    if any(above in SPECIAL for above in names[index + 1 :]):
                        return
                    break
        closed = self.close(name)
        if name in FORMATTING and (closed or name not in self.names):
            for entry in reversed(self.formatting):
                if entry.name == name:
                    self.unlist(entry)
                    break

    def close(self, name: str) -> bool:
        """Pop up to and including `name` when it is open in scope; whether it was."""
        if name in TABLE_PARTS:
            return self.close_among((name,), TABLE_SCOPE)
        names = self.names
        limits = SCOPE_LIMITS if name in BLOCK_ENDS else OTHER_END_LIMITS
        passable = ("option", "optgroup") if name == "select" else None
        for index in range(len(names) - 1, -1, -1):
            current = names[index]
            if current == name:
                self.pop_to(index)
                return True
            if current in limits or (passable is not None and current not in passable):
                return False
        return False

    def close_among(self, candidates: tuple[str, ...], limits: frozenset[str]) -> bool:
        names = self.names
        for index in range(len(names) - 1, -1, -1):
            current = names[index]
            if current in candidates:
                self.pop_to(index)
                return True
            if current in limits:
                return False
        return False

    def close_open_table(self) -> None:
        """A table started directly in a table (not in a cell) ends the open one."""
        names = self.names
        for index in range(len(names) - 1, -1, -1):
            current = names[index]
            if current == "table":
                self.pop_to(index)
                return
            if current in ("td", "th", "caption", "html", "template"):
                return

    def close_list_item(self, candidates: tuple[str, ...]) -> None:
        names = self.names
        for index in range(len(names) - 1, -1, -1):
            current = names[index]
            if current in candidates:
                self.pop_to(index)
                return
            if current in SPECIAL and current not in ("address", "div", "p"):
                return

    def pop_to(self, index: int) -> None:
        for entry in self.entries[index:]:
            if entry is not None:
                entry.open = False
                if entry.listed:
                    self.closed_but_listed += 1
        del self.names[index:], self.entries[index:]

    def add_formatting(self, entry: _Formatting) -> None:
        """A new <a> or <nobr> ends the listed one; at most three identical entries stay
        (the algorithm's "Noah's Ark" clause)."""
        if entry.name in ("a", "nobr"):
            for other in [e for e in self.formatting if e.name == entry.name]:
                self.unlist(other)
        key = (entry.name, entry.attributes)
        same = [e for e in self.formatting if (e.name, e.attributes) == key]
        if len(same) >= 3:
            self.unlist(same[0])
        self.formatting.append(entry)

    def unlist(self, entry: _Formatting) -> None:
        self.formatting.remove(entry)
        entry.listed = False
        if not entry.open:
            self.closed_but_listed -= 1

    def reopen(self) -> None:
        """Text and most tags open again the listed formatting elements that were closed."""
        if not self.closed_but_listed:
            return
        for entry in self.formatting:
            if not entry.open:
                entry.open = True
                self.push(entry.name, entry)
                self.reopened += 1
        self.closed_but_listed = 0


def _skip_declaration(fragment: str, position: int) -> int:
    """Where a comment, doctype, processing instruction, CDATA section (a bogus comment
    outside SVG and MathML, whose content is read as raw text here anyway) or `</` not
    followed by a letter at `position` ends; -1 when it runs to the end."""
    if fragment.startswith("<!--", position):
        if fragment.startswith(("<!-->", "<!--->"), position):
            return fragment.index(">", position) + 1
        end = _COMMENT_END.search(fragment, position + 4)
        return end.end() if end else -1
    end = fragment.find(">", position)
    return end + 1 if end >= 0 else -1


def text_of(fragment: str) -> str:
    """The text of markup that is too much for an HTML parser, without parsing it: tags,
    comments and declarations dropped, in one linear pass."""
    return _ANY_TAG.sub(" ", fragment)


_ANY_TAG = re.compile(r"<[A-Za-z/!?][^<>]*+>?")
