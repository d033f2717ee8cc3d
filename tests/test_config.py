"""Config: defaults, paths relative to the file, and one clear message per mistake."""

from __future__ import annotations

import contextlib
import copy
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config.settings import (
    FEED_KEYS,
    IMAGE_KEYS,
    LIMIT_KEYS,
    SERVER_KEYS,
    SOURCE_KEYS,
    TIMEOUT_KEYS,
    TOP_KEYS,
    Config,
    load_config,
    parse_duration,
    parse_size,
)
from aggregator.errors import ConfigError
from aggregator.outputs.documents import DocumentOptions, Template
from aggregator.poll.schedule import next_delay
from aggregator.sources.filters import compile_filter


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_config_of_the_repository_is_valid() -> None:
    config = load_config(Path(__file__).parent.parent / "config.yaml")
    aljazeera = next(s for s in config.sources if s.name == "aljazeera")
    assert aljazeera.url.endswith("/aljazeera/chinese/news")
    assert aljazeera.categories == ("新媒体", "Aljazeera 半岛网", "新闻")
    assert aljazeera.author == "Aljazeera 半岛网"
    assert len(config.sources) >= 2


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "sources:\n  - {name: a, url: 'http://x.test/f'}\n"))
    assert config.paths.database == tmp_path / "aggregator.db"
    assert config.paths.documents == tmp_path / "documents"
    assert config.paths.public == tmp_path / "public"
    assert config.sources[0].interval == 1800
    assert config.sources[0].enabled is True
    assert config.feed.max_items == 100
    assert config.server.port == 8080


def test_full_config(tmp_path: Path) -> None:
    text = """
database: /var/lib/agg/db.sqlite
documents: site/source/_posts
interval: 10m
timeout: {connect: 3, read: 7s, total: 1m}
max_body: 2MiB
feed: {folder: out, title: T, link: 'https://example.org/feeds', max_items: 5}
sources:
  - name: one
    url: https://example.org/rss
    title: One
    author: Someone
    categories: [a, b]
    interval: 2h
    enabled: false
  - {name: two, url: 'http://example.org/two'}
"""
    config = load_config(write(tmp_path, text))
    assert config.paths.database == Path("/var/lib/agg/db.sqlite")
    assert config.paths.documents == tmp_path / "site/source/_posts"
    assert config.feed.link == "https://example.org/feeds/"
    assert config.max_body == 2 * 2**20
    assert (config.connect_timeout, config.read_timeout, config.total_timeout) == (3, 7, 60)
    one, two = config.sources
    assert one.interval == 7200 and not one.enabled and one.categories == ("a", "b")
    assert two.interval == 600


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sources:\n  - {name: a, url: 'http://x.test/', colour: red}\n", r"sources\[0\]\.colour"),
        ("sources:\n  - {name: a}\n", r"sources\[0\]\.url.*: missing"),
        ("sources:\n  - {url: 'http://x.test/'}\n", r"sources\[0\]\.name.*: missing"),
        (
            "sources:\n  - {name: a, url: 'http://x.test/1'}\n  - {name: a, url: 'http://x.test/2'}\n",
            r"sources\[1\]\.name",
        ),
        ("sources:\n  - {name: a, url: 'http://x.test/', interval: 5 parsecs}\n", "interval"),
        ("sources:\n  - {name: a, url: 'ftp://x.test/'}\n", r"sources\[0\]\.url"),
        ("sources:\n  - {name: 'A B', url: 'http://x.test/'}\n", r"sources\[0\]\.name"),
        ("sources:\n  - {name: a, url: 'http://x.test/', categories: {x: 1}}\n", "categories"),
        ("sources:\n  - {name: a, url: 'http://x.test/', enabled: maybe}\n", "enabled"),
        ("sources: {name: a}\n", "sources"),
        ("feed: {max_items: -3}\n", "feed.max_items"),
        ("server: {port: 70000}\n", "server.port"),
        ("colour: red\n", r"colour \(line 1\): unknown key"),
        ("sources: [\n", "not valid YAML"),
    ],
)
def test_mistakes_name_file_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert re.search(expected, message), message
    assert "\n" not in message


def test_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - name: a\n    url: http://x.test/\n    interval: soon\n")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.interval \(line 4\)"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")


def test_durations_and_sizes() -> None:
    assert parse_duration("90") == 90
    assert parse_duration(45) == 45
    assert parse_duration("30m") == 1800
    assert parse_duration("2h") == 7200
    assert parse_duration("1d") == 86400
    for bad in ("0", "soon", "-5m", True):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_size("15MiB") == 15 * 2**20
    assert parse_size("500KB") == 500_000
    with pytest.raises(ValueError):
        parse_size("lots")


