"""Reading and validating config.yaml into a typed `Config`, once, at the edge.

Every mistake is reported as one `ConfigError` naming the file, the key path (with its line)
and what is wrong, so a user never has to read a traceback to fix their config.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

from aggregator import __version__
from aggregator.config.yaml_nesting import MAX_NESTING, nesting_beyond
from aggregator.errors import ConfigError
from aggregator.models import (
    ATOM_FEED_NAME,
    JSON_FEED_NAME,
    RSS_FEED_NAME,
    EntryLimits,
    Hook,
    HookWhen,
    Paths,
    Source,
)
from aggregator.outputs.documents import (
    DEFAULT_OPTIONS,
    FRONT_MATTER_KEY,
    DocumentOptions,
    parse_front_matter_value,
)
from aggregator.sources.filters import compile_filter

DEFAULT_USER_AGENT = (
    f"aggregator/{__version__} (+https://github.com/aggregator/aggregator; feed aggregator)"
)
# What no setting can carry: C0 controls but tab and line breaks, DEL, C1, lone surrogates,
# non-characters (XML refuses them; NUL ends a path).
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
DURATION_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30}
# What each number a config sets may be (README "Configuration"): room for any real use, and
# no value that would overflow a date, a C int or an SQLite integer later on.
INTERVAL_RANGE = (1, 30 * 86400)  # interval, max_interval, a source's interval: 1 s to 30 d
TIMEOUT_RANGE = (1, 3600)  # timeout.connect, .read, .total: 1 s to an hour
SIZE_RANGE = (2**10, 2**30)  # max_body, images.max_size, limits.content: 1 KiB to 1 GiB
MOST_ITEMS, MOST_WORKERS, MOST_KEPT, MOST_REDIRECTS = 100_000, 64, 1_000_000, 30
# A config is a few kB; these bound what a wrong or hostile file can cost to read.
MAX_CONFIG_BYTES = 2 * 2**20
MAX_CONFIG_VALUES = 1_000_000


@dataclass(frozen=True)
class FeedSettings:
    """The merged feed: where it is written and how it presents itself."""

    folder: Path
    title: str = "Aggregated feed"
    link: str = "http://127.0.0.1:8080/"  # public base URL the feeds are served under
    description: str = "Entries from every followed source, newest first."
    max_items: int = 100
    rss_name: str = RSS_FEED_NAME
    atom_name: str = ATOM_FEED_NAME
    hub: str | None = None  # WebSub hub the merged feeds advertise and are announced to
    # One feed per category / per source beside the merged one (three files each); at
    # thousands of sources a user may want neither.
    category_feeds: bool = True
    source_feeds: bool = True


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class ImageSettings:
    """`images`: entries' images mirrored into the site (see aggregator/outputs/images.py)."""

    folder: Path  # where the files go
    url: str  # how documents refer to `folder`: a site path or an absolute URL, ending in /
    max_size: int = 10 * 2**20  # per image, after decompression


@dataclass(frozen=True)
class Config:
    """The whole validated configuration; paths are absolute (relative to the config file)."""

    path: Path
    paths: Paths
    feed: FeedSettings
    server: ServerSettings = ServerSettings()
    images: ImageSettings | None = None  # None: images are not mirrored (the default)
    hooks: tuple[Hook, ...] = ()  # run in order after a publish that changed something
    sources: tuple[Source, ...] = ()
    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_body: int = 15 * 2**20
    max_redirects: int = 10
    allow_private: bool = False  # every source may reach internal addresses (sources/reach.py)
    workers: int = 8
    max_interval: int = 86400
    documents_format: str = "hexo"  # front matter for hexo, hugo or jekyll
    # documents_timezone and front_matter: dates as wall time in a zone, keys added or dropped
    document_options: DocumentOptions = DEFAULT_OPTIONS
    limits: EntryLimits = field(default_factory=EntryLimits)  # how much of a poll is kept
    # The index page's language (ui_text.LANGUAGES); None: each reader's browser decides.
    ui_language: str | None = None


