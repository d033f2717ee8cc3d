"""Documents: the golden example, YAML that survives any title, safe and stable file names."""

from __future__ import annotations

import html
import pickle
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from feedworld import DATA
from hypothesis import given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from aggregator.errors import OutputError
from aggregator.models import Entry, Source, StoredEntry
from aggregator.outputs import document_formats
from aggregator.outputs.document_formats import renderer_for
from aggregator.outputs.documents import (
    DEFAULT_OPTIONS,
    MAX_SLUG_BYTES,
    DocumentOptions,
    attribute_safe_url,
    defuse_templates,
    document_name,
    excerpt_of,
    parse_template,
    quoted,
    render_document,
    safe_path,
    safe_title,
)
from aggregator.sources.parse import parse_feed
from aggregator.text import slugify

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


def test_a_carriage_return_is_a_line_break_to_markdown_and_ends_no_block() -> None:
    """marked reads CR as a line break: two of them were a blank line, after which the rest
    was Markdown, and `[x](javascript:…)` a live link on every Hexo theme."""
    content = "<p>a</p>\r\r[click me](javascript:alert(1))\r\n\r\n<p>b</p>"
    body = render_document(
        stored(Entry("s", "i", None, "T", None, None, None, content, None)), None
    )
    body = body.split("\n---\n", 1)[1]
    assert "\r" not in body and "\n\n" not in body.strip("\n")


def test_blank_lines_of_preformatted_text_are_kept_as_line_breaks() -> None:
    content = "<pre><code>def a():\n    pass\n\n\ndef b():</code></pre>\n\n<p>x</p>"
    body = render_document(
        stored(Entry("s", "i", None, "T", None, None, None, content, None)), None
    )
    body = body.split("\n---\n", 1)[1]
    assert "\n\n" not in body.strip("\n")
    pre = body[body.index("<pre>") : body.index("</pre>")]
    assert html.unescape(pre) == "<pre><code>def a():\n    pass\n\n\ndef b():</code>"


def test_a_line_opening_with_a_code_fence_is_not_one_to_hexo() -> None:
    content = "<pre>```js\nx\n```</pre>\n<p>\n~~~\n</p>"
    body = render_document(
        stored(Entry("s", "i", None, "T", None, None, None, content, None)), None
    )
    body = body.split("\n---\n", 1)[1]
    assert not re.search(r"(?m)^[ \t]*(```|~~~)", body)
    assert html.unescape(body).count("```") == 2 and "~~~" in html.unescape(body)


def test_attribute_values_hold_no_angle_brackets_a_theme_could_read_as_html() -> None:
    """landscape puts an image's alt into a caption as HTML: it ran this one."""
    content = '<p><img src="https://e.org/i.png" alt="&lt;img src=x onerror=alert(1)&gt;"></p>'
    body = render_document(
        stored(Entry("s", "i", None, "T", None, None, None, content, None)), None
    )
    (image,) = LexborHTMLParser(body.split("\n---\n", 1)[1]).css("img")
    assert image.attributes["alt"] == "‹img src=x onerror=alert(1)›"


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("新闻", "新闻"),
        ("!!!", "s"),  # punctuation alone: no page to build; the source's name instead
        ("...", "s"),
        ("constructor", "Constructor"),  # members of every JavaScript object
        ("__proto__", "___proto__"),
        ("国" * 86, "国" * 39 + "…"),  # a folder name: Hexo's build failed past 255 bytes
    ],
    ids=["chinese", "bangs", "dots", "constructor", "proto", "too-long"],
)
def test_categories_are_pages_a_site_generator_can_build(name: str, written: str) -> None:
    entry = Entry("s", "i", None, "T", None, None, None, "<p>x</p>", None)
    for source in (
        Source("s", "https://e.org/", title=name),
        Source("s", "https://e.org/", categories=(name,)),
    ):
        assert front_matter(render_document(stored(entry), source))["categories"] == [written]


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
        "می\u200cخواهم",  # a zero-width non-joiner inside a Persian word
        "👨\u200d👩\u200d👧",  # an emoji sequence, joined
        "\u200fעברית\u200e",  # direction marks
        "\U0001fae8 new",  # Unicode 15: unassigned in Python 3.11's tables
        "non\ufffechar\U0010ffff",
    ]
)


