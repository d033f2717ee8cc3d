"""The documents, in `documents_format: hugo`, built into a real Hugo site (tests/hugo).

Every document must become a page with its title, date and categories (as Hugo taxonomy
terms, each listing the page), its images in `images`, its HTML body intact, the feed's
template syntax shown as text (tests/probes.py), and Hugo must not complain about anything.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from conftest import run_cli
from feedworld import serve_site_sources
from probes import PROBE_DOCUMENTS, serve_probe_sources
from selectolax.lexbor import LexborHTMLParser

HUGO_SITE = Path(__file__).resolve().parents[1] / "hugo"
HUGO = shutil.which("hugo")
TRICKY_TITLES = [
    "It's a 'quoted' title: with colon # and hash",
    '- leading dash and "double quotes"',
    "{{< shortcode >}} and {{% markdown %}} and {{ .Site.Title }}",
    "yes",
    "C:\\path\\like & <tags>",
    "…省略号与「引号」：中文标点",
]

pytestmark = pytest.mark.skipif(
    HUGO is None, reason="hugo is not installed (apt-get install -y hugo; .ci/run installs it)"
)


def front_matter(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")[4:].split("\n---\n", 1)[0])


def pages_by_document(public: Path) -> dict[str, str]:
    """Built single pages, keyed by the document file they came from."""
    pages = {}
    for page in public.rglob("index.html"):
        text = page.read_text(encoding="utf-8")
        match = re.search(r'<meta name="source-file" content="([^"]+)">', text)
        if match:
            pages[Path(html.unescape(match.group(1))).name] = text
    return pages


def between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_every_document_becomes_a_hugo_page(feed_server, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(HUGO_SITE, site)

    sources = serve_site_sources(
        feed_server, TRICKY_TITLES, "<p>{{< gist x >}} No image. 没有图片。</p>"
    )
    sources += [s for s in serve_probe_sources(feed_server) if s["name"] != "aljazeera"]
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "documents": str(site / "content" / "posts"),
                "documents_format": "hugo",
                "sources": sources,
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    result = run_cli("update", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    documents = sorted((site / "content" / "posts").glob("*.md"))
    assert len(documents) == 1 + (len(TRICKY_TITLES) + 1) + 2 + PROBE_DOCUMENTS - 1

    assert HUGO is not None
    built = subprocess.run(
        [HUGO, "--source", str(site), "--destination", str(site / "public")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert [line for line in output.splitlines() if "WARN" in line or "ERROR" in line] == []
    assert "Pages" in output  # the build summary was printed, the log not silenced

    pages = pages_by_document(site / "public")
    assert sorted(pages) == [document.name for document in documents]
    for document in documents:
        meta = front_matter(document)
        page = pages[document.name]
        assert html.unescape(between(page, "<title>", "</title>")) == meta["title"]
        assert html.unescape(between(page, '<h1 class="title">', "</h1>")) == meta["title"]
        stamp = datetime.fromisoformat(between(page, '<time datetime="', '"'))
        assert stamp == meta["date"]
        terms = re.findall(r'<li><a href="([^"]+)">([^<]*)</a></li>', page)
        assert [html.unescape(name) for _, name in terms] == meta["categories"]
        for href, _ in terms:  # each category is a real taxonomy term listing the page
            term_page = site / "public" / unquote(href).strip("/") / "index.html"
            assert term_page.is_file(), href
            assert meta["title"] in html.unescape(term_page.read_text(encoding="utf-8"))
        images = re.findall(r"<li>([^<]*)</li>", between(page, '<ul class="images">', "</ul>"))
        assert [html.unescape(image) for image in images] == meta.get("images", [])
        content = between(page, '<div class="content">', "</div>\n</article>")
        body = document.read_text(encoding="utf-8").split("\n<div>\n", 1)[1]
        assert content.count("<img") == body.count("<img")
        assert content.count('referrerpolicy="no-referrer"') >= body.count("<img")
        assert "<script" not in content
        assert "raw HTML omitted" not in content
        assert "&lt;/br&gt;" not in content and "&amp;#" not in content
        assert not [
            node for node in LexborHTMLParser(page).css("*") if "onerror" in node.attributes
        ]

    # Template syntax from the feed reached the page as text, not as a shortcode call.
    tricky = next(text for text in pages.values() if "No image. 没有图片" in text)
    assert "<p>&#123;{&lt; gist x &gt;}&#125; No image." in tricky  # shown: {{< gist x >}}
    probe = next(text for text in pages.values() if "Shell: echo" in text)
    shown = LexborHTMLParser(between(probe, '<div class="content">', "</div>\n</article>")).text()
    for piece in (
        "${#}",
        "{# note #}",
        "{{ site.title }}",
        "{% raw %}",
        "{{< gist x >}}",
        "{{% md %}}",
    ):
        assert piece in shown, piece  # the feed's text: no shortcode ran