def test_document_options(tmp_path: Path) -> None:
    text = """
documents_timezone: Asia/Shanghai
front_matter:
  cover: "{image}"
  author: null
  title: "{safe_title}"
  title_display: true
  sticky: 3
  tags: ["{source_title}", aggregated]
  description: "{excerpt} (from {source_title}, {{literal}})"
sources:
  - {name: a, url: 'http://x.test/f'}
"""
    options = load_config(write(tmp_path, text)).document_options
    assert options.timezone == "Asia/Shanghai"
    keys = [key for key, _ in options.front_matter]
    assert keys == ["cover", "author", "title", "title_display", "sticky", "tags", "description"]
    values = dict(options.front_matter)
    assert values["cover"] == Template("{image}", ("image",))
    assert values["author"] is None
    assert values["title_display"] is True and values["sticky"] == 3
    assert values["tags"] == (
        Template("{source_title}", ("source_title",)),
        Template("aggregated", ()),
    )
    assert values["description"].fields == ("excerpt", "source_title")


def test_document_options_default_to_the_seed_format(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "sources: []\n"))
    assert config.document_options == DocumentOptions()
    assert config.document_options.timezone is None and config.document_options.front_matter == ()


ZONE = r"documents_timezone \(line 1\): "
COVER = r"front_matter\.cover \(line 2\): "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("documents_timezone: Mars/Olympus\n", ZONE + "'Mars/Olympus' is not a time zone"),
        ("documents_timezone: ../../etc/passwd\n", ZONE + ".* is not a time zone"),
        ("documents_timezone: Asia\n", ZONE + "'Asia' is not a time zone"),
        ("documents_timezone: 8\n", ZONE + "'8' is not a time zone"),
        ("front_matter:\n  cover: '{imgae}'\n", COVER + r"unknown field \{imgae\}"),
        ("front_matter:\n  cover: '{image.__class__}'\n", COVER + "unknown field"),
        ("front_matter:\n  cover: '{image!r}'\n", COVER + ".*without ! or :"),
        ("front_matter:\n  cover: '{image:>9}'\n", COVER + ".*without ! or :"),
        ("front_matter:\n  cover: '{image'\n", COVER + ".* is not a template"),
        ("front_matter:\n  cover: '{}'\n", COVER + r"unknown field \{\}"),
        ("front_matter:\n  x: {a: 1}\n", r"front_matter\.x \(line 2\): expected a template"),
        ("front_matter:\n  x: ''\n", r"front_matter\.x \(line 2\): must not be empty"),
        ("front_matter:\n  tags: ['{title}', 3]\n", r"front_matter\.tags \(line 2\): expected"),
        ("front_matter:\n  'a b': x\n", r"front_matter\.a b \(line 2\): a key is"),
        ("front_matter:\n  1: x\n", r"front_matter\.1 \(line 2\): a key is"),
        ("front_matter: [cover]\n", r"front_matter \(line 1\): expected a mapping"),
    ],
    ids=["unknown-zone", "path-zone", "zone-folder", "number-zone", "unknown-field",
         "attribute-access", "conversion", "format-spec", "unclosed", "positional",
         "mapping-value", "empty", "list-with-number", "key-with-space", "number-key",
         "not-a-mapping"],
)  # fmt: skip
def test_document_option_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert re.search(expected, message), message
    assert "\n" not in message


# -- every value of every key: a config either loads or is refused in one line (issue 13.8) --

BASE = {
    "database": "state/agg.db",
    "documents": "docs",
    "interval": "30m",
    "sources": [{"name": "news", "url": "http://127.0.0.1:9/feed"}],
}
KEY_PATHS = [
    *[(key,) for key in sorted(TOP_KEYS - {"sources"})],
    *[("feed", key) for key in sorted(FEED_KEYS)],
    *[("server", key) for key in sorted(SERVER_KEYS)],
    *[("timeout", key) for key in sorted(TIMEOUT_KEYS)],
    *[("images", key) for key in sorted(IMAGE_KEYS)],
    *[("limits", key) for key in sorted(LIMIT_KEYS)],
    *[("sources", 0, key) for key in sorted(SOURCE_KEYS)],
    ("sources",),
    ("front_matter", "cover"),
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["1e400", "-1", "0", "999999999999d", "99999999999999999999", "1.5",
                       "1e-9s", "15MiB", "999999999999GiB", "0.5s", ".inf", "nan", "30d",
                       "31d", "2h", "", " ", "\x00", "a\nb", "../x", "/", "x" * 300])
    | st.text(max_size=20)
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def with_value(path: tuple, value: object) -> dict:
    config = copy.deepcopy(BASE)
    if path[0] == "images":
        config["images"] = {"folder": "img", "url": "/img/"}
    node: Any = config
    for step in path[:-1]:
        if isinstance(step, str) and step not in node:
            node[step] = {}
        node = node[step]
    node[path[-1]] = value
    return config


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(KEY_PATHS), value=VALUES)
def test_any_value_of_any_key_loads_or_is_one_config_error(
    tmp_path_factory: pytest.TempPathFactory, path: tuple, value: object
) -> None:
    folder = tmp_path_factory.mktemp("config")
    file = folder / "config.yaml"
    file.write_text(yaml.safe_dump(with_value(path, value), allow_unicode=True), "utf-8")
    try:
        config = load_config(file)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{file}: ")
        return
    check_usable(config)