def parse_duration(value: Any) -> int:
    """Seconds from `90`, `90s`, `30m`, `2h` or `1d`; raises ValueError with the reason."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30m, 2h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = DURATION_RE.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration like 90s, 30m, 2h or 1d")
        seconds = float(match.group(1)) * DURATION_UNITS[match.group(2)]
    if not math.isfinite(seconds):  # .inf, .nan, 1e400
        raise ValueError(f"{value!r} is not a duration like 90s, 30m, 2h or 1d")
    if seconds < 1:
        raise ValueError(f"{value!r} is shorter than one second")
    return int(seconds)


def _duration_within(low: int, high: int) -> Callable[[Any], int]:
    """parse_duration, refusing what is outside low..high seconds."""

    def check(value: Any) -> int:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            shown = f"{_duration_text(low)} and {_duration_text(high)}"
            raise ValueError(f"{value!r} is not between {shown}")
        return seconds

    return check


def _duration_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _size_within(low: int, high: int) -> Callable[[Any], int]:
    """parse_size, refusing what is outside low..high bytes."""

    def check(value: Any) -> int:
        size = parse_size(value)
        if not low <= size <= high:
            raise ValueError(f"{value!r} is not between {_size_text(low)} and {_size_text(high)}")
        return size

    return check


def _size_text(size: int) -> str:
    for unit, step in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size % step == 0:
            return f"{size // step}{unit}"
    return f"{size}B"


_interval = _duration_within(*INTERVAL_RANGE)
_timeout = _duration_within(*TIMEOUT_RANGE)
_hook_timeout = _duration_within(1, 86400)
_size = _size_within(*SIZE_RANGE)


def parse_size(value: Any) -> int:
    """Bytes from `15MiB`, `500KB` or a plain number."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = SIZE_RE.match(str(value))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a size like 15MiB or 500KB")
    return int(match.group(1)) * SIZE_UNITS[(match.group(2) or "b").lower()]


class _Reader:
    """Walks the YAML tree, remembering the key path and line for error messages."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, path: str, problem: str, node: Any = None, key: Any = None) -> ConfigError:
        line = ""
        try:
            if key is not None and node is not None:
                line = f" (line {node.lc.key(key)[0] + 1})"
            elif node is not None:
                line = f" (line {node.lc.line + 1})"
        except (AttributeError, KeyError, TypeError, IndexError):
            pass
        where = f"{path}{line}" if path else "top level"
        return ConfigError(f"{self.file}: {_printable(where)}: {_printable(problem)}")

    def mapping(self, node: Any, path: str, allowed: set[str], parent: Any = None) -> dict:
        if node is None:
            return {}
        if not isinstance(node, Mapping):
            raise self.fail(path, f"expected a mapping of keys, got {_kind(node)}", parent)
        for key in node:
            if key not in allowed:
                choices = ", ".join(sorted(allowed))
                raise self.fail(
                    _join(path, str(key)), f"unknown key (allowed: {choices})", node, key
                )
        return dict(node.items())

    def value(
        self,
        node: Mapping,
        key: str,
        path: str,
        convert: Callable[[Any], Any],
        default: Any = None,
    ) -> Any:
        if key not in node or node[key] is None:
            return default
        try:
            return convert(node[key])
        except (ValueError, TypeError) as exc:
            raise self.fail(_join(path, key), str(exc), node, key) from None


def _printable(text: str) -> str:
    """A key or value of the file as one line of text: a newline or other control character
    in it (keys are the user's text too) is shown escaped, as repr() would."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _text(value: Any) -> str:
    if isinstance(value, Mapping | list | bool):
        raise ValueError(f"expected text, got {_kind(value)}")
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    if CONTROL_CHARACTER.search(text):  # no XML, path or header can carry one
        raise ValueError(f"{text!r} holds a control character")
    return text


def _one_line(value: Any) -> str:
    """Text sent in an HTTP header: one line."""
    text = _text(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"{text!r} must be one line")
    return text


def _url(value: Any) -> str:
    text = _text(value)
    if not re.match(r"^https?://[^\s/]+", text):
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_kind(value)}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive whole number, got {_kind(value)}")
    return value


