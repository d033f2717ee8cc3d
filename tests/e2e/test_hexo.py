"""The documents built into a real Hexo site (hexo from the npm registry, landscape theme).

Every document must become a page with its title, date and categories, and Hexo must not
complain about any front matter.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from feedworld import DATA, serve_site_sources

HEXO = Path(__file__).resolve().parents[1] / "hexo"
TRICKY_TITLES = [
    "It's a 'quoted' title: with colon # and hash",
    '- leading dash and "double quotes"',
    "@mention {{ not a template }} {% neither %}",
    "yes",
    "C:\\path\\like & <tags>",
    "…省略号与「引号」：中文标点",
]


def hexo_modules() -> Path:
    """node_modules for the check site, installed from its lock file on first use."""
    modules = HEXO / "node_modules"
    if not (modules / "hexo").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to build the Hexo site (install Node.js and npm)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HEXO,
            check=True,
            timeout=600,
        )
    return modules


def front_matter(path: Path) -> dict:
    head = path.read_text(encoding="utf-8")[4:].split("\n---\n", 1)[0]
    return yaml.safe_load(head)


def test_every_document_becomes_a_hexo_page(feed_server, tmp_path: Path) -> None:
    modules = hexo_modules()
    site = tmp_path / "site"
    site.mkdir()
    for name in ("_config.yml", "package.json"):
        shutil.copy(HEXO / name, site / name)
    (site / "node_modules").symlink_to(modules)

    sources = serve_site_sources(feed_server, TRICKY_TITLES, "<p>No image here. 没有图片。</p>")
    feed_server.serve("/rdf", (DATA / "rss10.rdf").read_bytes())
    sources.append({"name": "rdf", "url": feed_server.url("/rdf"), "title": "RDF Site"})
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"documents": str(site / "source/_posts"), "sources": sources}, allow_unicode=True
        ),
        encoding="utf-8",
    )
    result = run_cli("update", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    documents = sorted((site / "source/_posts").glob("*.md"))
    assert len(documents) == 1 + (len(TRICKY_TITLES) + 1) + 2 + 2

    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    built = subprocess.run(
        [str(modules / ".bin/hexo"), "generate"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    complaints = [
        line
        for line in (built.stdout + built.stderr).splitlines()
        if any(word in line for word in ("WARN", "ERROR", "YAMLException", "Deprecation"))
    ]
    assert complaints == []
    assert "files generated" in built.stdout  # the log was not silenced

    for document in documents:
        meta = front_matter(document)
        date = parsedate_to_datetime(meta["date"]).astimezone(UTC)
        page = site / "public" / f"{date:%Y/%m/%d}" / document.stem / "index.html"
        assert page.is_file(), f"no page for {document.name}"
        text = page.read_text(encoding="utf-8")
        page_title = html.unescape(text.split("<title>", 1)[1].split("</title>", 1)[0])
        assert page_title == f"{meta['title']} | Aggregator check"
        stamp = datetime.fromisoformat(text.split('datetime="', 1)[1].split('"', 1)[0])
        assert stamp == date
        for category in meta["categories"]:
            assert f">{html.escape(category, quote=False)}</a>" in text, (document.name, category)
        body = text.split("article-entry", 1)[1].split('<footer class="article-footer">', 1)[0]
        assert "<script" not in body
        source_body = document.read_text(encoding="utf-8").split("\n<div>\n", 1)[1]
        images = source_body.count("<img")
        assert body.count("<img") == images
        assert body.count('referrerpolicy="no-referrer"') >= images
