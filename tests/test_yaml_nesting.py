"""The nesting of a YAML text, measured before any parser sees it (issue 13.9)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from aggregator.config.yaml_nesting import nesting_beyond


def parsed_depth(text: str) -> int:
    """How deep libyaml's own events nest (up to any error): what the composer recurses on.
    libyaml's parser keeps its stack on the heap, so this is safe at any depth."""
    depth = deepest = 0
    try:
        for event in YAML(typ="safe", pure=False).parse(text):
            name = type(event).__name__
            if name in ("SequenceStartEvent", "MappingStartEvent"):
                depth += 1
                deepest = max(deepest, depth)
            elif name in ("SequenceEndEvent", "MappingEndEvent"):
                depth -= 1
    except YAMLError:
        pass
    return deepest


def scanned_depth(text: str) -> int:
    depth = 0
    while nesting_beyond(text, depth) is not None:
        depth += 1
    return depth


@pytest.mark.parametrize(
    ("text", "depth", "counted"),
    [
        ("a: 1\n", 1, 1),
        ("sources:\n  - name: a\n    url: http://x/\n    categories: [a, b]\n", 4, 5),
        ("sources:\n- name: a\n  categories:\n  - x\n", 4, 4),
        ("a: " + "[" * 30 + "]" * 30 + "\n", 31, 61),
        ("a: [x: [y: [z: 1]]]\n", 7, 7),
        ("a: " + "{b: " * 30 + "1" + "}" * 30 + "\n", 31, 31),
        ("- " * 30 + "x\n", 30, 30),
        ("a: '" + "[" * 60 + "'\n", 1, 1),
        ('a: "\\"' + "{" * 60 + '"\n', 1, 1),
        ("a: b " + "[" * 60 + "\n", 1, 1),
        ("a: 1 # " + "[" * 60 + "\n", 1, 1),
        ("a: |\n  " + "[" * 60 + "\n  more\nb: 1\n", 1, 1),
        ("a: >-\n\n    " + "[" * 60 + "\n", 1, 1),
        ("a: &x {b: 1}\nc: *x\n", 2, 2),
        ("a: !!map {b: 1}\n", 2, 2),
        ("title: it's [draft\nnext: x's\n", 1, 1),
    ],
    ids=["flat", "config", "sequence-at-key-column", "flow-sequences", "pairs-in-sequences",
         "flow-mappings", "block-sequences-on-one-line", "single-quoted", "double-quoted",
         "plain", "comment", "literal-block", "folded-block", "anchor-alias", "tag",
         "apostrophes"],
)  # fmt: skip
def test_depth_as_the_parser_sees_it(text: str, depth: int, counted: int) -> None:
    """The scan counts what libyaml nests, flow sequences twice (see yaml_nesting.py)."""
    assert parsed_depth(text) == depth
    assert scanned_depth(text) == counted


def test_the_line_that_goes_too_deep_is_named() -> None:
    text = "sources:\n  - name: a\n    categories: " + "[" * 60 + "]" * 60 + "\n"
    assert nesting_beyond(text, 50) == 3
    assert nesting_beyond(text, 123) is None
    nested = "".join(" " * column + "-\n" for column in range(0, 120, 2))
    assert parsed_depth(nested) == 60
    assert nesting_beyond(nested) == 51


TOKENS = st.sampled_from([
    "[", "]", "{", "}", ", ", ",", ": ", ":", "- ", "-", "? ", "?", "'", '"', "''", "\\",
    "\\\"", "#", " #", " # c", "|", "|-", ">", "&a ", "&a", "*a", "!t ", "!t", "!!seq ",
    "a", "b c", "x: ", "k:", "\n", "\n  ", "\n    ", "\n- ", "\n  - ", "\n---\n", "\n...\n",
    "\r\n", "\r", "\u2028", "\x85", "\t", "  ", " ", "\ufeff", "%", "@", "`",
])  # fmt: skip


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOKENS, max_size=40).map("".join))
def test_the_scan_never_counts_less_than_the_parser_nests(text: str) -> None:
    """The scan stands between a crafted file and a parser that crashes at depth: whatever
    libyaml would nest, the scan sees at least as deep (libyaml may open one collection more
    on its way to an error: `{]x: ` gives a mapping in a mapping, then fails)."""
    assert scanned_depth(text) >= parsed_depth(text) - 1, repr(text)