def check_usable(config: Config) -> None:
    """What later steps do with the numbers works for every value that loads: dates a
    poll computes, SQLite parameters, C ints (the numbers are within README's ranges)."""
    far = datetime.now(UTC) + timedelta(days=366)
    durations = [config.max_interval, *(source.interval for source in config.sources)]
    for seconds in durations:
        assert 1 <= seconds <= 30 * 86400
        assert far + timedelta(seconds=next_delay(seconds, max_interval=config.max_interval))
    for seconds in (config.connect_timeout, config.read_timeout, config.total_timeout):
        assert 1 <= seconds <= 3600
    assert 1 <= config.feed.max_items <= 100_000
    assert 1 <= config.workers <= 64
    assert 1 <= config.max_redirects <= 30
    assert 1024 <= config.max_body <= 2**30
    assert config.images is None or 1024 <= config.images.max_size <= 2**30
    assert 1024 <= config.limits.content <= 2**30
    for source in config.sources:
        assert source.keep is None or 1 <= source.keep <= 1_000_000
        for pattern in (*source.include, *source.exclude):
            compile_filter(pattern)
    keeps = [source.keep for source in config.sources]
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        for keep in keeps or [None]:
            db.execute("SELECT ?, ?", (config.feed.max_items, keep))


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=" \n-:[]{}'\"#|>&*!?,.0123456789abcdefmsd\t\\%@`", max_size=80))
def test_any_text_loads_or_is_one_config_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    file = tmp_path_factory.mktemp("config") / "config.yaml"
    file.write_text(text, "utf-8")
    try:
        load_config(file)
    except ConfigError as exc:
        assert "\n" not in str(exc)


