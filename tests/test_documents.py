"""Documents: the golden example, YAML that survives any title, safe and stable file names."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from feedworld import DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.documents import document_name, render_document, safe_path, slugify
from aggregator.errors import OutputError
from aggregator.models import Entry, Source, StoredEntry
from aggregator.parse import parse_feed

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "examples"
ALJAZEERA = Source(
    name="aljazeera",
    url="https://rsshub.app/aljazeera/chinese/news",
    author="Aljazeera 半岛网",
    categories=("新媒体", "Aljazeera 半岛网", "新闻"),
)
KEYS = ["title", "categories", "headimg", "author", "comments", "date", "thumbnail"]


def normalise(text: str) -> str:
    """What the example's README calls incidental: blank lines and spaces at line ends."""
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())


def stored(entry: Entry, date: datetime | None = None, document: str = "x.md") -> StoredEntry:
    moment = date or entry.published or datetime(2024, 1, 1, tzinfo=UTC)
    return StoredEntry(id=1, entry=entry, date=moment, first_seen=moment, document=document)


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(head)


def golden_document() -> str:
    feed = parse_feed((DATA / "aljazeera.rss").read_bytes(), ALJAZEERA, ALJAZEERA.url)
    return render_document(stored(feed.entries[0]), ALJAZEERA)


def test_golden_document_matches_the_example() -> None:
    produced = golden_document()
    expected = (DATA / "aljazeera.expected.md").read_text(encoding="utf-8")
    assert produced.startswith("---\n")
    assert normalise(produced) == normalise(expected)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/examples is not beside the checkout")
def test_golden_fixture_is_the_shared_example() -> None:
    assert (DATA / "aljazeera.rss").read_bytes() == (SHARED / "aljazeera-news.rss").read_bytes()
    assert (DATA / "aljazeera.expected.md").read_bytes() == (
        SHARED / "seed-document.md"
    ).read_bytes()


def test_key_order_and_values() -> None:
    produced = golden_document()
    keys = re.findall(r"^([a-z]+):", produced.split("\n---\n")[0], re.M)
    assert keys == KEYS
    meta = front_matter(produced)
    assert meta["categories"] == ["新媒体", "Aljazeera 半岛网", "新闻"]
    assert meta["comments"] is False
    assert meta["date"] == "Fri, 28 Jan 2022 04:45:33 GMT"
    assert meta["headimg"] == meta["thumbnail"]
    assert produced.count("<img") == produced.count('referrerpolicy="no-referrer"')
    assert "\n<div>\n" in produced and produced.endswith("\n</div>\n")


def test_no_image_leaves_the_image_keys_out_or_uses_the_source_default() -> None:
    entry = Entry("s", "id", "https://e.org/1", "T", "A", None, None, "<p>text</p>", None)
    meta = front_matter(render_document(stored(entry), Source("s", "https://e.org/")))
    assert "headimg" not in meta and "thumbnail" not in meta
    source = Source("s", "https://e.org/", image="https://e.org/default.png")
    meta = front_matter(render_document(stored(entry), source))
    assert meta["headimg"] == meta["thumbnail"] == "https://e.org/default.png"


def test_body_cannot_break_out_of_the_markdown_html_block_or_hexo_templates() -> None:
    content = "<p>a</p>\n\n    \n<p>{{ site.title }} {% raw %}</p>"
    entry = Entry("s", "id", None, "T", None, None, None, content, None)
    text = render_document(stored(entry), None)
    body = text.split("\n---\n", 1)[1]
    assert "\n\n" not in body.strip("\n")
    assert "{{" not in body and "{%" not in body


TRICKY = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=80
) | st.sampled_from(
    [
        "'quoted'",
        '"double"',
        "a: b",
        "# not a comment",
        "- dash",
        "@at",
        "line\nbreak",
        "yes",
        "null",
        "123",
        "---",
        "...",
        "{json: 1}",
        "[list]",
        "*alias",
        "&anchor",
        "! tag",
        "%directive",
        "`tick`",
        "|",
        ">",
        "\u2028",
        "\ufeffbom",
        "tab\there",
    ]
)


@settings(max_examples=300, deadline=None)
@given(title=TRICKY, author=TRICKY, category=TRICKY)
def test_any_title_author_and_category_round_trip_through_yaml(
    title: str, author: str, category: str
) -> None:
    entry = Entry("s", "id", None, title, author, None, None, "<p>x</p>", "https://e.org/i.png")
    source = Source("s", "https://e.org/", categories=(category,) if category.strip() else ())
    meta = front_matter(render_document(stored(entry), source))
    assert list(meta) == KEYS

    def folded(text: str) -> str:
        return " ".join("".join(c if c.isprintable() else " " for c in text).split())

    assert meta["title"] == folded(title)
    assert meta["author"] == (folded(author) or "s")
    if category.strip():
        assert meta["categories"] == [folded(category)]


@settings(max_examples=300, deadline=None)
@given(title=st.text(max_size=400), identity=st.text(max_size=50))
def test_file_names_are_safe_stable_and_bounded(title: str, identity: str) -> None:
    date = datetime(2024, 5, 6, tzinfo=UTC)
    name = document_name("src", identity, title, date)
    assert name == document_name("src", identity, title, date)
    assert re.fullmatch(r"2024-05-06-[^/\\\x00]+-[0-9a-f]{8}\.md", name)
    assert ".." not in name.replace("...", "")
    assert len(name.encode("utf-8")) <= 200
    assert safe_path(Path("/docs"), name).parent == Path("/docs")


def test_chinese_titles_stay_readable() -> None:
    assert slugify("安理会将于31日召开会议 美国承诺") == "安理会将于31日召开会议-美国承诺"
    assert slugify("../../etc/passwd") == "etc-passwd"
    assert slugify("???") == "entry"


@pytest.mark.parametrize("name", ["../x.md", "/etc/passwd", "a/b.md", "x\0.md", ".hidden", ""])
def test_safe_path_refuses_anything_but_a_plain_name(name: str) -> None:
    with pytest.raises(OutputError):
        safe_path(Path("/docs"), name)
