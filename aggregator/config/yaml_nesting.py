"""How deeply a YAML text nests, measured before any YAML parser sees it.

ruamel.yaml's C loader builds nested collections by recursion on the C stack: 30,000 `[`
crashed the process (SIGSEGV, exit 139, no message), and with it a daemon that reloaded such
a file. Real configs nest four or five levels, so config.py refuses more than MAX_NESTING,
found by this one linear pass that follows YAML's tokens as far as nesting goes:

- flow collections: a `[` or `{` that begins a node opens one, `]` and `}` close;
- block collections: indentation, and each `- `, `? ` and `key: ` of a line at its column
  (a sequence written at its key's indentation is a level of its own);
- text, whatever brackets it holds: quoted scalars ('…' with '' inside, "…" with \\ escapes),
  comments (`#` at a line's start or after a space), plain scalars, block scalars (`|`, `>`:
  the lines indented more than the collection that holds them);
- line breaks are those of YAML 1.1, which libyaml reads: \\n, \\r, U+0085, U+2028, U+2029.

Where unsure it counts more, never less. As a second guard, config.py reads libyaml's own
events (its parser keeps its stack on the heap) before composing a tree.
"""

from __future__ import annotations

import re

MAX_NESTING = 50  # levels of collections; a config has 4 or 5
LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
BLANK = " \t"
# Inside a plain scalar (block context) only these end it: a comment, or `: ` after a key.
PLAIN_STOP = re.compile(r"(?<=[ \t])#|:(?=[ \t]|$)")
# Inside a plain scalar in a flow collection: what ends it (libyaml's rules).
FLOW_PLAIN_STOP = re.compile(r"[\[\]{},]|:(?=[ \t,\[\]{}]|$)|(?<=[ \t])#")
# Properties before a node, as libyaml reads them: an anchor's name, a tag's URI characters
# (brackets and commas among them); an alias is a node of its own.
PROPERTY = re.compile(r"[&*][0-9A-Za-z_-]*|![0-9A-Za-z_;/?:@&=+$,.!~*'()\[\]%<>#-]*")


def nesting_beyond(text: str, limit: int = MAX_NESTING) -> int | None:
    """The line (from 1) where `text` first nests more than `limit` collections deep."""
    scanner = _Scanner(limit)
    text = text.removeprefix("\ufeff")  # a byte order mark, which libyaml skips
    for number, line in enumerate(LINE_BREAK.split(text), 1):
        if scanner.line(line):
            return number
    return None


