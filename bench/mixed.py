"""The mixed world's feeds (issue 16): N feeds shaped like what real publishers send.

`world.py --world mixed` serves these instead of RSSHub's. Each shape is modelled on a file of
the test corpus (tests/data/real, tests/data/golden) and has the size its kind of publisher
sends (items per feed and text per item); ids, titles, links and dates depend on the feed's
number and the item's number, so every feed is distinct and a bump adds new items.

Shapes (modelled on; items per feed; what each item carries):

- newspaper (real/newspaper.rss, golden/news-media.rss; the shape issue 16 names): 30; CDATA
  title, content:encoded of 20 Chinese paragraphs and one figure, dc:creator, media:content
  and media:thumbnail, categories.
- podcast (real/podcast.rss, golden/podcast-itunes.rss): 100; itunes:* (title, duration,
  episode, image, explicit), an enclosure, show notes.
- reddit (real/reddit.atom): 25; Atom, t3_ ids, /u/ authors, escaped HTML table,
  media:thumbnail.
- feedburner (real/feedburner.atom, as RSS): 25; feedproxy link, feedburner:origLink, flares.
- wordpress (real/wordpress.rss): 10; content:encoded posts, slash:comments, wfw:commentRss,
  ?p=N guids.
- github (GitHub's releases Atom): 20; tag: ids, escaped HTML notes, media:thumbnail avatars.
- rdf (real/craigslist.rdf, golden/rdf-1.0.rdf): 25; RSS 1.0, rdf:about, dc:*, enc:enclosure.
- atom-xhtml (golden/atom-xhtml.atom): 15; Atom with xhtml content.
- jsonfeed (real/jsonfeed11.json): 20; JSON Feed 1.1.
- gbk (real/gbk.rss): 40; GBK bytes declared gb2312, CDATA, 镕 (GBK only) in every title.
- latin1 (golden/latin1.rss): 20; ISO-8859-1 declared, French text.
- broken-amp (WordPress RSS): 10; an unescaped `&` in every title and link (feedparser
  recovers through its loose parser).
- broken-tag (a newspaper's plain RSS): 20; one mismatched end tag `</descripton>`
  (feedparser recovers, and loses that item).

Out of every 100 feeds: SHAPES below (the broken ones are 8%). The first feeds take one of
each shape in turn, so a world of 13 feeds or more has every shape.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

NEW_PER_BUMP = 5
BASE_DATE = datetime(2023, 6, 1, tzinfo=UTC)

# shape: (feeds per 100, items per feed)
SHAPES: dict[str, tuple[int, int]] = {
    "newspaper": (20, 30),
    "podcast": (8, 100),
    "reddit": (8, 25),
    "feedburner": (6, 25),
    "wordpress": (14, 10),
    "github": (8, 20),
    "rdf": (5, 25),
    "atom-xhtml": (6, 15),
    "jsonfeed": (6, 20),
    "gbk": (6, 40),
    "latin1": (5, 20),
    "broken-amp": (4, 10),
    "broken-tag": (4, 20),
}
assert sum(weight for weight, _ in SHAPES.values()) == 100
CONTENT_TYPES = {
    "atom": b"application/atom+xml; charset=utf-8",
    "rss": b"application/rss+xml; charset=utf-8",
    "rdf": b"application/rdf+xml; charset=utf-8",
    "json": b"application/feed+json; charset=utf-8",
    "legacy": b"application/rss+xml",  # the XML declaration names the encoding
}


def _sequence() -> list[str]:
    """100 slots: one of each shape first, then the rest by smooth weighted round robin."""
    names = list(SHAPES)
    left = {name: SHAPES[name][0] - 1 for name in names}
    total = sum(left.values())
    current = dict.fromkeys(names, 0)
    slots = list(names)
    for _ in range(total):
        for name in names:
            current[name] += left[name]
        best = max(names, key=lambda name: current[name])
        current[best] -= total
        slots.append(best)
    return slots


SEQUENCE = _sequence()


def shape_of(feed: int) -> str:
    return SEQUENCE[feed % len(SEQUENCE)]


def items_of(feed: int) -> int:
    return SHAPES[shape_of(feed)][1]


WORDS = [
    "feed",
    "reader",
    "archive",
    "river",
    "harbour",
    "budget",
    "council",
    "station",
    "garden",
    "release",
    "patch",
    "library",
    "compiler",
    "winter",
    "market",
    "bridge",
    "signal",
    "network",
    "museum",
    "election",
    "season",
    "weather",
    "transit",
    "school",
    "kernel",
    "plugin",
    "update",
    "review",
    "podcast",
    "episode",
    "interview",
    "history",
    "science",
    "policy",
    "festival",
    "coast",
    "valley",
    "report",
    "summit",
    "growth",
    "farmers",
]
FRENCH = [
    "déneigement",
    "été",
    "hôpital",
    "réseau",
    "élève",
    "fête",
    "forêt",
    "théâtre",
    "congrès",
    "ministère",
    "hiver",
    "coûteux",
    "économie",
    "région",
    "côte",
    "rivière",
    "bibliothèque",
    "musée",
    "sécurité",
    "français",
]


def words(seed: int, count: int, vocabulary: tuple[str, ...] | list[str] = WORDS) -> str:
    n = len(vocabulary)
    return " ".join(vocabulary[(seed * 31 + k * 17 + k * k) % n] for k in range(count))


def sentence(seed: int, count: int = 14) -> str:
    text = words(seed, count)
    return text[0].upper() + text[1:] + "."


def date(feed: int, number: int, step_minutes: int = 53) -> datetime:
    return BASE_DATE + timedelta(minutes=number * step_minutes + feed % 977)


def rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Text:
    """The Chinese paragraphs of world.py (the example document's), by seed."""

    def __init__(self, paragraphs: list[str]) -> None:
        self.paragraphs = paragraphs
        self.gb2312 = [p for p in paragraphs if _encodes(p, "gb2312")]

    def chinese(self, seed: int, count: int, pool: list[str] | None = None) -> list[str]:
        pool = pool or self.paragraphs
        return [pool[(seed * 7 + k * 3) % len(pool)] for k in range(count)]


def _encodes(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


# -- one builder per shape: (feed, numbers newest first, text) -> (body, content type) ------


def newspaper(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    site = f"https://news{feed}.example.cn"
    items = []
    for n in numbers:
        paragraphs = text.chinese(feed * 131 + n, 20)
        slug = f"{date(feed, n):%Y/%m/%d}/story-{feed}-{n}"
        image = f"https://static.news{feed}.example.cn/images/{slug}-articleLarge.jpg"
        title = f"第{n}条：{paragraphs[1][3:28]}（{feed}）"
        body = (
            f'<figure class="media"><img src="{image}" width="1024" height="683" '
            f'alt="{escape(title)}"/><figcaption>{paragraphs[0][3:40]} '
            f'<span class="credit">图：记者 {feed}-{n}</span></figcaption></figure>\n'
            + "\n".join(paragraphs)
        )
        moment = date(feed, n)
        items.append(
            f"    <item>\n      <title><![CDATA[{title}]]></title>\n"
            f"      <link>{site}/{slug}.html</link>\n"
            f'      <guid isPermaLink="true">{site}/{slug}.html</guid>\n'
            f"      <description><![CDATA[{paragraphs[0][3:60]}]]></description>\n"
            f"      <content:encoded><![CDATA[{body}]]></content:encoded>\n"
            f"      <dc:creator>记者{n % 17}号</dc:creator>\n"
            f"      <pubDate>{rfc822(moment)}</pubDate>\n"
            f'      <category domain="{site}/section">国际</category>\n'
            f'      <category domain="{site}/keywords">要闻 {n % 9}</category>\n'
            f'      <media:content height="683" medium="image" url="{image}" width="1024"/>\n'
            f"      <media:credit>记者 {feed}-{n}</media:credit>\n"
            f'      <media:thumbnail url="{image[:-16]}-thumbStandard.jpg" width="75" height'
            '="75"/>\n'
            "    </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:media="http://search.yahoo.com/mrss/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">\n  <channel>\n'
        f"    <title><![CDATA[示例日报 {feed} - 要闻]]></title>\n    <link>{site}/</link>\n"
        f'    <atom:link href="{site}/rss/home.xml" rel="self" type="application/rss+xml"/>\n'
        f"    <description>示例日报 {feed} 的要闻</description>\n    <language>zh-cn</language>\n"
        f"    <lastBuildDate>{rfc822(date(feed, numbers[0]))}</lastBuildDate>\n"
        f"    <image><title>示例日报 {feed}</title><url>{site}/logo.png</url><link>{site}/</link><"
        "/image>\n" + "".join(items) + "  </channel>\n</rss>\n"
    ).encode(), CONTENT_TYPES["rss"]


def podcast(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    site = f"https://show{feed}.example-podcast.fm"
    items = []
    for n in numbers:
        title = f"Episode {n}: {words(feed * 7 + n, 5).title()}"
        notes = "".join(f"<p>{sentence(feed + n * 3 + k, 18)}</p>\n" for k in range(4))
        moment = date(feed, n, 60 * 24 * 7)
        items.append(
            f"    <item>\n      <title>{escape(title)}</title>\n"
            f"      <itunes:title>{escape(title[title.index(':') + 2 :])}</itunes:title>\n"
            f"      <pubDate>{rfc822(moment)}</pubDate>\n"
            f'      <guid isPermaLink="false"><![CDATA[{feed:08x}-{n:04x}-5a69-8259'
            "-3963008e3dfe]]></guid>\n"
            f"      <link><![CDATA[{site}/episodes/{n}]]></link>\n"
            f"      <description><![CDATA[{notes}<p>Support the show: "
            f'<a href="{site}/support">{site[8:]}/support</a></p>]]></description>\n'
            f'      <enclosure url="https://cdn.example-podcast.fm/{feed}/ep-{n}.mp3" '
            f'length="{30_000_000 + n * 1013}" type="audio/mpeg"/>\n'
            f"      <itunes:duration>{40 + n % 30}:{n % 60:02d}</itunes:duration>\n"
            f"      <itunes:episode>{n}</itunes:episode>\n"
            "      <itunes:episodeType>full</itunes:episodeType>\n"
            "      <itunes:explicit>false</itunes:explicit>\n"
            f'      <itunes:image href="https://assets.example-podcast.fm/{feed}/ep-{n}.jpg"/>\n'
            "    </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0" version="2.0">\n  <channel>\n'
        f'    <atom:link href="{site}/feed.rss" rel="self" type="application/rss+xml"/>\n'
        f"    <title>The Example Show {feed}</title>\n    <link>{site}/</link>\n"
        "    <language>en-us</language>\n"
        f"    <description><![CDATA[<p>{sentence(feed)}</p>]]></description>\n"
        f"    <image><url>{site}/art-1400.jpg</url><title>The Example Show {feed}</title>"
        f"<link>{site}/</link></image>\n"
        f"    <itunes:author>Example Media {feed}</itunes:author>\n"
        f"    <itunes:summary>{sentence(feed + 1)}</itunes:summary>\n"
        "    <itunes:type>episodic</itunes:type>\n"
        f"    <itunes:owner><itunes:name>Example Media {feed}</itunes:name>"
        f"<itunes:email>show{feed}@example-podcast.fm</itunes:email></itunes:owner>\n"
        "    <itunes:explicit>false</itunes:explicit>\n"
        '    <itunes:category text="Technology"/>\n'
        f'    <itunes:image href="{site}/art-3000.jpg"/>\n'
        f"    <podcast:guid>{feed:08x}-55d5-5b1c-9bb0-6d2b0d3c1e8f</podcast:guid>\n"
        + "".join(items)
        + "  </channel>\n</rss>\n"
    ).encode(), CONTENT_TYPES["rss"]


def reddit(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    sub = f"r/Example{feed}"
    entries = []
    for n in numbers:
        post = f"{feed:x}{n:05x}"
        user = f"/u/{words(n, 1)}_{n % 97}"
        title = sentence(feed * 3 + n, 10)
        link = f"https://www.reddit.com/{sub}/comments/{post}/{words(n, 3).replace(' ', '_')}/"
        thumb = f"https://b.thumbs.redditmedia.com/{post}Xq9Lw2vE.jpg"
        html = (
            f'<table> <tr><td> <a href="{link}"> <img src="{thumb}" alt="{escape(title)}" '
            f'title="{escape(title)}" /> </a> </td><td> <!-- SC_OFF --><div class="md"><p>'
            f"{sentence(n + feed, 40)}</p> <p>{sentence(n * 5 + feed, 30)}</p></div><!-- SC_ON --> "
            f'&#32; submitted by &#32; <a href="https://www.reddit.com/user{user[2:]}"> {user} '
            f'</a> <br/> <span><a href="{link}">[link]</a></span> &#32; <span><a href="{link}">'
            "[comments]</a></span> </td></tr></table>"
        )
        moment = iso(date(feed, n, 17))
        entries.append(
            f"<entry><author><name>{user}</name><uri>https://www.reddit.com/user{user[2:]}</uri>"
            f'</author><category term="Example{feed}" label="{sub}"/>'
            f'<content type="html">{escape(html)}</content><id>t3_{post}</id>'
            f'<media:thumbnail url="{thumb}" /><link href="{link}" />'
            f"<updated>{moment}</updated><published>{moment}</published>"
            f"<title>{escape(title)}</title></entry>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:media="http://search.yahoo.com/mrss/">'
        f'<category term="Example{feed}" label="{sub}"/><updated>{iso(date(feed, numbers[0], 17))}'
        f"</updated><icon>https://www.redditstatic.com/icon.png/</icon><id>/{sub}/.rss</id>"
        f'<link rel="self" href="https://www.reddit.com/{sub}/.rss" type="application/atom+xml" />'
        f'<link rel="alternate" href="https://www.reddit.com/{sub}/" type="text/html" />'
        f"<subtitle>{sentence(feed)}</subtitle><title>Example{feed}</title>"
        + "".join(entries)
        + "</feed>"
    ).encode(), CONTENT_TYPES["atom"]


def feedburner(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    name = f"ExampleBlog{feed}"
    site = f"https://blog{feed}.example.com"
    items = []
    for n in numbers:
        slug = f"{date(feed, n, 600):%Y/%m}/{words(feed + n, 4).replace(' ', '-')}-{n}.html"
        flare = (
            f'<div class="feedflare"><a href="http://feeds.feedburner.com/~ff/{name}?a=x{n}:y">'
            f'<img src="http://feeds.feedburner.com/~ff/{name}?d=yIl2AUoC8zA" border="0"></img>'
            "</a></div>"
        )
        body = (
            f'<div class="separator"><a href="https://1.bp.blogspot.com/{feed}/{n}/s1600/p.png">'
            f'<img border="0" src="https://1.bp.blogspot.com/{feed}/{n}/s640/p.png" height="320" '
            'width="640" /></a></div>'
            + "".join(f"<p>{sentence(feed * 11 + n + k, 30)}</p>" for k in range(6))
            + flare
            + f'<img src="http://feeds.feedburner.com/~r/{name}/~4/{n:x}" height="1" width="1"'
            ' alt=""/>'
        )
        items.append(
            f'<item><guid isPermaLink="false">tag:blogger.com,1999:blog-{feed}.post-{n}</guid>'
            f"<pubDate>{rfc822(date(feed, n, 600))}</pubDate>"
            f"<title>{escape(sentence(n * 3 + feed, 7))}</title>"
            f"<description>{escape(body)}</description>"
            f"<link>http://feedproxy.google.com/~r/{name}/~3/{feed:x}{n:x}"
            f"/{slug.rsplit('/', 1)[1]}</link>"
            f"<author>noreply@blogger.com (Author {n % 5})</author>"
            f"<thr:total>{n % 13}</thr:total>"
            f"<feedburner:origLink>{site}/{slug}</feedburner:origLink></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<?xml-stylesheet type="text/xsl" media="screen" href="/~d/styles/rss2full.xsl"?>'
        '<rss xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:openSearch="http://a9.com/-/spec/opensearchrss/1.0/" '
        'xmlns:thr="http://purl.org/syndication/thread/1.0" '
        'xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0" version="2.0"><channel>'
        f"<lastBuildDate>{rfc822(date(feed, numbers[0], 600))}</lastBuildDate>"
        f"<title>Example Blog {feed}</title><description>{sentence(feed)}</description>"
        f"<link>{site}/</link><managingEditor>noreply@blogger.com (Jane Roe)</managingEditor>"
        "<generator>Blogger</generator><openSearch:totalResults>412</openSearch:totalResults>"
        f'<atom10:link xmlns:atom10="http://www.w3.org/2005/Atom" rel="self" '
        f'type="application/rss+xml" href="http://feeds.feedburner.com/{name}" />'
        f'<feedburner:info uri="{name.lower()}" />' + "".join(items) + "</channel></rss>"
    ).encode(), CONTENT_TYPES["rss"]


def _wordpress_items(feed: int, numbers: list[int], site: str, broken: bool) -> list[str]:
    items = []
    for n in numbers:
        slug = f"{date(feed, n, 1440):%Y/%m/%d}/{words(feed + n, 4).replace(' ', '-')}-{n}"
        title = f"Why I&#8217;m writing about {words(feed * 5 + n, 3)} ({n})"
        link = f"{site}/{slug}/"
        if broken:  # what a hand-written template does: & left as it is
            title = f"Notes & {words(feed * 5 + n, 3)} ({n})"
            link = f"{site}/?p={n}&amp;lang=en&utm_source=rss"
        paragraphs = "".join(
            f"\n\n<p>{sentence(feed * 13 + n * 7 + k, 35)}</p>\n" for k in range(10)
        )
        items.append(
            f"\t\t<item>\n\t\t<title>{title}</title>\n\t\t<link>{link}</link>\n"
            f"\t\t\t\t\t<comments>{site}/{slug}/#comments</comments>\n\t\t\n"
            f"\t\t<dc:creator><![CDATA[Author {n % 4}]]></dc:creator>\n"
            f"\t\t<pubDate>{rfc822(date(feed, n, 1440))}</pubDate>\n"
            f"\t\t\t\t<category><![CDATA[{words(n, 1).title()}]]></category>\n\n"
            f'\t\t<guid isPermaLink="false">{site}/?p={n * 3 + 400}</guid>\n\n'
            f"\t\t\t\t\t<description><![CDATA[{sentence(n + feed, 20)} [&#8230;]]]></description>\n"
            "\t\t\t\t\t\t\t\t\t\t<content:encoded><![CDATA[\n"
            '<figure class="wp-block-image size-large"><img decoding="async" width="1024" '
            f'height="768" src="{site}/wp-content/uploads/{slug[:7]}/img-{n}-1024x768.jpg" alt="" '
            f'class="wp-image-{n * 3 + 401}" srcset="{site}/wp-content/uploads/{slug[:7]}/img-{n}-'
            f'1024x768.jpg 1024w, {site}/wp-content/uploads/{slug[:7]}/img-{n}-300x225.jpg 300w" '
            'sizes="(max-width: 1024px) 100vw, 1024px" /></figure>\n'
            f'{paragraphs}\n<p>The post <a href="{site}/{slug}/">{title}</a> appeared first on '
            f'<a href="{site}">Plot {feed}</a>.</p>\n]]></content:encoded>\n'
            f"\t\t\t\t\t\n\t\t\t\t\t<wfw:commentRss>{site}/{slug}/feed/</wfw:commentRss>\n"
            f"\t\t\t<slash:comments>{n % 23}</slash:comments>\n\t\t\n\t\t\n\t\t\t</item>\n"
        )
    return items


def _wordpress(feed: int, numbers: list[int], broken: bool) -> tuple[bytes, bytes]:
    site = f"https://blog{feed}.example.org"
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"\n'
        '\txmlns:content="http://purl.org/rss/1.0/modules/content/"\n'
        '\txmlns:wfw="http://wellformedweb.org/CommentAPI/"\n'
        '\txmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '\txmlns:atom="http://www.w3.org/2005/Atom"\n'
        '\txmlns:sy="http://purl.org/rss/1.0/modules/syndication/"\n'
        '\txmlns:slash="http://purl.org/rss/1.0/modules/slash/"\n\t>\n\n<channel>\n'
        f"\t<title>Plot {feed}</title>\n"
        f'\t<atom:link href="{site}/feed/" rel="self" type="application/rss+xml" />\n'
        f"\t<link>{site}</link>\n\t<description>Notes from allotment {feed}</description>\n"
        f"\t<lastBuildDate>{rfc822(date(feed, numbers[0], 1440))}</lastBuildDate>\n"
        "\t<language>en-GB</language>\n\t<sy:updatePeriod>\n\thourly\t</sy:updatePeriod>\n"
        "\t<sy:updateFrequency>\n\t1\t</sy:updateFrequency>\n"
        "\t<generator>https://wordpress.org/?v=6.4.3</generator>\n"
        + "".join(_wordpress_items(feed, numbers, site, broken))
        + "\t</channel>\n</rss>\n"
        # Half of them behind a caching plugin, which signs its copy after the feed.
        + (
            "<!--\nPerformance optimized by W3 Total Cache. Learn more: "
            f"https://www.boldgrid.com/w3-total-cache/\n\nServed from: blog{feed}.example.org "
            "@ 2026-12-01 10:00:00 by W3 Total Cache\n-->"
            if feed % 2
            else ""
        )
    ).encode(), CONTENT_TYPES["rss"]


def wordpress(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    return _wordpress(feed, numbers, broken=False)


def broken_amp(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    return _wordpress(feed, numbers, broken=True)


def github(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    repo = f"example-org/project-{feed}"
    entries = []
    for n in numbers:
        moment = iso(date(feed, n, 29))
        notes = (
            "<h2>What's Changed</h2>\n<ul>\n"
            + "".join(
                f'<li>{sentence(feed + n + k, 9)} by <a class="user-mention" '
                f'href="https://github.com/dev{k}">@dev{k}</a> in <a class="issue-link" '
                f'href="https://github.com/{repo}/pull/{n * 10 + k}">#{n * 10 + k}</a></li>\n'
                for k in range(8)
            )
            + f'</ul>\n<p><strong>Full Changelog</strong>: <a href="https://github.com/{repo}/'
            f'compare/v1.{n - 1}.0...v1.{n}.0"><tt>v1.{n - 1}.0...v1.{n}.0</tt></a></p>'
        )
        entries.append(
            "  <entry>\n"
            f"    <id>tag:github.com,2008:Repository/{feed * 1000 + 7}/v1.{n}.0</id>\n"
            f"    <updated>{moment}</updated>\n"
            f'    <link rel="alternate" type="text/html" href="https://github.com/{repo}'
            f'/releases/tag/v1.{n}.0"/>\n'
            f"    <title>v1.{n}.0</title>\n"
            f'    <content type="html">{escape(notes)}</content>\n'
            f"    <author>\n      <name>maintainer{n % 3}</name>\n    </author>\n"
            '    <media:thumbnail height="30" width="30" url="https:/'
            f'/avatars.githubusercontent.com/u/{n % 3 + 100}?s=60&amp;v=4"/>\n'
            "  </entry>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/" '
        'xml:lang="en-US">\n'
        f"  <id>tag:github.com,2008:https://github.com/{repo}/releases</id>\n"
        f'  <link type="text/html" rel="alternate" href="https://github.com/{repo}/releases"/>\n'
        f'  <link type="application/atom+xml" rel="self" href="https://github.com/{repo}'
        '/releases.atom"/>\n'
        f"  <title>Release notes from project-{feed}</title>\n"
        f"  <updated>{iso(date(feed, numbers[0], 29))}</updated>\n" + "".join(entries) + "</feed>\n"
    ).encode(), CONTENT_TYPES["atom"]


def rdf(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    site = f"https://city{feed}.example.org"
    links = [
        f"{site}/bik/d/{words(feed + n, 3).replace(' ', '-')}/{6839400000 + n}.html"
        for n in numbers
    ]
    items = []
    for n, link in zip(numbers, links, strict=True):
        items.append(
            f'<item rdf:about="{link}">\n'
            f"<title><![CDATA[{sentence(feed * 3 + n, 6)} &#x0024;{100 + n % 900}]]></title>\n"
            f"<link>{link}</link>\n"
            f"<description><![CDATA[{sentence(feed + n, 30)} {sentence(feed + n + 1, 25)}]]><"
            "/description>\n"
            f"<dc:date>{iso(date(feed, n, 11))[:-1]}-08:00</dc:date>\n"
            "<dc:language>en-us</dc:language>\n"
            f"<dc:rights>&amp;copy; 2023 <![CDATA[city {feed}]]></dc:rights>\n"
            f"<dc:source>{link}</dc:source>\n<dc:title><![CDATA[{sentence(feed * 3 + n, 6)}]]>"
            "</dc:title>\n"
            "<dc:type>text</dc:type>\n"
            f'<enc:enclosure resource="https://images.example.org/{feed}_{n}_300x300.jpg" type'
            '="image/jpeg"/>\n'
            "</item>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF\n xmlns="http://purl.org/rss/1.0/"\n'
        ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"\n'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        ' xmlns:syn="http://purl.org/rss/1.0/modules/syndication/"\n'
        ' xmlns:enc="http://purl.oclc.org/net/rss_2.0/enc#"\n>\n\n'
        f'<channel rdf:about="{site}/search/bik?format=rss">\n'
        f"<title>city {feed} | bicycles - by owner</title>\n<link>{site}/search/bik</link>\n"
        "<description></description>\n<dc:language>en-us</dc:language>\n"
        "<syn:updatePeriod>hourly</syn:updatePeriod>\n<items>\n <rdf:Seq>\n"
        + "".join(f' <rdf:li rdf:resource="{link}" />\n' for link in links)
        + " </rdf:Seq>\n</items>\n</channel>\n"
        + "".join(items)
        + "</rdf:RDF>\n"
    ).encode(), CONTENT_TYPES["rdf"]


def atom_xhtml(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    site = f"https://workshop{feed}.example.org"
    entries = []
    for n in numbers:
        slug = f"{date(feed, n, 2000):%Y/%m}/{words(feed + n, 3).replace(' ', '-')}-{n}"
        body = "".join(
            f'        <p>{sentence(feed * 17 + n + k, 30)} <a href="{site}/tags/{words(k, 1)}/">'
            f"{words(k, 1)}</a> &amp; <strong>{words(n + k, 2)}</strong>.</p>\n"
            for k in range(6)
        )
        entries.append(
            "  <entry>\n"
            f'    <title type="html">{escape(sentence(feed + n * 3, 5))} &lt;em&gt;{n}&lt;'
            "/em&gt;</title>\n"
            f'    <link rel="alternate" type="text/html" href="{site}/{slug}/"/>\n'
            f"    <id>tag:workshop{feed}.example.org,2024:/{slug}</id>\n"
            f"    <published>{iso(date(feed, n, 2000))}</published>\n"
            f"    <updated>{iso(date(feed, n, 2000) + timedelta(hours=3))}</updated>\n"
            f'    <category term="{words(n, 1)}" label="{words(n, 1).title()}"/>\n'
            f'    <summary type="text">{sentence(feed + n, 9)}</summary>\n'
            '    <content type="xhtml">\n      <div xmlns="http://www.w3.org/1999/xhtml">\n'
            + body
            + f'        <figure><img src="{site}/{slug}/photo.jpg" alt="{words(n, 4)}" '
            'width="800" height="533"/></figure>\n'
            "      </div>\n    </content>\n  </entry>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
        f'  <title type="text">Notes from Workshop {feed}</title>\n'
        f"  <subtitle>{sentence(feed, 6)}</subtitle>\n"
        f'  <link rel="alternate" type="text/html" href="{site}/"/>\n'
        f'  <link rel="self" type="application/atom+xml" href="{site}/feed.atom"/>\n'
        f"  <id>{site}/</id>\n  <updated>{iso(date(feed, numbers[0], 2000))}</updated>\n"
        f"  <author>\n    <name>Maker {feed}</name>\n    <uri>{site}/about</uri>\n  </author>\n"
        '  <generator uri="https://gohugo.io/" version="0.123.7">Hugo</generator>\n'
        + "".join(entries)
        + "</feed>\n"
    ).encode(), CONTENT_TYPES["atom"]


def jsonfeed(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    site = f"https://micro{feed}.example.blog"
    items = []
    for n in numbers:
        slug = f"{date(feed, n, 300):%Y/%m/%d}/{words(feed + n, 3).replace(' ', '-')}-{n}.html"
        html = "".join(f"<p>{sentence(feed * 19 + n + k, 28)}</p>" for k in range(5))
        item: dict[str, object] = {
            "id": str(2_000_000 + feed * 1000 + n),
            "url": f"{site}/{slug}",
            "title": sentence(feed + n * 7, 6),
            "content_html": html
            + f'<p><img src="{site}/uploads/{n}.jpg" width="600" height="400" alt="photo {n}"></p>',
            "date_published": iso(date(feed, n, 300)).replace("Z", "+00:00"),
            "tags": [words(n, 1).title()],
        }
        if n % 3 == 0:
            item["summary"] = sentence(n, 8)
            item["image"] = f"{site}/uploads/{n}.jpg"
            item["authors"] = [{"name": f"Robin {feed}", "url": f"{site}/"}]
        items.append(item)
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"Robin's microblog {feed}",
        "icon": f"{site}/uploads/avatar-512.png",
        "home_page_url": f"{site}/",
        "feed_url": f"{site}/feed.json",
        "language": "en",
        "authors": [{"name": f"Robin {feed}", "url": f"{site}/"}],
        "items": items,
    }
    return json.dumps(document, indent="\t", ensure_ascii=False).encode(), CONTENT_TYPES["json"]


def gbk(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    site = f"http://news{feed}.sina.example.cn"
    items = []
    for n in numbers:
        paragraphs = text.chinese(feed * 37 + n, 4, text.gb2312)
        title = f"第{n}条 {paragraphs[0][3:22]}（朱镕基 {feed}）"  # 镕 is GBK only
        link = f"{site}/c/{date(feed, n, 23):%Y-%m-%d}/doc-{feed:x}{n:06x}.shtml"
        items.append(
            f"<item>\n<title><![CDATA[{title}]]></title>\n<link>{link}</link>\n"
            f"<author>WWW.SINA.EXAMPLE.CN</author>\n<guid>{link}</guid>\n"
            f"<category><![CDATA[国内新闻]]></category>\n"
            f"<pubDate>{rfc822(date(feed, n, 23))}</pubDate>\n"
            f"<comments></comments>\n<description><![CDATA[{''.join(paragraphs)}]]></description>\n"
            "</item>\n"
        )
    return (
        '<?xml version="1.0" encoding="gb2312"?>\n'
        '<?xml-stylesheet type="text/xsl" href="http://rss.sina.example.cn/rss.xsl"?>\n'
        '<rss version="2.0">\n<channel>\n'
        f"<title><![CDATA[国内要闻 {feed}-新浪新闻]]></title>\n"
        f"<image>\n<title><![CDATA[新浪新闻]]></title>\n<link>{site}</link>\n"
        "<url>http://i0.sinaimg.example.cn/home/main/index2007/images/logo.gif</url>\n</image>\n"
        f"<description><![CDATA[国内要闻-新浪新闻]]></description>\n<link>{site}/china/</link>\n"
        "<language>zh-cn</language>\n<generator>WWW.SINA.EXAMPLE.CN</generator>\n<ttl>5</ttl>\n"
        f"<pubDate>{rfc822(date(feed, numbers[0], 23))}</pubDate>\n"
        + "".join(items)
        + "</channel>\n</rss>\n"
    ).encode("gbk"), CONTENT_TYPES["legacy"]


def latin1(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    site = f"https://www.journal{feed}.example.ca"
    items = []
    for n in numbers:
        opening = words(feed + n, 5, FRENCH).capitalize()
        title = f"{opening} : la Ville prévoit « {words(n, 2, FRENCH)} » ({n})"
        link = f"{site}/actualites/{date(feed, n, 97):%Y/%m}/article-{n}"
        body = "".join(
            f"<p>{words(feed * 3 + n + k, 40, FRENCH).capitalize()}.</p>" for k in range(4)
        )
        items.append(
            f"<item>\n<title>{escape(title)}</title>\n<link>{link}</link>\n"
            f"<description>{escape(body)}</description>\n"
            f"<pubDate>{format_datetime(date(feed, n, 97).astimezone(), usegmt=False)}</pubDate>\n"
            f"<guid>{link}</guid>\n</item>\n"
        )
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<rss version="2.0">\n<channel>\n'
        f"<title>Le Journal {feed} de Qu&#233;bec &#8211; Actualit&#233;s</title>\n"
        f"<link>{site}/actualites</link>\n<description>Les dernières nouvelles</description>\n"
        "<language>fr-CA</language>\n" + "".join(items) + "</channel>\n</rss>\n"
    ).encode("iso-8859-1"), CONTENT_TYPES["legacy"]


def broken_tag(feed: int, numbers: list[int], text: Text) -> tuple[bytes, bytes]:
    site = f"https://daily{feed}.example.com"
    items = []
    for index, n in enumerate(numbers):
        slug = f"{date(feed, n, 41):%Y/%m/%d}/{words(feed + n, 4).replace(' ', '-')}"
        # The third item's description ends with the wrong end tag, as a hand-made template
        # that renamed one element and not the other does.
        end = "</descripton>" if index == 2 else "</description>"
        items.append(
            f"<item><title>{escape(sentence(feed + n * 3, 8))}</title>"
            f"<link>{site}/{slug}.html</link><guid>{site}/{slug}.html</guid>"
            f"<description><![CDATA[<p>{sentence(feed + n, 40)}</p><p>{sentence(n, 30)}</p>]]>{end}"
            f"<pubDate>{rfc822(date(feed, n, 41))}</pubDate>"
            f"<dc:creator>Reporter {n % 7}</dc:creator></item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>\n'
        f"<title>The Daily {feed}</title><link>{site}/</link>"
        f"<description>{sentence(feed)}</description>\n" + "".join(items) + "</channel></rss>\n"
    ).encode(), CONTENT_TYPES["rss"]


BUILDERS = {
    "newspaper": newspaper,
    "podcast": podcast,
    "reddit": reddit,
    "feedburner": feedburner,
    "wordpress": wordpress,
    "github": github,
    "rdf": rdf,
    "atom-xhtml": atom_xhtml,
    "jsonfeed": jsonfeed,
    "gbk": gbk,
    "latin1": latin1,
    "broken-amp": broken_amp,
    "broken-tag": broken_tag,
}
assert set(BUILDERS) == set(SHAPES)


def feed_document(feed: int, version: int, text: Text) -> tuple[bytes, bytes]:
    """Feed `feed` at `version`: its body and Content-Type; version v lists items
    5v .. 5v+K-1, newest first (K: its shape's items per feed)."""
    count = items_of(feed)
    first = version * NEW_PER_BUMP
    numbers = list(range(first + count - 1, first - 1, -1))
    return BUILDERS[shape_of(feed)](feed, numbers, text)


def first_of_each_shape(feeds: int) -> dict[str, int]:
    """The first feed of each shape in a world of `feeds` feeds."""
    found: dict[str, int] = {}
    for index in range(min(feeds, len(SEQUENCE))):
        found.setdefault(shape_of(index), index)
    return found


def counts(feeds: int) -> dict[str, int]:
    found = dict.fromkeys(SHAPES, 0)
    for index in range(feeds):
        found[shape_of(index)] += 1
    return found
