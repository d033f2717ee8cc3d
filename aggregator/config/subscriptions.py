"""Adding and removing sources in config.yaml the way a careful person would by hand.

The file is the user's: it is edited with ruamel.yaml's round-trip mode, so comments, key
order, quoting and indentation survive, and only the `sources` list changes. The new text
must pass `config.load_config` before it replaces the file, and it replaces it atomically,
so a mistake here can never leave a config the daemon cannot load.

Deciding what to add (names, duplicates) is pure and separate from writing the file.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from aggregator.config.settings import NAME_RE, Config, load_config
from aggregator.errors import ConfigError
from aggregator.models import Source
from aggregator.outputs.atomic import write_atomic, write_temp
from aggregator.sources.opml import Subscription

MAX_NAME = 64  # config.NAME_RE allows 64 characters
# (mapping, sequence, offset) indentations tried in turn; the first that reproduces the file
# exactly is the user's style. The first is this project's own example config.
INDENT_STYLES = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 0), (4, 4, 2), (3, 3, 0), (2, 3, 1))


@dataclass(frozen=True)
class NewSource:
    """A source to append to config.yaml."""

    name: str
    url: str
    title: str | None = None
    categories: tuple[str, ...] = ()
    allow_private: bool = False  # written only when true


@dataclass(frozen=True)
class Skipped:
    """An OPML subscription not imported, and why, in words for the user."""

    url: str
    title: str | None
    reason: str


def feed_key(url: str) -> str:
    """What makes two feed URLs the same subscription: scheme (http/https alike), host case,
    a trailing slash and a fragment do not matter."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("http", parts.netloc.lower(), path, parts.query, ""))


def source_name(title: str | None, url: str, taken: Iterable[str]) -> str:
    """A config name for a new source: the slug of its title (ASCII letters, digits, -),
    else of its URL's host, made unique against `taken` with -2, -3, ..."""
    used = set(taken)
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    base = _slug(title or "") or _slug(host) or "source"
    name, counter = base, 1
    while name in used:
        counter += 1
        suffix = f"-{counter}"
        name = base[: MAX_NAME - len(suffix)].rstrip("-_") + suffix
    return name


def plan_import(
    subscriptions: Sequence[Subscription], existing: Sequence[Source]
) -> tuple[list[NewSource], list[Skipped]]:
    """Which subscriptions become new sources, and which are skipped: not a web URL, already
    followed (by URL, whatever the name), or listed twice in the file."""
    known = {feed_key(source.url): source.name for source in existing}
    taken = {source.name for source in existing}
    added: list[NewSource] = []
    skipped: list[Skipped] = []
    for item in subscriptions:
        if not re.match(r"^https?://[^\s/]+", item.url):
            skipped.append(Skipped(item.url, item.title, "not an http:// or https:// URL"))
            continue
        key = feed_key(item.url)
        if key in known:
            skipped.append(Skipped(item.url, item.title, f"already followed as {known[key]}"))
            continue
        name = source_name(item.title, item.url, taken)
        taken.add(name)
        known[key] = name
        added.append(NewSource(name, item.url, item.title, item.categories))
    return added, skipped


def add_sources(path: Path, new: Sequence[NewSource]) -> Config:
    """Append `new` to the `sources` list of the config file; return the validated config."""
    yaml, tree = _load(path)
    sources = tree.get("sources")
    if not isinstance(sources, CommentedSeq) or not sources:
        # Missing, empty (`sources:` or `sources: []`): start a block-style list.
        sources = CommentedSeq()
        tree["sources"] = sources
    spaced = len(sources) >= 2 and _items_are_spaced(path.read_text(encoding="utf-8"))
    for item in new:
        sources.append(_source_map(item))
        if spaced:
            sources.yaml_set_comment_before_after_key(len(sources) - 1, before="\n")
    return _save(path, yaml, tree)


def remove_source(path: Path, name: str) -> Config:
    """Delete the source called `name` from the config file; return the validated config.
    Raise ConfigError when no such source is configured."""
    yaml, tree = _load(path)
    sources = tree.get("sources")
    index = next(
        (
            i
            for i, item in enumerate(sources or [])
            if isinstance(item, dict) and str(item.get("name")) == name
        ),
        None,
    )
    if index is None:
        raise ConfigError(f"{path}: no source named {name!r} in sources")
    del sources[index]
    return _save(path, yaml, tree)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:MAX_NAME].rstrip("-")


def _source_map(item: NewSource) -> CommentedMap:
    node = CommentedMap()
    node["name"] = item.name
    node["url"] = item.url
    if item.title:
        node["title"] = item.title
    if item.categories:
        categories = CommentedSeq(item.categories)
        categories.fa.set_flow_style()
        node["categories"] = categories
    if item.allow_private:
        node["allow_private"] = True
    return node


def _items_are_spaced(text: str) -> bool:
    """Whether the user separates list items with a blank line, as the example config does."""
    return re.search(r"\n[ \t]*\n[ \t]*- ", text) is not None


def _load(path: Path) -> tuple[YAML, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    yaml = _yaml_like(text)
    try:
        tree = yaml.load(text) if text.strip() else None
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML, not touching it: {exc}") from None
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return yaml, tree


def _yaml_like(text: str) -> YAML:
    """A round-trip YAML whose indentation reproduces `text` byte for byte, if any does."""
    chosen = None
    for mapping, sequence, offset in INDENT_STYLES:
        yaml = YAML(typ="rt")
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        yaml.width = 4096  # never fold a long URL or title onto a second line
        yaml.preserve_quotes = True
        chosen = chosen or yaml
        if not text.strip():
            break
        try:
            out = io.StringIO()
            yaml.dump(yaml.load(text), out)
        except YAMLError:
            break
        if out.getvalue() == text:
            return yaml
    assert chosen is not None
    return chosen


def _save(path: Path, yaml: YAML, tree: Any) -> Config:
    out = io.StringIO()
    yaml.dump(tree, out)
    data = out.getvalue().encode("utf-8")
    # Validate the exact bytes with the real loader, from the same folder so that relative
    # paths resolve the same, before the user's file is replaced.
    check = Path(write_temp(os.fspath(path), data))  # a new file, never a planted link
    try:
        try:
            load_config(check)
        except ConfigError as exc:
            message = str(exc).replace(str(check), str(path))
            raise ConfigError(f"{message} (the file was not changed)") from None
    finally:
        check.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    write_atomic(path, data)
    if mode is not None:
        os.chmod(path, mode)
    return load_config(path)


def is_valid_name(name: str) -> bool:
    return NAME_RE.match(name) is not None
