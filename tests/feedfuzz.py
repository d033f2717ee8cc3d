"""Hypothesis strategies for feed documents: feeds built from hostile parts, and real feeds
mutated byte by byte. Shared by the fuzz tests and the fast-parser equivalence tests."""

from __future__ import annotations

from xml.sax.saxutils import escape

from feedworld import DATA, rsshub_feed, rsshub_item
from hypothesis import strategies as st

TEXT = st.text(max_size=40) | st.sampled_from(
    ["]]>", "<![CDATA[", "&amp;", "&#0;", "&#xD800;", "&bogus;", "\x00\x01\x1b", "\ufffe", "'\""]
)
URLS = st.sampled_from(
    [
        "https://example.org/a",
        "http://example.org/b?x=1&y=2#f",
        "/relative/path",
        "relative.html",
        "../../../etc/passwd",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//cdn.example/x.png",
        "",
        " ",
        "mailto:a@example.org",
        "file:///etc/passwd",
    ]
)
TAGS = st.sampled_from(
    ["p", "b", "i", "a", "img", "div", "span", "h3", "script", "style", "iframe", "svg",
     "math", "object", "form", "table", "td", "noscript", "template", "video", "source"]
)  # fmt: skip
ATTRIBUTES = st.sampled_from(
    ["href", "src", "srcset", "onerror", "onload", "style", "class", "alt", "loading",
     "referrerpolicy", "data-recalc-dims", "formaction", "poster", "srcdoc", "xlink:href"]
)  # fmt: skip


@st.composite
def html_fragments(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 3 if depth < 3 else 1))
        if kind == 0:
            parts.append(escape(draw(TEXT)))
        elif kind == 1:
            parts.append(draw(TEXT))  # raw: broken markup on purpose
        else:
            tag = draw(TAGS)
            attributes = "".join(
                f' {draw(ATTRIBUTES)}="{escape(draw(URLS | TEXT), {chr(34): "&quot;"})}"'
                for _ in range(draw(st.integers(0, 3)))
            )
            inner = draw(html_fragments(depth + 1))
            close = draw(st.booleans())
            parts.append(f"<{tag}{attributes}>{inner}" + (f"</{tag}>" if close else ""))
    return "".join(parts)


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


# The extension namespaces real feeds declare, under their usual prefixes.
NAMESPACES = (
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:media="http://search.yahoo.com/mrss/" '
    'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
    'xmlns:slash="http://purl.org/rss/1.0/modules/slash/" '
    'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
    'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
    'xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0" '
    'xmlns:georss="http://www.georss.org/georss" '
    'xmlns:podcast="https://podcastindex.org/namespace/1.0" '
    'xmlns:thr="http://purl.org/syndication/thread/1.0"'
)
# Item-level extension elements: `{t}` a text, `{h}` HTML, `{u}` a URL, `{a}` an attribute.
EXTENSIONS = [
    "<dc:creator>{t}</dc:creator>",
    "<dc:date>{t}</dc:date>",
    "<dc:date>2024-03-01T09:30:00Z</dc:date>",
    "<dc:subject>{t}</dc:subject>",
    "<dc:title>{t}</dc:title>",
    "<dc:description>{h}</dc:description>",
    "<dcterms:modified>2024-03-02T10:00:00+01:00</dcterms:modified>",
    "<dcterms:issued>Fri, 28 Jan 2022 04:45:33 GMT</dcterms:issued>",
    "<content:encoded>{h}</content:encoded>",
    "<atom:link href='{u}'/>",
    "<atom:link rel='self' href='{u}'/>",
    "<atom:link rel='enclosure' type='image/png' href='{u}'/>",
    "<atom:link rel='hub' href='{u}'/>",
    "<media:content url='{u}' medium='image' width='10'/>",
    "<media:content url='{u}' type='IMAGE/JPEG'/>",
    "<media:content url='{u}' type='video/mp4'><media:credit role='x'>{t}</media:credit>"
    "</media:content>",
    "<media:content url='{u}'><media:thumbnail url='{u}'/></media:content>",
    "<media:thumbnail url='{u}' width='1'/>",
    "<media:thumbnail url='{u}'>{t}</media:thumbnail>",
    "<media:group><media:content url='{u}' medium='image'/><media:thumbnail url='{u}'/>"
    "</media:group>",
    "<media:group><media:description>{t}</media:description></media:group>",
    "<media:title>{t}</media:title>",
    "<media:description>{h}</media:description>",
    "<media:description type='plain'>{t}</media:description>",
    "<media:credit>{t}</media:credit>",
    "<media:keywords>{t}</media:keywords>",
    "<media:category>{t}</media:category>",
    "<itunes:author>{t}</itunes:author>",
    "<itunes:summary>{h}</itunes:summary>",
    "<itunes:subtitle>{t}</itunes:subtitle>",
    "<itunes:keywords>a, {t},,b</itunes:keywords>",
    "<itunes:duration>12:34</itunes:duration>",
    "<itunes:explicit>no</itunes:explicit>",
    "<itunes:image href='{u}'/>",
    "<itunes:title>{t}</itunes:title>",
    "<itunes:episode>3</itunes:episode>",
    "<itunes:category text='{a}'/>",
    "<slash:comments>4</slash:comments>",
    "<wfw:commentRss>{u}</wfw:commentRss>",
    "<feedburner:origLink>{u}</feedburner:origLink>",
    "<feedburner:origLink/>",
    "<georss:point>45.25 -71.92</georss:point>",
    "<podcast:season>2</podcast:season>",
    "<thr:total>3</thr:total>",
    "<comments>{u}</comments>",
    "<category domain='{u}'>{t}</category>",
]