SOURCE = "sources:\n  - name: a\n    url: http://x.test/\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("interval: 999999999999d\n",
         r"interval \(line 1\): '999999999999d' is not between 1s and 30d"),
        (SOURCE + "    interval: 31d\n",
         r"sources\[0\]\.interval \(line 4\): '31d' is not between 1s and 30d"),
        ("max_interval: 2592001\n", r"max_interval \(line 1\): 2592001 is not between 1s and 30d"),
        ("interval: .inf\n", r"interval \(line 1\): inf is not a duration"),
        ("interval: .nan\n", r"interval \(line 1\): nan is not a duration"),
        ("timeout: {read: 1e400}\n", r"timeout\.read \(line 1\): inf is not a duration"),
        ("timeout: {total: 2h}\n", r"timeout\.total \(line 1\): '2h' is not between 1s and 1h"),
        ("timeout: 3601\n", r"timeout\.read: 3601 is not between 1s and 1h"),
        ("feed: {max_items: 99999999999999999999}\n",
         r"feed\.max_items \(line 1\): 99999999999999999999 is more than 100,000"),
        ("workers: 65\n", r"workers \(line 1\): 65 is more than 64"),
        ("max_redirects: 31\n", r"max_redirects \(line 1\): 31 is more than 30"),
        ("max_body: 2GiB\n", r"max_body \(line 1\): '2GiB' is not between 1KiB and 1GiB"),
        ("max_body: 100\n", r"max_body \(line 1\): 100 is not between 1KiB and 1GiB"),
        ("images: {folder: i, url: /i/, max_size: 999999999999GiB}\n",
         r"images\.max_size \(line 1\): '999999999999GiB' is not between"),
        ("limits: {content: 5GiB}\n",
         r"limits\.content \(line 1\): '5GiB' is not between 1KiB and 1GiB"),
        (SOURCE + "    keep: 1000001\n",
         r"sources\[0\]\.keep \(line 4\): 1000001 is more than 1,000,000"),
        ("user_agent: \"agent\\nInjected: header\"\n",
         r"user_agent \(line 1\): 'agent\\nInjected: header' must be one line"),
        ("feed: {title: \"News\\e[2J\"}\n",
         r"feed\.title \(line 1\): 'News\\x1b\[2J' holds a control character"),
        ("database: \"db\\0\"\n", r"database \(line 1\): 'db\\x00' holds a control character"),
        ("database: /\n", r"database \(line 1\): / is a folder; name a file in it"),
        ("\"a\\nb\": 1\n", r": a\\nb \(line 1\): unknown key"),
    ],
    ids=["interval", "source-interval", "max-interval", "infinite", "not-a-number",
         "timeout-1e400", "timeout-hours", "timeout-number", "max-items", "workers",
         "redirects", "max-body-large", "max-body-small", "image-size", "content-limit",
         "keep", "user-agent-lines", "control-character", "nul-in-path", "database-folder",
         "key-with-newline"],
)  # fmt: skip
def test_every_number_has_a_range_and_texts_no_controls(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert re.search(expected, message), message


def test_the_ends_of_each_range_load(tmp_path: Path) -> None:
    text = (
        "interval: 30d\nmax_interval: 1s\ntimeout: {connect: 1, read: 1h, total: 3600}\n"
        "max_body: 1GiB\nworkers: 64\nmax_redirects: 30\nfeed: {max_items: 100000}\n"
        "images: {folder: i, url: /i/, max_size: 1KiB}\n" + SOURCE + "    keep: 1000000\n"
    )
    config = load_config(write(tmp_path, text))
    assert (config.sources[0].interval, config.max_interval) == (30 * 86400, 1)
    assert (config.connect_timeout, config.read_timeout, config.total_timeout) == (1, 3600, 3600)
    assert (config.max_body, config.workers, config.max_redirects) == (2**30, 64, 30)
    assert config.feed.max_items == 100_000 and config.sources[0].keep == 1_000_000
    assert config.images is not None and config.images.max_size == 1024


def test_deep_nesting_is_one_config_error_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - name: a\n    categories: " + "[" * 60 + "]" * 60 + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path} (line 3): nested too deeply: more than 50 levels of lists and mappings "
        "(a config needs four or five); is it the right file?"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("ui_language:\n", None),
        ("ui_language: en\n", "en"),
        ("ui_language: zh\n", "zh-Hans"),
        ("ui_language: zh-CN\n", "zh-Hans"),
        ("ui_language: ZH-hans\n", "zh-Hans"),
        ("ui_language: zh-Hant\n", "zh-Hant"),
        ("ui_language: zh-TW\n", "zh-Hant"),
        ("ui_language: zh-HK\n", "zh-Hant"),
    ],
    ids=["absent", "null", "en", "zh", "zh-CN", "case", "zh-Hant", "zh-TW", "zh-HK"],
)
def test_ui_language_fixes_the_index_pages_language(
    tmp_path: Path, text: str, expected: str | None
) -> None:
    config = load_config(write(tmp_path, text + SOURCE))
    assert config.ui_language == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ui_language: fr\n",
         r"ui_language \(line 1\): 'fr' is not a language of the index page \(allowed: en, zh, "
         r"zh-Hans, zh-CN, zh-Hant, zh-TW, zh-HK; leave it out to follow each reader's "
         r"browser\)$"),
        ("ui_language: zh-SG\n", r"ui_language \(line 1\): 'zh-SG' is not a language"),
        ("ui_language: [en, zh]\n", r"ui_language \(line 1\): expected text, got a list"),
        ("ui_language: true\n", r"ui_language \(line 1\): expected text, got bool True"),
        ("ui_language: ''\n", r"ui_language \(line 1\): must not be empty"),
        ("ui_language: 7\n", r"ui_language \(line 1\): '7' is not a language"),
        ("server: {ui_language: zh}\n", r"server\.ui_language \(line 1\): unknown key"),
    ],
    ids=["French", "a region not offered", "list", "bool", "empty", "number", "misplaced"],
)  # fmt: skip
def test_ui_language_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert re.search(expected, message), message


@pytest.mark.parametrize("text", ["._: null\n", "sources: -_\n", "user_agent: [._]\n"])
def test_plain_values_the_yaml_reader_trips_on_are_a_config_error(
    tmp_path: Path, text: str
) -> None:
    """ruamel.yaml raises ValueError / IndexError on these (found by hypothesis)."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="not valid YAML: a plain value the YAML reader cannot"):
        load_config(path)
