"""Config: defaults, paths relative to the file, and one clear message per mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aggregator.config import load_config, parse_duration, parse_size
from aggregator.documents import DocumentOptions, Template
from aggregator.errors import ConfigError


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
