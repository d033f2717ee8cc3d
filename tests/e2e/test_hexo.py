"""The documents built into real Hexo sites (from the npm registry, landscape theme): Hexo 8
(tests/hexo) and Hexo 7.3.0 (tests/hexo7, the version Icarus requires), which runs Nunjucks
over every post, so that a lone `#}` in a body stopped its build.

Every document must become a page at `/:year/:month/:day/<name without the date>/` (the
README's `new_post_name` setting) with its title, date and categories; what the feed wrote
must reach the reader as text (template syntax included); no theme attribute may be broken
out of by a quote in an image URL; and Hexo must not complain about any front matter. With
Hexo's `timezone: Asia/Shanghai` and `documents_timezone: Asia/Shanghai`, every post keeps
its instant, whatever the machine's own zone.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from conftest import run_cli
from feedworld import DATA, rsshub_feed, rsshub_item, serve_site_sources
from probes import MOMENT, PROBE_DOCUMENTS, TITLES, serve_probe_sources
from selectolax.lexbor import LexborHTMLParser

TESTS = Path(__file__).resolve().parents[1]
SITES = {"hexo8": TESTS / "hexo", "hexo7": TESTS / "hexo7"}
TRICKY_TITLES = [
    "It's a 'quoted' title: with colon # and hash",
    '- leading dash and "double quotes"',
    "@mention {{ not a template }} {% neither %}",
    "yes",
    "C:\\path\\like & <tags>",
    "…省略号与「引号」：中文标点",
    "Option<T> and Result<T, E> in Rust",  # tag-shaped, no element: kept as text
    "می\u200cخواهم بدانم 👩\u200d💻",  # a zero-width non-joiner, an emoji sequence
]
DATED_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-")


def hexo_modules(skeleton: Path) -> Path:
    """node_modules for a check site, installed from its lock file on first use."""
    modules = skeleton / "node_modules"
    if not (modules / "hexo").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to build the Hexo site (install Node.js and npm)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=skeleton,
            check=True,
            timeout=600,
        )
    return modules


def front_matter(path: Path) -> dict:
    head = path.read_text(encoding="utf-8")[4:].split("\n---\n", 1)[0]
    return yaml.safe_load(head)


def make_site(tmp_path: Path, skeleton: Path, **settings: str) -> tuple[Path, Path]:
    """A site from a skeleton (its `_config.yml` with `settings` changed) and its hexo."""
    modules = hexo_modules(skeleton)
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(skeleton / "package.json", site / "package.json")
    config = (skeleton / "_config.yml").read_text(encoding="utf-8")
    for key, value in settings.items():
        config = re.sub(rf"(?m)^{key}:.*$", f"{key}: {value}", config)
    (site / "_config.yml").write_text(config, encoding="utf-8")
    (site / "node_modules").symlink_to(modules)
    return site, modules / ".bin/hexo"


def write_documents(tmp_path: Path, site: Path, sources: list[dict], **settings: object) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"documents": str(site / "source/_posts"), "sources": sources, **settings},
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    result = run_cli("update", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


def generate(site: Path, hexo: Path, machine_zone: str = "UTC") -> None:
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", "TZ": machine_zone}
    built = subprocess.run(
        [str(hexo), "generate"], cwd=site, capture_output=True, text=True, timeout=300, env=env
    )
    assert built.returncode == 0, built.stdout + built.stderr
    complaints = [
        line
        for line in (built.stdout + built.stderr).splitlines()
        if any(word in line for word in ("WARN", "ERROR", "YAMLException", "Deprecation"))
    ]
    assert complaints == []
    assert "files generated" in built.stdout  # the log was not silenced


def page_of(site: Path, document: Path) -> Path:
    """The page Hexo made of a document: its URL ends in the name without the date."""
    slug = DATED_NAME.sub("", document.stem)
    assert slug != document.stem
    found = [path for path in (site / "public").glob(f"*/*/*/{slug}/index.html")]
    assert len(found) == 1, f"no page (or several) for {document.name}: {found}"
    return found[0]


def article_body(page: str) -> str:
    return page.split("article-entry", 1)[1].split('<footer class="article-footer">', 1)[0]


@pytest.mark.parametrize("version", list(SITES))
def test_every_document_becomes_a_hexo_page(feed_server, tmp_path: Path, version: str) -> None:
    site, hexo = make_site(tmp_path, SITES[version])
    sources = serve_site_sources(feed_server, TRICKY_TITLES, "<p>No image here. 没有图片。</p>")
    feed_server.serve("/rdf", (DATA / "rss10.rdf").read_bytes())
    sources.append({"name": "rdf", "url": feed_server.url("/rdf"), "title": "RDF Site"})
    probes = [
        source for source in serve_probe_sources(feed_server) if source["name"] != "aljazeera"
    ]
    write_documents(tmp_path, site, sources + probes)
    documents = sorted((site / "source/_posts").glob("*.md"))
    assert len(documents) == 1 + (len(TRICKY_TITLES) + 1) + 2 + 2 + PROBE_DOCUMENTS - 1
    assert set(TRICKY_TITLES) <= {front_matter(document)["title"] for document in documents}

    generate(site, hexo)

    for document in documents:
        meta = front_matter(document)
        date = parsedate_to_datetime(meta["date"]).astimezone(UTC)
        page = page_of(site, document)
        # No date twice in the URL: /2022/01/28/<title>-<hash>/, the date being the post's.
        assert page.parent.parent.relative_to(site / "public") == Path(f"{date:%Y/%m/%d}")
        text = page.read_text(encoding="utf-8")
        page_title = html.unescape(text.split("<title>", 1)[1].split("</title>", 1)[0])
        assert page_title == f"{meta['title']} | Aggregator check"
        stamp = datetime.fromisoformat(text.split('datetime="', 1)[1].split('"', 1)[0])
        assert stamp == date
        for category in meta["categories"]:
            assert f">{html.escape(category, quote=False)}</a>" in text, (document.name, category)
        body = article_body(text)
        assert "<script" not in body
        source_body = document.read_text(encoding="utf-8").split("\n<div>\n", 1)[1]
        images = source_body.count("<img")
        assert body.count("<img") == images
        assert body.count('referrerpolicy="no-referrer"') >= images
        tree = LexborHTMLParser(text)
        assert not [node for node in tree.css("*") if "onerror" in node.attributes]
        assert "javascript:" not in "".join(a.attributes.get("href") or "" for a in tree.css("a"))
        assert not [node for node in tree.css("[alt]") if "<" in (node.attributes["alt"] or "")]
        assert '<figure class="highlight' not in body  # no fence taken out of a listing
        assert "&lt;/br&gt;" not in body and "&amp;#" not in body

    probe = next(d for d in documents if front_matter(d)["title"].startswith("Shell: echo"))
    shown = LexborHTMLParser(article_body(page_of(site, probe).read_text("utf-8"))).text()
    for text in ("${#}", "{# note #}", "{{ site.title }}", "{% raw %}", "{{< gist x >}}", "#} }}"):
        assert text in shown, text  # the feed's text, not a template's doing
    assert "two abc" in shown and "</br>" not in shown  # <br></br>, &#X61;b: not as text


def test_hexo_timezone_keeps_every_instant(feed_server, tmp_path: Path) -> None:
    """Hexo reads a front-matter date as wall time in its `timezone` and ignores any offset
    (every post of an RFC 822 GMT date came out 8 h early in Asia/Shanghai): with
    `documents_timezone` set alike, each post's `<time datetime>` is the entry's instant,
    on a machine in yet another zone."""
    site, hexo = make_site(tmp_path, SITES["hexo8"], timezone="Asia/Shanghai")
    write_documents(
        tmp_path, site, serve_probe_sources(feed_server), documents_timezone="Asia/Shanghai"
    )
    documents = sorted((site / "source/_posts").glob("*.md"))
    assert len(documents) == PROBE_DOCUMENTS
    generate(site, hexo, machine_zone="America/New_York")
    # The feeds' own instants: the golden item's, and the probes' (one a minute apart).
    published = {datetime(2022, 1, 28, 4, 45, 33, tzinfo=UTC)}
    published |= {MOMENT.replace(minute=index) for index in range(len(TITLES))}
    stamps = set()
    for document in documents:
        written = front_matter(document)["date"]  # YAML reads the wall time as a datetime
        assert isinstance(written, datetime) and written.tzinfo is None
        page = page_of(site, document).read_text(encoding="utf-8")
        stamp = datetime.fromisoformat(page.split('datetime="', 1)[1].split('"', 1)[0])
        assert stamp == written.replace(tzinfo=ZoneInfo("Asia/Shanghai")), document.name
        assert stamp in published, (document.name, stamp)
        stamps.add(stamp)
    assert stamps == published


# The loop closed to a published site: `aggregator update` with `hexo generate` as its hook
# puts each new post into public/ by itself, and the deploy hook after it is told exactly
# which documents were written.
DEPLOY = """\
import os, sys
written = open(os.environ["AGGREGATOR_WRITTEN_LIST"]).read().split()
with open(sys.argv[1], "a") as log:
    log.write(",".join(sorted(os.path.basename(path) for path in written)) + "\\n")
