"""Hugo and Jekyll front matter beside the default Hexo format, and `render --all`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import FeedServer, run_cli
from feedworld import DATA, rsshub_feed, rsshub_item
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.models import Entry, Source, StoredEntry
from aggregator.outputs.document_formats import (
    RENDERERS,
    jekyll_categories,
    render_hugo,
    render_jekyll,
    renderer_for,
)
from aggregator.outputs.documents import render_document
from aggregator.sources.parse import parse_feed

ALJAZEERA = Source(
    name="aljazeera",
    url="https://rsshub.app/aljazeera/chinese/news",
    author="Aljazeera 半岛网",
    categories=("新媒体", "Aljazeera 半岛网", "新闻"),
)
IMAGE = (
    "https://chinese.aljazeera.net/wp-content/uploads/2022/01/image-1-74.jpg?w=770&resize=770%2C433"
)


def golden_stored() -> StoredEntry:
    feed = parse_feed((DATA / "aljazeera.rss").read_bytes(), ALJAZEERA, ALJAZEERA.url)
    entry = feed.entries[0]
    assert entry.published is not None
    return StoredEntry(1, entry, entry.published, entry.published, "x.md")


def split(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head), body


def test_hexo_stays_the_default_renderer() -> None:
    assert renderer_for("hexo") is render_document
    assert set(RENDERERS) == {"hexo", "hugo", "jekyll"}


def test_hugo_front_matter() -> None:
    text = render_hugo(golden_stored(), ALJAZEERA)
    meta, body = split(text)
    assert list(meta) == ["title", "date", "categories", "images", "author"]
    assert meta["title"].startswith("安理会将于31日召开会议")
    assert meta["date"] == datetime(2022, 1, 28, 4, 45, 33, tzinfo=UTC)
    assert "\ndate: 2022-01-28T04:45:33Z\n" in text  # RFC 3339
    assert meta["categories"] == ["新媒体", "Aljazeera 半岛网", "新闻"]
    assert meta["images"] == [IMAGE]
    assert meta["author"] == "Aljazeera 半岛网"
    assert body.startswith("\n<div>\n<p>白宫宣布") and body.endswith("</p>\n</div>\n")


def test_jekyll_front_matter() -> None:
    text = render_jekyll(golden_stored(), ALJAZEERA)
    meta, body = split(text)
    assert list(meta) == ["layout", "title", "date", "categories", "image", "author", "excerpt"]
    assert meta["layout"] == "post"
    assert "\ndate: 2022-01-28 04:45:33 +0000\n" in text  # Jekyll's own date form
    assert meta["categories"] == ["新媒体", "Aljazeera 半岛网", "新闻"]
    assert meta["image"] == IMAGE
    assert body == split(render_hugo(golden_stored(), ALJAZEERA))[1]


def test_template_syntax_in_entries_is_defused() -> None:
    content = "<p>{{< shortcode >}} {{% x %}} {{ site.title }} {% raw %} {#c#}</p>"
    entry = Entry("s", "1", None, "{{ title }}", None, None, None, content, None)
    stored = StoredEntry(1, entry, datetime(2024, 1, 1, tzinfo=UTC), datetime.now(UTC), "x.md")
    hugo = render_hugo(stored, None)
    assert "{{<" not in hugo and "{{%" not in hugo
    assert "&#123;{< shortcode >}&#125;" in hugo  # a browser shows {{< shortcode >}}
    jekyll = render_jekyll(stored, None)
    body = split(jekyll)[1]
    assert "{{" not in body and "{%" not in body and "%}" not in body and "}}" not in body
    assert split(jekyll)[0]["title"] == "{{ title }}"  # front matter is data, not a template


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(title=TEXT, author=TEXT, category=TEXT.filter(lambda s: s.strip()))
def test_any_title_author_and_category_stays_valid_yaml(
    title: str, author: str, category: str
) -> None:
    entry = Entry("s", "1", None, title or "t", author, None, None, "<p>x</p>", None)
    source = Source("s", "http://x/", categories=(category,))
    stored = StoredEntry(1, entry, datetime(2024, 1, 1, tzinfo=UTC), datetime.now(UTC), "x.md")
    for render in (render_hugo, render_jekyll):
        meta, _ = split(render(stored, source))
        assert isinstance(meta["title"], str)
        assert isinstance(meta["author"], str)
        assert all(isinstance(name, str) for name in meta["categories"])


@pytest.fixture
def site(tmp_path: Path, feed_server: FeedServer) -> Path:
    feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
    path = tmp_path / "config.yaml"
    path.write_text(
        f"sources:\n  - name: news\n    url: {feed_server.url('/news')}\n    categories: [新闻]\n",
        encoding="utf-8",
    )
    return path


def test_render_all_rewrites_every_document_in_the_new_format(site: Path) -> None:
    assert run_cli("update", "--config", str(site)).returncode == 0
    documents = site.parent / "documents"
    before = {p.name: p.read_text(encoding="utf-8") for p in documents.glob("*.md")}
    assert len(before) == 3
    assert all("\ncomments: false\n" in text for text in before.values())  # Hexo

    site.write_text("documents_format: hugo\n" + site.read_text(encoding="utf-8"))
    result = run_cli("render", "--all", "--config", str(site))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"3 documents written (hugo format) in {documents}"
    after = {p.name: p.read_text(encoding="utf-8") for p in documents.glob("*.md")}
    assert after.keys() == before.keys()  # same file names, rewritten in place
    for text in after.values():
        meta, _ = split(text)
        assert list(meta) == ["title", "date", "categories", "images", "author"]

    # Without --all only pending documents are written: none are.
    result = run_cli("render", "--config", str(site))
    assert result.stdout.strip() == f"0 pending documents written (hugo format) in {documents}"
    # And to another format again, in place.
    site.write_text(site.read_text(encoding="utf-8").replace("hugo", "jekyll"))
    assert run_cli("render", "--all", "--config", str(site)).returncode == 0
    for path in documents.glob("*.md"):
        assert split(path.read_text(encoding="utf-8"))[0]["layout"] == "post"


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Varthabharathi : Kanrnataka's Leading Kannada News Portal"],
         ["Varthabharathi Kanrnatakas Leading Kannada News Portal"]),
        (["News/World | Asia", "Test: odd", "#1", "C:\\path"],
         ["News World Asia", "Test odd", "1", "C path"]),
        (["新媒体", "Aljazeera 半岛网", "ಕನ್ನಡ ಸುದ್ದಿ", "हिन्दी"],
         ["新媒体", "Aljazeera 半岛网", "ಕನ್ನಡ ಸುದ್ದಿ", "हिन्दी"]),  # marks kept
        (["..", "../etc", "-x-", "a.b_c-d", "?", "{{ x }}"], ["etc", "x", "a.b_c-d"]),
        (["Same", "Same!", "same"], ["Same", "same"]),
    ],
    ids=["colon-apostrophe", "slashes-pipes", "scripts-kept", "dots-and-templates", "repeats"],
)  # fmt: skip
def test_jekyll_categories_make_good_folders(names: list[str], expected: list[str]) -> None:
    assert jekyll_categories(names) == expected
    for name in jekyll_categories(names):
        assert not re.search(r"[:/|\\?#%'\"<>{}]", name)
        assert not name.startswith((".", "-")) and not name.endswith((".", "-"))


def test_jekyll_front_matter_for_a_source_titled_with_a_colon() -> None:
    entry = Entry("s", "1", None, "T", None, None, None, "<p>x</p>", None)
    stored = StoredEntry(1, entry, datetime(2024, 1, 1, tzinfo=UTC), datetime.now(UTC), "x.md")
    source = Source("s", "http://x/", title="Varthabharathi : Kanrnataka's Leading Kannada News")
    meta, _ = split(render_jekyll(stored, source))
    assert meta["categories"] == ["Varthabharathi Kanrnatakas Leading Kannada News"]
    assert meta["excerpt"] == "x"
    meta, _ = split(render_jekyll(stored, Source("s", "http://x/", categories=("?",))))
    assert meta["categories"] == ["s"]  # punctuation alone: the source's name instead
    assert split(render_hugo(stored, source))[0]["categories"] == [source.title]  # Hugo: as is


def test_jekyll_excerpt_is_the_plain_text_bounded() -> None:
    content = "<p>" + "Lorem ipsum dolor sit amet. " * 30 + "</p><p>{{ site.title }}</p>"
    entry = Entry("s", "1", None, "T", None, None, None, content, None)
    stored = StoredEntry(1, entry, datetime(2024, 1, 1, tzinfo=UTC), datetime.now(UTC), "x.md")
    text = render_jekyll(stored, None)
    meta, _ = split(text)
    assert meta["excerpt"].startswith("Lorem ipsum dolor sit amet. Lorem")
    assert len(meta["excerpt"]) <= 300 and meta["excerpt"].endswith("…")
    assert "<" not in meta["excerpt"]
    assert list(meta)[-1] == "excerpt"
