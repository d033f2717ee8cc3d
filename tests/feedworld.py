"""Feed bytes for tests: RSSHub-shaped Chinese feeds like the example document's source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

DATA = Path(__file__).parent / "data"
PARAGRAPH = (
    "<p>白宫宣布，美国总统拜登在与乌克兰总统泽连斯基的通话中强调，如果俄罗斯胆敢入侵乌克兰。</p>\n"
)


def rsshub_item(
    index: int,
    *,
    title: str | None = None,
    body: str | None = None,
    date: datetime | None = None,
    guid: str | None = None,
    link: str | None = None,
) -> str:
    """One <item> shaped like RSSHub's: CDATA title and description, RFC 822 date, guid."""
    date = date or datetime(2022, 1, 28, 4, 45, 33, tzinfo=UTC) - timedelta(hours=index)
    link = link or f"https://chinese.aljazeera.net/news/political/2022/1/28/story-{index}"
    image = (
        f'<p><img loading="lazy" class="aligncenter size-arc-image-770" '
        f'src="https://chinese.aljazeera.net/wp-content/uploads/2022/01/image-{index}.jpg'
        f'?w=770&resize=770%2C433" alt data-recalc-dims="1" referrerpolicy="no-referrer"></p>\n'
    )
    body = body if body is not None else PARAGRAPH * 3 + image + "<h3>小标题</h3>\n" + PARAGRAPH
    return (
        f"<item><title><![CDATA[{title or f'新闻标题 第{index}条'}]]></title>"
        f"<description><![CDATA[{body}]]></description>"
        f"<pubDate>{format_datetime(date, usegmt=True)}</pubDate>"
        f'<guid isPermaLink="false">{escape(guid or link)}</guid><link>{escape(link)}</link></item>'
    )


def rsshub_feed(items: list[str], title: str = "半岛电视台 - 新闻") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>\n'
        f"<title><![CDATA[{title}]]></title><link>https://chinese.aljazeera.net/news</link>\n"
        "<description><![CDATA[半岛电视台中文网新闻 - Made with love by RSSHub]]></description>\n"
        "<generator>RSSHub</generator><language>zh-cn</language><ttl>5</ttl>\n"
        + "".join(items)
        + "\n</channel></rss>\n"
    ).encode()


def serve_site_sources(feed_server, titles: list[str], extra_body: str) -> list[dict]:
    """Sources for a site-generator build: the golden item, items with tricky titles plus one
    with `extra_body`, and an Atom feed, served by `feed_server` (conftest.FeedServer)."""
    feed_server.serve("/aljazeera", (DATA / "aljazeera.rss").read_bytes())
    items = [rsshub_item(i, title=title) for i, title in enumerate(titles)]
    items.append(rsshub_item(50, body=extra_body))
    feed_server.serve("/tricky", rsshub_feed(items))
    feed_server.serve("/atom", (DATA / "atom.xml").read_bytes())
    return [
        {
            "name": "aljazeera",
            "url": feed_server.url("/aljazeera"),
            "author": "Aljazeera 半岛网",
            "categories": ["新媒体", "Aljazeera 半岛网", "新闻"],
        },
        {"name": "tricky", "url": feed_server.url("/tricky"), "categories": ["Test: odd", "#1"]},
        {"name": "atom", "url": feed_server.url("/atom")},
    ]