@st.composite
def extension(draw: st.DrawFn) -> str:
    """One extension element, its text escaped or in CDATA."""
    quote = {chr(34): "&quot;", "'": "&apos;"}
    wrap = draw(st.sampled_from([cdata, escape]))
    return draw(st.sampled_from(EXTENSIONS)).format(
        t=wrap(draw(TEXT)),
        h=wrap(draw(html_fragments())),
        u=escape(draw(URLS), quote),
        a=escape(draw(TEXT), quote),
    )


@st.composite
def items(draw: st.DrawFn) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(f"<title>{draw(st.sampled_from([cdata, escape]))(draw(TEXT))}</title>")
    if draw(st.booleans()):
        parts.append(f"<link>{escape(draw(URLS))}</link>")
    if draw(st.booleans()):
        permalink = draw(st.sampled_from(["", ' isPermaLink="false"']))
        parts.append(f"<guid{permalink}>{escape(draw(TEXT | URLS))}</guid>")
    if draw(st.booleans()):
        date = draw(
            st.sampled_from(
                [
                    "Fri, 28 Jan 2022 04:45:33 GMT",
                    "Thu, 01 Jan 1970 00:00:00 GMT",
                    "Fri, 31 Dec 9999 23:59:59 GMT",
                    "2022-01-28T04:45:33Z",
                    "yesterday",
                    "",
                ]
            )
        )
        parts.append(f"<pubDate>{date}</pubDate>")
    if draw(st.booleans()):
        parts.append(f"<author>{escape(draw(TEXT))}</author>")
    if draw(st.booleans()):
        parts.append(f"<category>{escape(draw(TEXT))}</category>")
    html = draw(html_fragments())
    parts.append(f"<description>{draw(st.sampled_from([cdata, escape]))(html)}</description>")
    parts += draw(st.lists(extension(), max_size=3))
    return "<item>" + "".join(draw(st.permutations(parts))) + "</item>"


@st.composite
def feeds(draw: st.DrawFn) -> bytes:
    entries = draw(st.lists(items(), max_size=8))
    if draw(st.booleans()):
        entries += entries[:2]  # duplicate guids and identities
    title = escape(draw(TEXT))
    before, after = draw(st.lists(COMMENTS, max_size=2)), draw(st.lists(COMMENTS, max_size=2))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{"".join(before)}'
        f'<rss version="2.0" {NAMESPACES}><channel>'
        f"<title>{title}</title><link>{escape(draw(URLS))}</link>"
        + "".join(entries)
        + f"</channel></rss>{''.join(after)}"
    ).encode("utf-8", "surrogatepass")


# Comments outside the document element, as publishers write them (WordPress's generator
# before <rss>, a caching plugin's signature after it) and as they should not.
COMMENTS = st.sampled_from(
    [
        '<!-- generator="WordPress/6.4.2" -->\n',
        "\n<!-- Performance optimized by W3 Total Cache. Learn more: "
        "https://www.boldgrid.com/w3-total-cache/\n\nServed from: example.org @ 2026-12-01 "
        "10:00:00 by W3 Total Cache -->",
        "<!-- Dynamic page generated in 0.123 seconds. -->\n<!-- Cached page generated by "
        "WP-Super-Cache on 2026-12-01 10:00:00 -->",
        "<!--<item><title>not an item</title></item>-->",
        "<!-- 中文 ]]> &amp; -->",
        "<!---->",
        "<!-- a -- b -->",  # not well-formed: both readers' recovery
        "<?pi after?>",
    ]
)


SEEDS = [
    (DATA / "aljazeera.rss").read_bytes(),
    (DATA / "atom.xml").read_bytes(),
    (DATA / "rss10.rdf").read_bytes(),
    rsshub_feed([rsshub_item(i) for i in range(3)]),
]


# Publisher-shaped feeds full of extension elements (media:, itunes:, dc:, feedburner:...).
EXTENSION_SEEDS = [
    (DATA / "real" / name).read_bytes()
    for name in ("newspaper.rss", "podcast.rss", "wordpress.rss", "reddit.rss", "feedburner.atom",
                 "reddit.atom")
] + [
    (DATA / "golden" / name).read_bytes()
    for name in ("news-media.rss", "podcast-itunes.rss", "atom-xmlbase.atom")
] + [
    # RSS 1.0 as Slash sites publish it (golden/rdf-1.0.rdf with slash: declared on the root,
    # where the fast path reads it)
    (DATA / "rdf-slashcode.rdf").read_bytes()
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes] = SEEDS) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        operation = draw(st.integers(0, 4))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if operation == 0:  # flip a byte
            data[position] = draw(st.integers(0, 255))
        elif operation == 1:  # insert bytes, often markup
            insert = draw(st.binary(max_size=20) | st.sampled_from(
                [b"<script>alert(1)</script>", b"]]>", b"<!ENTITY a 'x'>", b"&#xD800;",
                 b"<img src=x onerror=alert(1)>", b"\xff\xfe", b"<item>", b"</channel>",
                 b"<!-- c -->"]
            ))  # fmt: skip
            data[position:position] = insert
        elif operation == 2:  # cut here
            del data[position:]
        elif operation == 3:  # delete a stretch
            del data[position : position + draw(st.integers(1, 200))]
        else:  # repeat a stretch (duplicate items, tags)
            data[position:position] = data[position : position + draw(st.integers(1, 400))]
    return bytes(data)