class _Scanner:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.blocks: list[tuple[int, bool]] = []  # (column, is a sequence) of open blocks
        self.flow: list[str] = []  # open flow collections, "[" or "{"
        self.quote = ""  # the quote of a quoted scalar that goes on to the next line
        self.at_node = True  # whether a node may begin here (carried inside flow)
        self.scalar: tuple[int, int | None] | None = None  # block scalar: (parent, indent)
        self.plain: int | None = None  # a plain scalar goes on in lines indented beyond this

    def deep(self) -> bool:
        # A flow sequence counts twice: an entry `key: value` in it is a mapping of its own,
        # and the key may be a collection that opened before its `:` is seen, `[[a]: b]`.
        return len(self.blocks) + len(self.flow) + self.flow.count("[") > self.limit

    def line(self, line: str) -> bool:
        """Take one line; True when it nests beyond the limit."""
        content = line.lstrip(BLANK + "\ufeff")  # libyaml skips a BOM at a line's start
        spaces = len(line) - len(line.lstrip(" "))
        start = len(line) - len(content)
        if line[:3] in ("---", "...") and line[3:4] in ("", " ", "\t"):
            # A document's start or end: whatever was open is over (or an error).
            self.blocks.clear()
            self.flow, self.quote, self.scalar, self.plain = [], "", None, None
            return self._scan(line, 3, True)
        if self.scalar is not None:
            parent, indent = self.scalar
            if not content:
                return False
            if indent is None and spaces > parent:
                indent = spaces
                self.scalar = (parent, indent)
            if indent is not None and spaces >= indent:
                return False
            self.scalar = None
        if self.quote or self.flow:
            return self._scan(line, start, self.at_node)
        if not content:
            return False
        if content.startswith("#"):
            self.plain = None
            return False
        if self.plain is not None:
            if spaces > self.plain:  # the plain scalar of the line before goes on
                return self._scan(line, start, False, self.plain)
            self.plain = None
        self._indent(start, content)
        return self.deep() or self._scan(line, start, True)

    def _indent(self, column: int, content: str) -> None:
        """Close the blocks a line at `column` leaves; open the one it begins."""
        blocks = self.blocks
        while blocks and blocks[-1][0] > column:
            blocks.pop()
        item = content[:1] == "-" and content[1:2] in ("", " ", "\t")
        if not blocks or blocks[-1][0] < column:
            blocks.append((column, item))
        elif item and not blocks[-1][1]:
            blocks.append((column, True))  # a sequence at its key's indentation
        elif not item and blocks[-1][1] and len(blocks) > 1 and blocks[-2][0] == column:
            blocks.pop()  # that sequence ended; the mapping goes on

    def _open(self, column: int, sequence: bool) -> bool:
        """A block collection begins at `column` (if deeper than the last); True: too deep."""
        if not self.blocks or self.blocks[-1][0] < column:
            self.blocks.append((column, sequence))
        return self.deep()

    def _scan(self, line: str, index: int, at_node: bool, plain: int | None = None) -> bool:
        """Follow one line from `index`. `plain`: the column of the collection holding the
        plain scalar being read (None: not in one)."""
        length = len(line)
        node = index  # where the current node began: a mapping's column when `:` follows
        parent: int | None = None  # the collection a node on this line belongs to
        closed = False  # the last token closed a quoted scalar or a flow collection
        properties = False  # an anchor or tag began the node to come
        while index < length:
            if self.quote:
                index = self._end_quote(line, index)
                closed = not self.quote
                continue
            if plain is not None and not self.flow:  # text until a comment or `: `
                found = PLAIN_STOP.search(line, index)
                if found is None:
                    break
                index = found.start()
                if line[index] == "#":
                    plain = None
                    break
                plain = None  # `key: `: what came before was a key
                if self._open(node, False):
                    return True
                parent, at_node = node, True
                index += 1
                continue
            char = line[index]
            if char in BLANK:
                index += 1
                continue
            if char == "#" and (index == 0 or line[index - 1] in BLANK):
                break
            if at_node and char in "&!*":  # an anchor or a tag before its node, an alias
                node = node if properties else index  # the node begins with them
                properties = char != "*"
                at_node = properties
                found = PROPERTY.match(line, index)
                index = found.end() if found else index + 1
                continue
            if self.flow:
                after_key = closed  # `{"a":b}`: a `:` right after a quoted key is one
                closed = False
                if char in "[{":
                    self.flow.append(char)
                    if self.deep():
                        return True
                    at_node = True
                elif char in "]}":
                    if self.flow[-1] == ("[" if char == "]" else "{"):
                        self.flow.pop()  # (a mismatched one is an error: kept open)
                    at_node, closed = False, True
                elif (
                    char == ","
                    or (char in "?:" and at_node)
                    or (char == ":" and (after_key or FLOW_PLAIN_STOP.match(line, index)))
                ):
                    at_node = True
                elif at_node and char in "'\"":
                    self.quote, at_node = char, False
                else:  # a plain scalar: on to what ends it
                    at_node = False
                    found = FLOW_PLAIN_STOP.search(line, index + 1)
                    index = found.start() if found else length
                    continue
                index += 1
                continue
            blank_after = line[index + 1 : index + 2] in ("", " ", "\t")
            if char in "-?:" and blank_after and (at_node or char == ":"):
                column = node if char == ":" and not at_node else index  # `- : x` too
                if self._open(column, char == "-"):
                    return True
                parent, at_node = column, True
            elif not at_node:
                pass  # after a quoted scalar or a flow collection, before its `: `
            elif char in "[{":
                self.flow, at_node = [char], True
                node, properties = node if properties else index, False
                if self.deep():
                    return True
            elif char in "|>":
                self.scalar = (self._parent(line) if parent is None else parent, None)
                return False
            elif char in "'\"":
                self.quote, at_node = char, False
                node, properties = node if properties else index, False
            else:
                node, at_node = node if properties else index, False
                properties = False
                plain = self._parent(line) if parent is None else parent
                continue
            index += 1
        self.at_node = at_node
        self.plain = plain if not self.flow and not self.quote else None
        return False

    def _end_quote(self, line: str, index: int) -> int:
        """Past the closing quote (the quote is then over), or the line's end."""
        if self.quote == "'":
            end = line.find("'", index)
            if end < 0:
                return len(line)
            if line[end + 1 : end + 2] == "'":
                return end + 2  # '' is a quote inside
            self.quote = ""
            return end + 1
        while True:
            ends = [i for i in (line.find('"', index), line.find("\\", index)) if i >= 0]
            if not ends:
                return len(line)
            end = min(ends)
            if line[end] == "\\":
                index = end + 2
                continue
            self.quote = ""
            return end + 1

    def _parent(self, line: str) -> int:
        """The collection a node alone at its line's start belongs to: the one below it."""
        column = len(line) - len(line.lstrip(" "))
        below = [col for col, _ in self.blocks if col < column]
        return below[-1] if below else -1