def _port(value: Any) -> int:
    port = _positive_int(value) if value != 0 else 0
    if port > 65535:
        raise ValueError(f"{port} is not a TCP port (0-65535)")
    return port


def _categories(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"expected a list of names, got {_kind(value)}")
    return tuple(_text(item) for item in value)


def _patterns(value: Any) -> tuple[str, ...]:
    """Filter regexes, compiled once here so that a typo, or a pattern the linear-time engine
    cannot run (aggregator/sources/filters.py), is a config error, not a poll error."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"expected a list of regular expressions, got {_kind(value)}")
    patterns = []
    for item in value:
        pattern = _text(item)
        try:
            compile_filter(pattern)
        except ValueError as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        patterns.append(pattern)
    return tuple(patterns)


def _document_format(value: Any) -> str:
    text = _text(value).lower()
    if text not in DOCUMENT_FORMATS:
        raise ValueError(f"{text!r} is not one of {', '.join(DOCUMENT_FORMATS)}")
    return text


def _time_zone(value: Any) -> str:
    text = _text(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{text!r} is not a time zone name like Asia/Shanghai, Europe/Berlin or UTC"
        ) from None
    return text


def _file_name(value: Any) -> str:
    text = _text(value)
    if "/" in text or "\\" in text or text in {".", ".."}:
        raise ValueError(f"{text!r} must be a plain file name")
    return text


# `ui_language`: what a config may say (in any case) -> the index page's language, one of
# service/ui_text.LANGUAGES (a test holds the two together).
UI_LANGUAGE_NAMES = {
    "en": "en",
    "zh": "zh-Hans",
    "zh-Hans": "zh-Hans",
    "zh-CN": "zh-Hans",
    "zh-Hant": "zh-Hant",
    "zh-TW": "zh-Hant",
    "zh-HK": "zh-Hant",
}


def _ui_language(value: Any) -> str:
    """The language `ui_language` fixes for the index page."""
    text = _text(value)
    named = {name.lower(): language for name, language in UI_LANGUAGE_NAMES.items()}
    language = named.get(text.lower())
    if language is None:
        allowed = ", ".join(UI_LANGUAGE_NAMES)
        raise ValueError(
            f"{text!r} is not a language of the index page (allowed: {allowed}; "
            "leave it out to follow each reader's browser)"
        )
    return language


SOURCE_KEYS = {
    "name",
    "url",
    "title",
    "author",
    "categories",
    "interval",
    "enabled",
    "image",
    "include",
    "exclude",
    "keep",
    "allow_private",
    "public_url",
    "full_text",
}
DOCUMENT_FORMATS = ("hexo", "hugo", "jekyll")
TOP_KEYS = {
    "database",
    "documents",
    "feed",
    "images",
    "server",
    "ui_language",
    "sources",
    "user_agent",
    "timeout",
    "max_body",
    "max_redirects",
    "allow_private",
    "workers",
    "interval",
    "max_interval",
    "documents_format",
    "documents_timezone",
    "front_matter",
    "limits",
    "hooks",
}
HOOK_KEYS = {"name", "run", "shell", "cwd", "timeout", "when", "env"}
LIMIT_KEYS = {"title", "author", "category", "categories", "content", "entries"}
FEED_KEYS = {
    "folder", "title", "link", "description", "max_items", "rss", "atom", "hub",
    "category_feeds", "source_feeds",
}  # fmt: skip
SERVER_KEYS = {"host", "port"}
TIMEOUT_KEYS = {"connect", "read", "total"}


def load_config(path: str | Path) -> Config:
    """Read and validate the config file; raise ConfigError naming file, key and problem."""
    config = _read_config(Path(path).absolute())
    # The parser's tree is gone by now, but the Config's strings were made among its
    # objects and keep their memory pages: 10,000 sources' 3 MB of objects held ~20 MB
    # of a long-running process. Made again from bytes, they sit together (~9 MB freed).
    blob = pickle.dumps(config, pickle.HIGHEST_PROTOCOL)
    del config
    return pickle.loads(blob)


def _read_config(file: Path) -> Config:
    try:
        with file.open("rb") as handle:  # bounded: --config /dev/zero must not hang
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file (give another with --config)") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{file}: larger than {MAX_CONFIG_BYTES // 2**20} MiB, far too large for a config "
            "file; is it the right file?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "is it the right file?"
        ) from None
    # Nesting is bounded before any parser sees the text: the C loader below composes by
    # recursion on the C stack, and 30,000 `[` crashed the process (config/yaml_nesting.py).
    line = nesting_beyond(text, MAX_NESTING)
    if line is not None:
        raise ConfigError(
            f"{file} (line {line}): nested too deeply: more than {MAX_NESTING} levels of lists "
            "and mappings (a config needs four or five); is it the right file?"
        )
    # Fast path: libyaml's parser (ruamel.yaml.clib) reads a 10,000-source file in 0.9 s and
    # 60 MB where the round-trip loader takes 4.5 s and 100 MB; it knows no line numbers, so
    # anything wrong is read again by the round-trip loader, whose messages name the line.
    # Both resolve YAML 1.2 alike, so a file that passes here passes there.
    # ruamel.yaml's own bugs on odd plain scalars (`._` is "a float" it cannot convert: a
    # ValueError; `-_` an IndexError) are read again too, and reported below.
    with contextlib.suppress(ConfigError, YAMLError, RecursionError, ValueError, IndexError):
        _check_parsed_nesting(text, file)
        tree = YAML(typ="safe", pure=False).load(text)
        _check_expanded_size(tree, file)
        return build_config(tree, file)
    try:
        tree = YAML(typ="rt").load(text)
        _check_expanded_size(tree, file)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{file}{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{file}: not valid YAML: nested too deeply") from None
    except (ValueError, IndexError) as exc:
        raise ConfigError(
            f"{file}: not valid YAML: a plain value the YAML reader cannot convert "
            f"({type(exc).__name__}: {exc}); put quotes around odd values such as ._ or -_"
        ) from None
    return build_config(tree, file)


def _check_parsed_nesting(text: str, file: Path) -> None:
    """The second guard before the C loader composes (recursively) what libyaml parses: its
    own events (libyaml's parser keeps its stack on the heap) nest no deeper than the scan
    allows. Past it, the round-trip loader reads the file, and its recursion stops cleanly."""
    depth = 0
    for event in YAML(typ="safe", pure=False).parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > 2 * MAX_NESTING + 1:
                raise ConfigError(f"{file}: nested too deeply")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _check_expanded_size(tree: Any, file: Path) -> None:
    """Refuse a tree that aliases make huge (a "billion laughs" YAML bomb): ruamel keeps an
    alias as a reference, but validating or printing the value would expand it."""
    count = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"{file}: more than {MAX_CONFIG_VALUES:,} values once its aliases (*name) are "
                "expanded; refusing what looks like a YAML bomb"
            )
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def build_config(tree: Any, file: Path) -> Config:
    """Validate an already-parsed YAML tree (as ruamel's round-trip loader gives it)."""
    reader = _Reader(file)
    base = file.parent
    reader.mapping(tree, "", TOP_KEYS)
    top = tree if tree is not None else {}

    def resolve(value: Any) -> Path:
        candidate = Path(_text(value)).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    def resolve_file(value: Any) -> Path:
        path = resolve(value)
        if not path.name:
            raise ValueError(f"{path} is a folder; name a file in it")
        return path

    reader.mapping(top.get("feed"), "feed", FEED_KEYS, tree)
    feed_node_raw = top.get("feed") or {}
    feed = FeedSettings(
        folder=reader.value(feed_node_raw, "folder", "feed", resolve, base / "public"),
        title=reader.value(feed_node_raw, "title", "feed", _text, FeedSettings.title),
        link=_with_slash(reader.value(feed_node_raw, "link", "feed", _url, FeedSettings.link)),
        description=reader.value(
            feed_node_raw, "description", "feed", _text, FeedSettings.description
        ),
        max_items=reader.value(
            feed_node_raw, "max_items", "feed", _bounded_int(MOST_ITEMS), FeedSettings.max_items
        ),
        rss_name=reader.value(feed_node_raw, "rss", "feed", _file_name, FeedSettings.rss_name),
        atom_name=reader.value(feed_node_raw, "atom", "feed", _file_name, FeedSettings.atom_name),
        hub=reader.value(feed_node_raw, "hub", "feed", _url),
        category_feeds=reader.value(feed_node_raw, "category_feeds", "feed", _bool, True),
        source_feeds=reader.value(feed_node_raw, "source_feeds", "feed", _bool, True),
    )
    if feed.rss_name == feed.atom_name:
        raise reader.fail("feed.atom", "must differ from feed.rss", feed_node_raw, "atom")
    for key, name in (("rss", feed.rss_name), ("atom", feed.atom_name)):
        if name == JSON_FEED_NAME:
            problem = f"{JSON_FEED_NAME} is taken by the merged JSON Feed; choose another name"
            raise reader.fail(f"feed.{key}", problem, feed_node_raw, key)

    server_raw = top.get("server") or {}
    reader.mapping(top.get("server"), "server", SERVER_KEYS, tree)
    server = ServerSettings(
        host=reader.value(server_raw, "host", "server", _text, ServerSettings.host),
        port=reader.value(server_raw, "port", "server", _port, ServerSettings.port),
    )

    timeout_raw = top.get("timeout") or {}
    if "timeout" in top and not isinstance(top["timeout"], Mapping):
        # A single number sets the read timeout, as requests users expect.
        timeout_raw = {"read": top["timeout"]}
    else:
        reader.mapping(top.get("timeout"), "timeout", TIMEOUT_KEYS, tree)
    default_interval = reader.value(top, "interval", "", _interval, 1800)
    max_interval = reader.value(top, "max_interval", "", _interval, 86400)

    allow_private = reader.value(top, "allow_private", "", _bool, False)
    sources = _sources(reader, tree, top.get("sources"), default_interval, allow_private)
    return Config(
        path=file,
        paths=Paths(
            database=reader.value(top, "database", "", resolve_file, base / "aggregator.db"),
            documents=reader.value(top, "documents", "", resolve, base / "documents"),
            public=feed.folder,
        ),
        feed=feed,
        server=server,
        sources=sources,
        images=_images(reader, tree, top.get("images"), resolve),
        limits=_limits(reader, tree, top.get("limits")),
        hooks=_hooks(reader, tree, top.get("hooks"), resolve),
        user_agent=reader.value(top, "user_agent", "", _one_line, DEFAULT_USER_AGENT),
        connect_timeout=reader.value(timeout_raw, "connect", "timeout", _timeout, 10),
        read_timeout=reader.value(timeout_raw, "read", "timeout", _timeout, 20),
        total_timeout=reader.value(timeout_raw, "total", "timeout", _timeout, 60),
        max_body=reader.value(top, "max_body", "", _size, 15 * 2**20),
        max_redirects=reader.value(top, "max_redirects", "", _bounded_int(MOST_REDIRECTS), 10),
        allow_private=allow_private,
        workers=reader.value(top, "workers", "", _bounded_int(MOST_WORKERS), 8),
        max_interval=max_interval,
        documents_format=reader.value(top, "documents_format", "", _document_format, "hexo"),
        ui_language=reader.value(top, "ui_language", "", _ui_language),
        document_options=DocumentOptions(
            timezone=reader.value(top, "documents_timezone", "", _time_zone),
            front_matter=_front_matter(reader, tree, top.get("front_matter")),
        ),
    )


def _front_matter(reader: _Reader, tree: Any, node: Any) -> tuple:
    """`front_matter`: key -> template (`"{image}"`), list of templates, constant, or null
    to leave a key out; every template checked here, so an unknown field is a config error."""
    if node is None:
        return ()
    if not isinstance(node, Mapping):
        problem = f"expected a mapping of keys to templates, got {_kind(node)}"
        raise reader.fail("front_matter", problem, tree, "front_matter")
    changes = []
    for key in node:
        path = f"front_matter.{key}"
        if not isinstance(key, str) or not FRONT_MATTER_KEY.match(key):
            problem = "a key is a letter or _ then letters, digits, _ or - (at most 64)"
            raise reader.fail(path, problem, node, key)
        try:
            changes.append((key, parse_front_matter_value(node[key])))
        except ValueError as exc:
            raise reader.fail(path, str(exc), node, key) from None
    return tuple(changes)


def _sources(
    reader: _Reader, tree: Any, node: Any, default_interval: int, allow_private: bool
) -> tuple[Source, ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        raise reader.fail(
            "sources", f"expected a list of sources, got {_kind(node)}", tree, "sources"
        )
    sources: list[Source] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(node):
        path = f"sources[{index}]"
        raw = reader.mapping(item, path, SOURCE_KEYS, node)
        if not raw:
            raise reader.fail(path, "a source needs at least a url and a name", node)
        for required in ("url", "name"):
            if raw.get(required) is None:
                raise reader.fail(f"{path}.{required}", "missing (every source needs one)", item)
        name = reader.value(item, "name", path, _text)
        if not NAME_RE.match(name):
            raise reader.fail(
                f"{path}.name",
                f"{name!r} must be lowercase letters, digits, - or _ (it is used in file names)",
                item,
                "name",
            )
        if name in seen:
            raise reader.fail(
                f"{path}.name",
                f"duplicate name {name!r} (also sources[{seen[name]}])",
                item,
                "name",
            )
        seen[name] = index
        sources.append(
            Source(
                name=name,
                url=reader.value(item, "url", path, _url),
                title=reader.value(item, "title", path, _text),
                author=reader.value(item, "author", path, _text),
                categories=reader.value(item, "categories", path, _categories, ()),
                interval=reader.value(item, "interval", path, _interval, default_interval),
                enabled=reader.value(item, "enabled", path, _bool, True),
                image=reader.value(item, "image", path, _url),
                include=reader.value(item, "include", path, _patterns, ()),
                exclude=reader.value(item, "exclude", path, _patterns, ()),
                keep=reader.value(item, "keep", path, _bounded_int(MOST_KEPT)),
                allow_private=reader.value(item, "allow_private", path, _bool, allow_private),
                public_url=reader.value(item, "public_url", path, _bool, False),
                full_text=reader.value(item, "full_text", path, _bool, False),
            )
        )
    return tuple(sources)


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


IMAGE_KEYS = {"folder", "url", "max_size"}
# What a site path or URL written into documents' HTML attributes and front matter may not hold.
SITE_URL_UNSAFE = re.compile(r"[\s\"'<>\\`{}|^]")


def _images(
    reader: _Reader, tree: Any, node: Any, resolve: Callable[[Any], Path]
) -> ImageSettings | None:
    """`images`: absent (or null) leaves mirroring off; given, it needs a folder and a url."""
    if node is None:
        return None
    reader.mapping(node, "images", IMAGE_KEYS, tree)
    for required in ("folder", "url"):
        if node.get(required) is None:
            problem = "missing (mirroring images needs a folder and the url it is served under)"
            raise reader.fail(f"images.{required}", problem, node)
    return ImageSettings(
        folder=reader.value(node, "folder", "images", resolve),
        url=reader.value(node, "url", "images", _site_url),
        max_size=reader.value(node, "max_size", "images", _size, ImageSettings.max_size),
    )


def _hooks(
    reader: _Reader, tree: Any, node: Any, resolve: Callable[[Any], Path]
) -> tuple[Hook, ...]:
    """`hooks`: commands run after a publish, each an argv list (or one command line with
    `shell: true`), in an existing folder, with a timeout; names are unique."""
    if node is None:
        return ()
    if not isinstance(node, list):
        raise reader.fail("hooks", f"expected a list of hooks, got {_kind(node)}", tree, "hooks")
    hooks: list[Hook] = []
    for index, item in enumerate(node):
        path = f"hooks[{index}]"
        reader.mapping(item, path, HOOK_KEYS, node)
        if not item or item.get("run") is None:
            raise reader.fail(
                f"{path}.run", "missing (the command to run, as a list)", item or node
            )
        shell = reader.value(item, "shell", path, _bool, False)
        run = reader.value(item, "run", path, _command_line if shell else _argv)
        cwd = reader.value(item, "cwd", path, resolve)
        if cwd is not None and not cwd.is_dir():
            raise reader.fail(f"{path}.cwd", f"{cwd} is not an existing folder", item, "cwd")
        hook = Hook(
            name=reader.value(item, "name", path, _one_line, _hook_name(run)),
            run=run,
            cwd=cwd,
            timeout=reader.value(item, "timeout", path, _hook_timeout, Hook.timeout),
            when=reader.value(item, "when", path, _hook_when, HookWhen.ANY),
            environment=reader.value(item, "env", path, _environment, ()),
            shell=shell,
        )
        if any(other.name == hook.name for other in hooks):
            problem = f"duplicate hook name {hook.name!r}; give each hook a `name`"
            raise reader.fail(path, problem, node)
        hooks.append(hook)
    return tuple(hooks)


def _argv(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(
            "a command line runs through a shell only when the hook says `shell: true`; "
            "otherwise give the command as a list: [hexo, generate]"
        )
    if not isinstance(value, list):
        raise ValueError(
            f"expected a list of words (the command and its arguments), got {_kind(value)}"
        )
    if not value:
        raise ValueError("the command is empty")
    words = tuple(str(word) for word in value if not isinstance(word, Mapping | list))
    if len(words) != len(value) or not words[0].strip() or any("\0" in word for word in words):
        raise ValueError("every word of the command must be text, and the first not empty")
    return words


def _command_line(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"with `shell: true`, run is one command line (text), got {_kind(value)}")
    return _text(value)


def _hook_name(run: tuple[str, ...] | str) -> str:
    text = run if isinstance(run, str) else " ".join(run)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:59] + "…"


def _hook_when(value: Any) -> HookWhen:
    try:
        return HookWhen(_text(value))
    except ValueError:
        allowed = ", ".join(when.value for when in HookWhen)
        raise ValueError(f"{value!r} is not one of {allowed}") from None


def _environment(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping of variable names to values, got {_kind(value)}")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{key!r} is not a variable name (letters, digits, _)")
        if isinstance(item, Mapping | list) or item is None:
            raise ValueError(f"{key}: expected text, got {_kind(item)}")
        text = str(item).lower() if isinstance(item, bool) else str(item)
        if "\0" in text:
            raise ValueError(f"{key}: holds a NUL character")
        pairs.append((key, text))
    return tuple(pairs)


def _limits(reader: _Reader, tree: Any, node: Any) -> EntryLimits:
    """`limits`: how much of an entry and of a poll is kept; each a whole number from 1 up
    (`content` may be a size such as 512KiB)."""
    if node is None:
        return EntryLimits()
    reader.mapping(node, "limits", LIMIT_KEYS, tree)
    default = EntryLimits()
    values = {
        key: reader.value(node, key, "limits", _bounded_int(10_000_000), getattr(default, key))
        for key in LIMIT_KEYS - {"content"}
    }
    content = reader.value(node, "content", "limits", _size, default.content)
    return EntryLimits(**values, content=content)


def _bounded_int(most: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = _positive_int(value)
        if number > most:
            raise ValueError(f"{number} is more than {most:,}")
        return number

    return check


def _site_url(value: Any) -> str:
    """Where the site serves a folder: a path (`/images/feeds/`) or an http(s) URL; with a
    final `/`. Nothing that would need escaping in HTML or YAML."""
    text = _text(value)
    if SITE_URL_UNSAFE.search(text) or not (
        text.startswith("/") or re.match(r"^https?://[^/]+", text)
    ):
        raise ValueError(
            f"{text!r} is not a site path like /images/feeds/ or an http(s):// URL "
            "(without spaces, quotes, <, >, braces or backslashes)"
        )
    return _with_slash(text)
