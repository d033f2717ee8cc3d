"""Probe feeds for the builds with real generators (tests/e2e/test_hexo.py, test_hugo.py,
test_jekyll.py): every case that made a real site fail or misbehave (issue 17) in entries
shaped like what publishers send.

- template openers and closers in titles, bodies, categories and authors (`${#}` of a shell
  article, a Nunjucks comment, Liquid, Hugo shortcodes; a lone `#}` stopped Hexo 7);
- a source without categories whose feed title has `:` and `'` (aborted Jekyll), and
  configured categories with `/`, `|`, `:`;
- quotes in titles and in image URLs (themes that write them into attributes unescaped);
- `<br></br>` and `&#X61;` (kramdown showed them as text), a body far longer than an
  excerpt, and escaped markup in its text that an excerpt printed as HTML must keep as text;
- carriage returns that made a blank line (and a `javascript:` link) to marked, markup in an
  image's `alt` that landscape's script runs, and a code listing with a fence and blank lines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

from feedworld import DATA, rsshub_feed, rsshub_item

TEMPLATE_TITLE = "Shell: echo ${#} {# note #} {{ x }} {% if y %} {{< sc >}} #} %} }}"
QUOTED_TITLE = "It's \"quoted\" & 1 < 2: 'single' too"
PORTAL = "Varthabharathi : Kanrnataka's Leading Kannada News Portal"
IMAGE_WITH_QUOTES = "https://img.example/it's%20a/x&quot;onerror=&quot;alert(1).jpg?a=1&amp;b='2'"
LONG_TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 12
PROBE_BODY = (
    f'<p><img src="{IMAGE_WITH_QUOTES}" alt="quoted"></p>\n'
    "<p>Write &lt;b&gt;bold&lt;/b&gt; as text: shown, never bold.</p>\n"
    "<p>Count the arguments: ${#} and a Nunjucks comment {# note #} and &#123;# note #}</p>\n"
    "<p>Liquid {{ site.title }} {% raw %} and Hugo {{< gist x >}} {{% md %}} 100%} #} }}</p>\n"
    "<p>one<br></br>two &#X61;&#x62;c</p>\n"
    f"<p>{LONG_TEXT}</p>\n"
    "<pre><code>for i in {1..3}; do echo {{ $i }}; done</code></pre>\n"
    # A CR pair is a blank line to marked, after which the rest was Markdown: a live link.
    "<p>a&#13;&#13;[click me](javascript:alert(document.domain))</p>\n"
    # landscape reads an image's alt into its caption as HTML.
    '<p><img src="https://img.example/a.png" alt="&lt;img src=x onerror=alert(2)&gt;"></p>\n'
    # Hexo's backtick_code_block took these lines for a fence; a listing's blank lines.
    "<pre><code>```js\nlet a = 1;\n\n\nlet b = 2;\n```</code></pre>\n"
)
TITLES = [TEMPLATE_TITLE, QUOTED_TITLE, "yes", "…省略号与「引号」：中文标点"]
CATEGORIES = ["News/World", "A | B", "Test: odd", "{{ cat }} {% x %}"]
AUTHOR = "{% who %} #} O'Brien"
MOMENT = datetime(2022, 1, 28, 4, 45, 33, tzinfo=UTC)


def probe_feed(titles: list[str], title: str) -> bytes:
    """RSSHub-shaped items: each title with the probe body, one a minute apart."""
    items = [
        rsshub_item(
            index,
            title=text,
            body=PROBE_BODY,
            date=MOMENT.replace(minute=index),
            link=f"https://probe.example/{index}",  # its own article, not another feed's
        )
        for index, text in enumerate(titles)
    ]
    return rsshub_feed(items, title=title)


def portal_feed() -> bytes:
    """A plain RSS 2.0 feed titled like the Kannada portal, with one item and no image."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(PORTAL)}</title><link>https://portal.example/</link>"
        "<description>d</description><item><title>ಕನ್ನಡ ಸುದ್ದಿ: news</title>"
        "<link>https://portal.example/1</link><guid>https://portal.example/1</guid>"
        f"<pubDate>{format_datetime(MOMENT, usegmt=True)}</pubDate>"
        "<description>&lt;p&gt;ಕನ್ನಡ ಸುದ್ದಿ&lt;/p&gt;</description></item></channel></rss>"
    ).encode()


def serve_probe_sources(feed_server) -> list[dict]:
    """Sources for a build: the golden item, the probe feed (categories and author with
    template syntax and odd characters, an image URL with quotes as the source's default),
    and the portal feed with no categories configured (so its title is the category)."""
    feed_server.serve("/aljazeera", (DATA / "aljazeera.rss").read_bytes())
    feed_server.serve("/probe", probe_feed(TITLES, "Probe"))
    feed_server.serve("/portal", portal_feed())
    return [
        {
            "name": "aljazeera",
            "url": feed_server.url("/aljazeera"),
            "author": "Aljazeera 半岛网",
            "categories": ["新媒体", "Aljazeera 半岛网", "新闻"],
        },
        {
            "name": "probe",
            "url": feed_server.url("/probe"),
            "categories": CATEGORIES,
            "author": AUTHOR,
        },
        {
            "name": "portal",
            "url": feed_server.url("/portal"),
            "image": "https://img.example/default'x\".png",
        },
    ]


PROBE_DOCUMENTS = 1 + len(TITLES) + 1
