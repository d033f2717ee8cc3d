"""OPML in and out: reading a feed reader's export, planning the import, editing config.yaml
without losing its comments, and exporting valid OPML 2.0 that imports back the same."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from conftest import run_cli
from feedworld import DATA

from aggregator.config.settings import load_config
from aggregator.config.subscriptions import NewSource, add_sources, plan_import, source_name
from aggregator.errors import ConfigError, OpmlError
from aggregator.models import Source
from aggregator.sources.opml import Subscription, parse_opml, render_opml

OPML = DATA / "subscriptions.opml"
CONFIG = """\
# My aggregator. Paths are relative to this file.
database: data/aggregator.db     # created on first run
documents: documents

feed:
  title: My news   # shown by readers
  link: http://127.0.0.1:8080/

sources:
  # The first source, kept by hand.
  - name: python-insider
    url: https://blog.python.org/feeds/posts/default
    title: Python Insider
    categories: [Tech, Python]

  - name: paused
    url: https://example.net/feed   # not now
    enabled: false
"""


def test_nested_folders_become_categories() -> None:
    found = {item.url: item for item in parse_opml(OPML.read_bytes())}
    bbc = found["https://feeds.bbci.co.uk/zhongwen/simp/rss.xml"]
    assert bbc.categories == ("新闻", "国际")
    assert bbc.title == "BBC 中文网"
    news = found["https://rsshub.app/aljazeera/chinese/news"]
    assert news == Subscription(
        "https://rsshub.app/aljazeera/chinese/news",
        "半岛电视台 - 新闻",
        "https://chinese.aljazeera.net/news",
        ("新闻",),
    )
    # A folder without a title adds no category; the category attribute adds its parts.
    assert found["https://three.example.org/atom.xml"].categories == ()
    assert found["https://blog.python.org/feeds/posts/default"].categories == (
        "Tech",
        "Python",
        "Blogs",
        "Core",
    )


def test_sloppy_but_common_opml_is_read_whole() -> None:
    urls = [item.url for item in parse_opml(OPML.read_bytes())]
    assert "https://lwn.net/headlines/rss?format=rss&full=1" in urls  # lower-case xmlurl
    assert "https://example.org/search?q=rss&lang=en" in urls  # a bare & kept, not dropped
    assert "https://example.org/" not in urls  # a bookmark is not a feed
    assert len(urls) == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an OPML file"),
        (b"<html><body><p>hello</p></body></html>", "found <html>"),
        (b"\x00\xff garbage", "not an OPML file"),
        (b"<opml><head/></opml>", "no <body>"),
        (
            b'<!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b'<opml><body><outline text="&b;" xmlUrl="http://x/"/></body></opml>',
            "declares XML entities",
        ),
    ],
)
def test_what_is_not_opml_is_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError) as error:
        parse_opml(data)
    assert message in str(error.value)


def test_plan_skips_duplicates_and_names_from_titles() -> None:
    existing = [Source("python-insider", "https://blog.python.org/feeds/posts/default")]
    added, skipped = plan_import(parse_opml(OPML.read_bytes()), existing)
    names = {item.name: item.url for item in added}
    assert names == {
        "rsshub-app": "https://rsshub.app/aljazeera/chinese/news",  # Chinese title: the host
        "bbc": "https://feeds.bbci.co.uk/zhongwen/simp/rss.xml",  # ASCII of the title
        "lwn-net": "https://lwn.net/headlines/rss?format=rss&full=1",
        "search-results": "https://example.org/search?q=rss&lang=en",
        "blog": "https://one.example.org/feed",
        "blog-2": "https://two.example.org/feed",
        "untitled-folder-feed": "https://three.example.org/atom.xml",
    }
    reasons = {item.url: item.reason for item in skipped}
    assert reasons == {
        "https://blog.python.org/feeds/posts/default": "already followed as python-insider",
        # http vs https and a trailing slash do not make another subscription
        "http://blog.python.org/feeds/posts/default/": "already followed as python-insider",
        "gopher://example.org/feed": "not an http:// or https:// URL",
    }


def test_source_names_are_valid_and_unique() -> None:
    assert source_name("Café Society: News!", "http://x/", []) == "cafe-society-news"
    assert source_name("新闻", "https://www.bbc.co.uk/feed", []) == "bbc-co-uk"
    assert source_name("", "http://127.0.0.1:8080/", []) == "127-0-0-1"
    assert source_name("x" * 100, "http://x/", []) == "x" * 64
    assert source_name("x" * 100, "http://x/", ["x" * 64]) == "x" * 62 + "-2"
    assert source_name("Blog", "http://x/", ["blog", "blog-2"]) == "blog-3"


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_import_command_keeps_comments_and_order(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = run_cli("import-opml", "--config", str(path), str(OPML))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "add   bbc  https://feeds.bbci.co.uk/zhongwen/simp/rss.xml  [新闻, 国际]" in lines
    assert (
        "skip  https://blog.python.org/feeds/posts/default  (already followed as python-insider)"
        in lines
    )
    assert lines[-1] == f"7 added, 3 skipped; {path} updated"

    text = path.read_text(encoding="utf-8")
    assert text.startswith(CONFIG)  # every byte of the user's file is still there, first
    assert "\n  - name: blog-2\n    url: https://two.example.org/feed\n" in text
    assert "    categories: [新闻, 国际]\n" in text
    config = load_config(path)
    assert [s.name for s in config.sources][:2] == ["python-insider", "paused"]
    assert len(config.sources) == 9
    search = next(s for s in config.sources if s.name == "search-results")
    assert search.url == "https://example.org/search?q=rss&lang=en"
    assert search.categories == ("Tech",)

    again = run_cli("import-opml", "--config", str(path), str(OPML))
    assert again.stdout.splitlines()[-1] == f"0 added, 10 skipped; {path} unchanged"
    assert path.read_text(encoding="utf-8") == text


def test_dry_run_and_broken_files_change_nothing(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    dry = run_cli("import-opml", "--dry-run", "--config", str(path), str(OPML))
    assert dry.returncode == 0
    assert dry.stdout.splitlines()[-1] == "7 added, 3 skipped; dry run, config not changed"
    broken = tmp_path / "broken.opml"
    broken.write_text("<html><body>not opml</body></html>")
    result = run_cli("import-opml", "--config", str(path), str(broken))
    assert result.returncode == 2
    assert "not an OPML file" in result.stderr
    assert path.read_text(encoding="utf-8") == CONFIG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.opml", "config.yaml"]


def test_import_into_a_config_without_sources(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# empty for now\nsources: []\n")
    assert run_cli("import-opml", "--config", str(path), str(OPML)).returncode == 0
    assert len(load_config(path).sources) == 8  # Python Insider is in the file twice
    assert path.read_text().startswith("# empty for now\nsources:\n  - name: rsshub-app\n")


def test_a_change_that_would_break_the_config_is_refused(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as error:
        add_sources(path, [NewSource("Not A Name", "https://x.example/feed")])
    assert "sources[2].name" in str(error.value)
    assert "(the file was not changed)" in str(error.value)
    assert str(path) in str(error.value)
    assert path.read_text(encoding="utf-8") == CONFIG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]  # no temp left
    add_sources(path, [NewSource("fine", "https://x.example/feed")])
    assert path.stat().st_mode & 0o777 == 0o600  # the file keeps its permissions


def test_export_is_valid_opml_2_and_imports_back_the_same(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    assert run_cli("import-opml", "--config", str(path), str(OPML)).returncode == 0
    out = tmp_path / "out.opml"
    result = run_cli("export-opml", "--config", str(path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"9 sources written to {out}"
    stdout = run_cli("export-opml", "--config", str(path)).stdout
    assert stdout.splitlines()[:2] == out.read_text(encoding="utf-8").splitlines()[:2]

    root = ET.parse(out).getroot()
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "My news"
    created = parsedate_to_datetime(root.findtext("head/dateCreated"))
    assert abs((datetime.now(UTC) - created).total_seconds()) < 600
    for outline in root.iter("outline"):
        assert outline.get("text")  # OPML 2.0 requires text on every outline
        if outline.get("xmlUrl"):
            assert outline.get("type") == "rss"

    config = load_config(path)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.yaml").write_text("sources:\n")
    assert run_cli("import-opml", "--config", str(fresh / "config.yaml"), str(out)).returncode == 0
    back = load_config(fresh / "config.yaml")
    assert sorted((s.url, s.title, s.categories) for s in back.sources) == sorted(
        (s.url, s.title or s.name, s.categories) for s in config.sources
    )


def test_render_groups_by_first_category() -> None:
    sources = [
        Source("a", "https://a.example/feed", title="A & B", categories=("Tech", "Py/thon")),
        Source("b", "https://b.example/feed"),
    ]
    data = render_opml("Mine", sources, {"a": "https://a.example/"}, datetime(2026, 1, 1))
    root = ET.fromstring(data)
    (folder, plain) = root.find("body")
    assert folder.get("text") == "Tech"
    (feed,) = folder
    assert feed.attrib == {
        "type": "rss",
        "text": "A & B",
        "title": "A & B",
        "xmlUrl": "https://a.example/feed",
        "htmlUrl": "https://a.example/",
        "category": "/Tech,/Py thon",
    }
    assert plain.get("xmlUrl") == "https://b.example/feed" and plain.get("text") == "b"
    assert [s.categories for s in parse_opml(data)] == [("Tech", "Py thon"), ()]