"""


def test_hexo_generate_as_a_publish_hook_builds_each_new_post(feed_server, tmp_path: Path) -> None:
    site, hexo = make_site(tmp_path, SITES["hexo8"])
    feed_server.serve("/news", rsshub_feed([rsshub_item(1), rsshub_item(2)]))
    deploy_log, deploy = tmp_path / "deployed.log", tmp_path / "deploy.py"
    deploy.write_text(DEPLOY)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "documents": str(site / "source/_posts"),
                "sources": [{"name": "news", "url": feed_server.url("/news")}],
                "hooks": [
                    {
                        "name": "generate",
                        "run": [str(hexo), "generate"],
                        "cwd": str(site),
                        "timeout": 300,
                        "when": "documents",
                        "env": {"NO_COLOR": "1"},
                    },
                    {"name": "deploy", "run": [sys.executable, str(deploy), str(deploy_log)]},
                ],
            }
        )
    )
    first = run_cli("update", "--config", str(config), timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "hook generate: ok" in first.stdout and "hook deploy: ok" in first.stdout
    documents = sorted((site / "source/_posts").glob("*.md"))
    assert len(documents) == 2
    pages = "".join(page_of(site, document).read_text() for document in documents)
    assert "新闻标题 第1条" in pages and "新闻标题 第2条" in pages  # built by the hook

    feed_server.serve("/news", rsshub_feed([rsshub_item(n) for n in (1, 2, 3)]))
    second = run_cli("update", "--config", str(config), timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    (new,) = set((site / "source/_posts").glob("*.md")) - set(documents)
    page = page_of(site, new)  # generated by the hook, not by this test
    assert "新闻标题 第3条" in page.read_text()
    deployed = deploy_log.read_text().splitlines()
    assert deployed == [",".join(sorted(d.name for d in documents)), new.name]
