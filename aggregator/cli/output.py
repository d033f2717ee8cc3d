"""What the command line prints, made safe for a terminal: the one way the CLI writes text.

Titles, URLs, error texts from servers, source names and entries from the database all come
from outside, and a terminal obeys control characters in them: ESC sequences retitle the
window, clear the screen, recolour or hide text, rewrite the clipboard (OSC 52); a carriage
return or a bidi override makes a line read as something else. Everything the CLI prints
goes through `echo` (its log lines through `CleanFormatter`), which removes escape sequences
whole, C0 controls but tab and newline, DEL, C1 controls and bidi embeddings, overrides and
isolates. Printable text, Chinese or Arabic, is left as it is.
"""

from __future__ import annotations

import logging
import re

import click

# A sequence is removed whole, so that no `[2J` or `]0;title` is left to read: CSI (ESC [ or
# its C1 form) with parameters and final byte; OSC, DCS, SOS, PM and APC strings up to BEL or
# ST (or the end of the line); any other ESC and the character it takes.
ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# C0 but tab and newline, DEL, C1; bidi embeddings and overrides (U+202A-E), isolates (2066-9).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """`text` without anything a terminal would take as a command rather than text."""
    if text.isprintable():  # the usual case; tab and newline are not printable, so seen here
        return text
    return CONTROL.sub("", ESCAPE_SEQUENCE.sub("", text))


def one_line(text: str) -> str:
    """`clean_text` for a table cell or a name: tabs and line breaks become spaces."""
    return clean_text(text).replace("\t", " ").replace("\n", " ")


def echo(message: str = "", *, err: bool = False) -> None:
    """Print one message (a line, or several) to stdout, or stderr with `err`."""
    click.echo(clean_text(message), err=err)


class CleanFormatter(logging.Formatter):
    """Log lines carry source names, URLs and server errors too."""

    def format(self, record: logging.LogRecord) -> str:
        return clean_text(super().format(record))
