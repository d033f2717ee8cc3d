"""The documents, in `documents_format: jekyll`, built into a real Jekyll site (tests/jekyll:
Debian's jekyll 4 with its minima theme, no Gemfile, no network) with Jekyll's default
permalink, which makes every category a folder and parsed a source title with `:` as a URL
scheme (`Liquid Exception: Invalid scheme format`).

Every document must become a page with its title and instant; no template syntax from the
feed may run (Liquid); kramdown must show neither `</br>` nor `&#X61;` as text; the home
page's excerpts must be the bounded excerpt, not the whole post, with the feed's escaped
markup kept as text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from feedworld import serve_site_sources
from probes import LONG_TEXT, PORTAL, PROBE_DOCUMENTS, serve_probe_sources
from selectolax.lexbor import LexborHTMLParser

JEKYLL_SITE = Path(__file__).resolve().parents[1] / "jekyll"
JEKYLL = shutil.which("jekyll")
TRICKY_TITLES = [
    "It's a 'quoted' title: with colon # and hash",
    "{{ site.title }} and {% raw %}",
    "yes",
    "…省略号与「引号」：中文标点",
]
DATED_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-")

pytestmark = pytest.mark.skipif(
    JEKYLL is None,
    reason="jekyll is not installed (apt-get install -y jekyll; .ci/run installs it)",
)


def front_matter(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")[4:].split("\n---\n", 1)[0])


def test_every_document_becomes_a_jekyll_page(feed_server, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(JEKYLL_SITE, site)
    sources = serve_site_sources(
        feed_server, TRICKY_TITLES, "<p>{% raw %} No image. 没有图片。</p>"
    )
    sources += [s for s in serve_probe_sources(feed_server) if s["name"] != "aljazeera"]
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"documents": str(site / "_posts"), "documents_format": "jekyll", "sources": sources},
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    result = run_cli("update", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    documents = sorted((site / "_posts").glob("*.md"))
    assert len(documents) == 1 + (len(TRICKY_TITLES) + 1) + 2 + PROBE_DOCUMENTS - 1

    assert JEKYLL is not None
    built = subprocess.run(
        [JEKYLL, "build", "--source", str(site), "--destination", str(site / "_site")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=site,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert not [line for line in output.splitlines() if re.search(r"(?i)warn|error", line)]
    assert "done in" in output  # the build summary was printed, the log not silenced

    for document in documents:
        meta = front_matter(document)
        slug = DATED_NAME.sub("", document.stem)
        pages = list((site / "_site").rglob(f"{slug}.html"))
        assert len(pages) == 1, (document.name, pages)
        # Under the default permalink each category is a folder: the ones written, as words.
        folders = pages[0].relative_to(site / "_site").parts[:-4]
        assert list(folders) == [name.lower() for name in meta["categories"]], document.name
        page = pages[0].read_text(encoding="utf-8")
        tree = LexborHTMLParser(page)
        title = tree.css_first("h1.post-title")
        assert title is not None and title.text().strip() == meta["title"]
        time = tree.css_first("time.dt-published")
        assert time is not None
        stamp = datetime.fromisoformat(time.attributes["datetime"] or "")
        assert stamp == datetime.strptime(meta["date"], "%Y-%m-%d %H:%M:%S %z")
        content = tree.css_first("div.post-content")
        assert content is not None
        body = content.html or ""
        assert "&lt;/br&gt;" not in body and "&amp;#" not in body  # kramdown took them as HTML
        assert "<script" not in body
        assert not [node for node in tree.css("*") if "onerror" in node.attributes]
        source_body = document.read_text(encoding="utf-8").split("\n<div>\n", 1)[1]
        assert body.count("<img") == source_body.count("<img")

    portal = next(d for d in documents if "news" in d.stem and front_matter(d)["categories"])
    assert front_matter(portal)["categories"] == [
        "Varthabharathi Kanrnatakas Leading Kannada News Portal"
    ]
    assert PORTAL.startswith("Varthabharathi :")

    probe = next(d for d in documents if front_matter(d)["title"].startswith("Shell: echo"))
    slug = DATED_NAME.sub("", probe.stem)
    shown = LexborHTMLParser(next((site / "_site").rglob(f"{slug}.html")).read_text("utf-8"))
    text = shown.css_first("div.post-content").text()  # type: ignore[union-attr]
    for piece in ("${#}", "{# note #}", "{{ site.title }}", "{% raw %}", "{{< gist x >}}"):
        assert piece in text, piece  # the feed's text: Liquid ran none of it
    assert "two abc" in text and "</br>" not in text

    # The home page lists each post with its excerpt: bounded, not the whole post, and the
    # feed's escaped markup (<b>bold</b> written as text) stays text.
    home = LexborHTMLParser((site / "_site" / "index.html").read_text(encoding="utf-8"))
    items = home.css("ul.post-list > li")
    assert len(items) == len(documents)
    for item in items:
        excerpt = item.text(separator=" ")
        assert len(" ".join(excerpt.split())) < 300 + 200  # date and title around it
        assert LONG_TEXT.strip() not in excerpt
    assert "Write <b>bold</b> as text" in home.text()
    assert not home.css("ul.post-list b")
