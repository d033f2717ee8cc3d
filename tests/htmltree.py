"""HTML fragments compared as trees, the way a browser parses them (lexbor, an HTML5 parser):
for tests that hold sanitising, normalising and bounding markup to what it means."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser


def same_tree(first: str, second: str) -> bool:
    """Whether two fragments parse to the same tree, inside a wrapper and before a sentinel
    that catch unbalanced markup (an unclosed <div> swallowing what follows)."""
    one, other = parse_wrapped(first), parse_wrapped(second)
    if one.body is not None and other.body is not None and one.body.html == other.body.html:
        return True
    return shape(one) == shape(other)


def parse_wrapped(fragment: str) -> LexborHTMLParser:
    return LexborHTMLParser(f"<body><div>{fragment}</div><i></i></body>")


def shape(tree: LexborHTMLParser) -> list[tuple]:
    """The parsed tree as a flat list of (depth, tag, attributes) / (depth, "#", text)."""
    body = tree.body
    found: list[tuple] = []
    stack = [(body, 0)] if body is not None else []
    while stack:
        node, depth = stack.pop()
        if node.tag == "-text":
            found.append((depth, "#", node.text_content))
            continue
        attrs = tuple(sorted((key, value or "") for key, value in node.attributes.items()))
        found.append((depth, node.tag, attrs))
        children = list(node.iter(include_text=True))
        stack.extend((child, depth + 1) for child in reversed(children))
    return found