def _not_text(char: str) -> bool:
    """Controls, separators of lines and paragraphs, noncharacters: what YAML and XML
    cannot hold, or a one-line value should not."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp")
        or 0xFDD0 <= code <= 0xFDEF
        or code & 0xFFFE == 0xFFFE
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
        return " ".join("".join(" " if _not_text(c) else c for c in text).split())

    assert meta["title"] == folded(title)
    assert meta["author"] == (folded(author) or "s")
    if category.strip():
        # Punctuation alone names no page a generator can build: the source's name instead.
        named = folded(category) if any(c.isalnum() for c in folded(category)) else "s"
        (written,) = meta["categories"]
        if len(named.encode()) <= 120:
            assert written == named
        else:  # a folder name for the generator: cut, and said to be
            assert written.endswith("…") and len(written.encode()) <= 120
            assert named.startswith(written.removesuffix("…"))


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


def slugify_title(title: str) -> str:
    """The slug `document_name` puts between the date and the hash."""
    return slugify(title, MAX_SLUG_BYTES, "entry")


def test_chinese_titles_stay_readable() -> None:
    assert slugify_title("安理会将于31日召开会议 美国承诺") == "安理会将于31日召开会议-美国承诺"
    assert slugify_title("../../etc/passwd") == "etc-passwd"
    assert slugify_title("???") == "entry"


@pytest.mark.parametrize("name", ["../x.md", "/etc/passwd", "a/b.md", "x\0.md", ".hidden", ""])
def test_safe_path_refuses_anything_but_a_plain_name(name: str) -> None:
    with pytest.raises(OutputError):
        safe_path(Path("/docs"), name)


# -- what real generators and their themes need (issue 17) -----------------------------------

TEMPLATE_TOKENS = re.compile(r"\{[{%#]|[}%#]\}")
TEMPLATE_TEXT = "echo ${#} {# note #} {{ x }} {% if y %} {{< sc >}} {{% md %}} 100%} #} }}}"


def template_entry(**fields: object) -> Entry:
    values: dict = {
        "source": "s",
        "identity": "id",
        "link": None,
        "title": "T",
        "author": None,
        "published": None,
        "updated": None,
        "content": "<p>x</p>",
        "image": None,
    }
    values.update(fields)
    return Entry(**values)


RENDERS = {
    "hexo": render_document,
    "hugo": document_formats.render_hugo,
    "jekyll": document_formats.render_jekyll,
}


@pytest.mark.parametrize("name", list(RENDERS))
def test_no_template_opener_or_closer_anywhere_and_yaml_reads_the_text(name: str) -> None:
    entry = template_entry(
        title=TEMPLATE_TEXT,
        author="{{ who }} #}",
        content=f"<p>{TEMPLATE_TEXT}</p><p title='{{{{ a }}}}'>{{#}}</p>",
        image="https://e.org/{{i}}.png",
        link="https://e.org/{%l%}",
    )
    source = Source("s", "https://e.org/", categories=("{% cat %}", "{#x#}"))
    options = DocumentOptions(front_matter=(("link", parse_template("{link}")),))
    text = RENDERS[name](stored(entry), source, options)
    assert not TEMPLATE_TOKENS.search(text), text
    meta = front_matter(text)
    assert meta["title"] == TEMPLATE_TEXT  # the same text for the reader
    assert meta["author"] == "{{ who }} #}"
    if name != "jekyll":  # Jekyll's categories are made folder-safe (below)
        assert meta["categories"] == ["{% cat %}", "{#x#}"]
    assert meta["link"] == "https://e.org/%7B%l%%7D"  # braces percent-encoded
    body = text.split("\n---\n", 1)[1]
    # what a browser shows of the body is the feed's text, braces included
    assert TEMPLATE_TEXT in html.unescape(body)


def test_the_body_defuses_openers_and_closers_as_character_references() -> None:
    assert defuse_templates("a {{ b }} c") == "a &#123;{ b }&#125; c"
    assert defuse_templates("${#} and &#123;# note #}") == "$&#123;#&#125; and &#123;# note #&#125;"
    assert defuse_templates("{#}") == "&#123;#&#125;"
    assert defuse_templates("{{{ x }}}") == "&#123;&#123;{ x }&#125;&#125;"
    assert defuse_templates("{ plain } {x} %") == "{ plain } {x} %"


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="{}%#<>-x ", max_size=30))
def test_defused_text_has_no_token_and_reads_the_same(text: str) -> None:
    defused = defuse_templates(text.replace("<", "&lt;").replace(">", "&gt;"))
    assert not TEMPLATE_TOKENS.search(defused)
    assert html.unescape(defused) == text
    assert yaml.safe_load(f"k: {quoted(text)}")["k"] == " ".join(text.split())
    assert not TEMPLATE_TOKENS.search(quoted(text))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/i.jpg?w=770&resize=770%2C433",
         "https://a.example/i.jpg?w=770&resize=770%2C433"),
        ("https://a.example/it's.jpg", "https://a.example/it%27s.jpg"),
        ('https://a.example/x.jpg" onerror="alert(1)',
         "https://a.example/x.jpg%22%20onerror=%22alert(1)"),
        ("https://a.example/<b>`x` y|z^{}\\.png", "https://a.example/%3Cb%3E%60x%60%20y%7Cz%5E%7B%7D%5C.png"),
        ("https://a.example/图片.png", "https://a.example/图片.png"),
        ("https://a.example/a\u00a0b\u2028.png", "https://a.example/a%C2%A0b%E2%80%A8.png"),
    ],
    ids=["seed", "apostrophe", "double-quote", "brackets-and-more", "non-ascii", "invisible"],
)  # fmt: skip
def test_urls_in_front_matter_cannot_leave_an_attribute(url: str, expected: str) -> None:
    assert attribute_safe_url(url) == expected
    entry = template_entry(image=url, link=url)
    meta = front_matter(render_document(stored(entry), None))
    assert meta["headimg"] == meta["thumbnail"] == expected


def test_safe_title_has_look_alikes_for_what_breaks_attributes_and_scripts() -> None:
    title = 'Say "hi" it\'s <b> `x` \\ end "open'
    assert safe_title(title) == "Say “hi” it’s ‹b› ‘x‘ ⧵ end “open"
    assert not set("\"'<>`\\") & set(safe_title(title))


def test_documents_timezone_writes_wall_time_there() -> None:
    entry = template_entry(published=datetime(2022, 1, 28, 4, 45, 33, tzinfo=UTC))
    item = stored(entry)
    shanghai = DocumentOptions(timezone="Asia/Shanghai")
    hexo = render_document(item, None, shanghai)
    assert "\ndate: 2022-01-28 12:45:33\n" in hexo  # what Hexo reads right with its timezone
    assert "\ndate: Fri, 28 Jan 2022 04:45:33 GMT\n" in render_document(item, None)
    hugo = document_formats.render_hugo(item, None, shanghai)
    assert "\ndate: 2022-01-28T12:45:33+08:00\n" in hugo
    assert front_matter(hugo)["date"] == datetime(2022, 1, 28, 4, 45, 33, tzinfo=UTC)
    jekyll = document_formats.render_jekyll(item, None, shanghai)
    assert "\ndate: 2022-01-28 12:45:33 +0800\n" in jekyll
    new_york = render_document(item, None, DocumentOptions(timezone="America/New_York"))
    assert "\ndate: 2022-01-27 23:45:33\n" in new_york


def test_front_matter_adds_replaces_and_drops_keys() -> None:
    feed = parse_feed((DATA / "aljazeera.rss").read_bytes(), ALJAZEERA, ALJAZEERA.url)
    item = stored(feed.entries[0])
    options = DocumentOptions(
        front_matter=(
            ("cover", parse_template("{image}")),
            ("author", None),
            ("writer", parse_template("{author}")),
            ("title", parse_template("{safe_title}")),
            ("comments", True),
            ("sticky", 3),
            ("tags", (parse_template("{source_title}"), parse_template("aggregated"))),
            ("description", parse_template("{excerpt}")),
            ("via", parse_template("{title} ({source}; {categories})")),
            ("topics", parse_template("{categories}")),
        )
    )
    text = render_document(item, ALJAZEERA, options)
    keys = re.findall(r"^([a-z]+):", text.split("\n---\n")[0], re.M)
    assert keys == [
        "title", "categories", "headimg", "comments", "date", "thumbnail",
        "cover", "writer", "sticky", "tags", "description", "via", "topics",
    ]  # fmt: skip
    meta = front_matter(text)
    assert meta["cover"] == meta["headimg"]
    assert meta["writer"] == "Aljazeera 半岛网"
    assert meta["comments"] is True and meta["sticky"] == 3
    assert meta["tags"] == ["aljazeera", "aggregated"]
    assert meta["description"].startswith("白宫宣布") and len(meta["description"]) <= 300
    assert meta["via"] == f"{meta['title']} (aljazeera; 新媒体, Aljazeera 半岛网, 新闻)"
    assert meta["topics"] == meta["categories"]
    # Without an image, a key made of {image} is left out like headimg.
    bare = render_document(stored(template_entry()), None, options)
    assert "cover" not in front_matter(bare) and "headimg" not in front_matter(bare)


def test_default_options_keep_the_seed_and_renderers_pickle() -> None:
    assert renderer_for("hexo") is render_document
    options = DocumentOptions("Asia/Shanghai", (("cover", parse_template("{image}")),))
    render = pickle.loads(pickle.dumps(renderer_for("hexo", options)))
    feed = parse_feed((DATA / "aljazeera.rss").read_bytes(), ALJAZEERA, ALJAZEERA.url)
    text = render(stored(feed.entries[0]), ALJAZEERA)
    assert "\ndate: 2022-01-28 12:45:33\n" in text and "\ncover: 'https://" in text
    assert render_document(stored(feed.entries[0]), ALJAZEERA, DEFAULT_OPTIONS) == golden_document()


def test_markup_kramdown_misreads_reaches_no_document() -> None:
    body = "<p>one<br></br>two &#X61; &#x62;</p>"
    feed_bytes = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>x</title><link>https://e.org/1</link><description><![CDATA[{body}]]>"
        "</description></item></channel></rss>"
    ).encode()
    source = Source("s", "https://e.org/feed")
    entry = parse_feed(feed_bytes, source, source.url).entries[0]
    for render in RENDERS.values():
        text = render(stored(entry), source)
        assert "<p>one<br><br>two a b</p>" in text
        assert "</br>" not in text and "&#X" not in text


def test_excerpt_is_plain_text_on_one_line_and_bounded() -> None:
    long = "<p>" + "word " * 100 + "</p><p>二" + "字" * 400 + "</p>"
    assert excerpt_of(long).startswith("word word")
    assert len(excerpt_of(long)) <= 300 and excerpt_of(long).endswith("word…")
    chinese = excerpt_of("<p>" + "字" * 400 + "</p>")
    assert len(chinese) == 300 and chinese.endswith("字…")
    assert excerpt_of("<p>a &amp; b</p><p>c<br>d</p>") == "a &amp; b c d"
    # What reads as a tag in the text stays text to a theme that prints the excerpt as HTML.
    assert excerpt_of("<p>Write &lt;script&gt; here</p>") == "Write &lt;script&gt; here"
    assert excerpt_of("") == ""
