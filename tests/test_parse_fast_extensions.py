"""The fast reader on the extension elements real feeds carry (content:, dc:, media:, itunes:,
feedburner:, atom:link in RSS...), against feedparser's own path: hostile shapes of each
(odd nesting, feed level vs item level, empty, duplicated, entities and CDATA, a wrong
namespace URI, a prefix bound elsewhere) give the same `ParsedFeed` or are declined; and
what the fast reader borrows from feedparser (its namespace table, its handler names) is
pinned, with the guard that sends a feed to feedparser when that changes."""

from __future__ import annotations

import feedparser
import pytest
from test_parse_fast import atom, both_paths, rss

from aggregator.models import ParsedFeed
from aggregator.sources import parse_fast
from aggregator.sources.parse_fast import KNOWN_NAMESPACES, _has_handler, parse_plain_feed

MEDIA = "xmlns:media='http://search.yahoo.com/mrss/'"

# Each is read the same by both paths, and by the fast path itself.
TAKEN_ITEMS = [
    # content:encoded / description / itunes:summary / media:description: feedparser's
    # summary-after-summary-is-content rule, in every order
    "<description>d</description><itunes:summary>longer summary</itunes:summary>",
    "<itunes:summary>s</itunes:summary><description>longer description</description>",
    "<content:encoded>c</content:encoded><itunes:summary>s</itunes:summary>"
    "<description>d</description>",
    "<description>d</description><media:description>m</media:description>"
    "<content:encoded>c</content:encoded>",
    "<media:description type='plain'>m</media:description><dc:description>x</dc:description>",
    "<description/><itunes:summary><![CDATA[<p>a &amp; b</p>]]></itunes:summary>",
    # titles: the first one that is not empty stays; media:title never blocks
    "<media:title>m</media:title><title>t</title>",
    "<title>t</title><media:title>m</media:title><dc:title>d</dc:title>",
    "<title></title><dc:title>d</dc:title>",
    "<media:title>m</media:title>",
    "<itunes:title>not a title to feedparser</itunes:title>",
    # dates: dc:date and dcterms:modified are `updated`, dcterms:issued `published`
    "<title>a</title><dc:date>2024-03-01T09:30:00+01:00</dc:date>",
    "<title>a</title><dc:date>bad</dc:date><dc:date>2024-03-01</dc:date>",
    "<title>a</title><dcterms:modified>2024-03-01</dcterms:modified>"
    "<dcterms:issued>2024-02-01</dcterms:issued><pubDate>Fri, 28 Jan 2022 04:45:33 GMT</pubDate>",
    # categories: domain, dc:subject, empty ones, keywords
    "<title>c</title><category domain='d'/><category>X</category><dc:subject>Y</dc:subject>",
    "<title>c</title><dc:subject/><dc:subject>&amp;amp;</dc:subject><category>X</category>",
    "<title>k</title><itunes:keywords>a, b,, a ,c</itunes:keywords><category>a</category>",
    "<title>k</title><media:keywords>x,y</media:keywords><itunes:keywords/>",
    # authors
    "<title>a</title><itunes:author>Host</itunes:author>",
    "<title>a</title><dc:creator>  <![CDATA[Someone]]> </dc:creator>",
    # media: the first picture, in a group, in content, with credits
    "<title>m</title><media:content url='/a.jpg' medium='image'/>",
    "<title>m</title><media:content url='/v.mp4' type='video/mp4'/>"
    "<media:content url='/b.png' type='IMAGE/PNG'><media:credit>c</media:credit></media:content>",
    "<title>m</title><media:group><media:content url='/v.mp4'/><media:thumbnail url='/t.jpg'/>"
    "<media:credit role='r'>c</media:credit></media:group>",
    "<title>m</title><media:content url='/v.mp4'><media:thumbnail url='/t.jpg'/></media:content>",
    "<title>m</title><media:thumbnail url='/t1.jpg'/><media:thumbnail url='/t2.jpg'/>",
    "<title>m</title><media:thumbnail/><media:thumbnail url=''/><media:thumbnail url='/t.jpg'/>",
    "<title>m</title><media:credit>&lt;b&gt;</media:credit>",
    # atom:link in an item: its link when it is an alternate HTML one, an enclosure counts
    "<title>l</title><atom:link href='/alt'/>",
    "<title>l</title><atom:link href='/alt'/><link>/plain</link>",
    "<title>l</title><link>/plain</link><atom:link rel='alternate' href='/alt'/>",
    "<title>l</title><atom:link rel='enclosure' type='IMAGE/JPEG' href='/i.jpg'/>",
    "<title>l</title><guid>https://x.example/g</guid><atom:link rel='self' href='/s'/>",
    # feedburner:origLink is the link `parse` keeps
    "<title>f</title><link>https://feedproxy.example/~r/x</link>"
    "<feedburner:origLink>https://site.example/a?b=1&amp;c=2</feedburner:origLink>",
    "<title>f</title><feedburner:origLink/>",
    "<title>f</title><feedburner:origLink><![CDATA[ /relative ]]></feedburner:origLink>",
    "<title>f</title><feedburner:origLink>a</feedburner:origLink>"
    "<feedburner:origLink>https://b.example/</feedburner:origLink>",
    # elements feedparser only stores: skipped
    "<title>s</title><slash:comments>3</slash:comments><wfw:commentRss>/c</wfw:commentRss>"
    "<thr:total>1</thr:total><podcast:season>2</podcast:season>",
    "<title>s</title><itunes:duration>1:00</itunes:duration><itunes:explicit>yes</itunes:explicit>"
    "<itunes:image href='/i.jpg'/><itunes:episodeType>full</itunes:episodeType>"
    "<itunes:subtitle>sub</itunes:subtitle>",
    "<title>s</title><podcast:transcript url='/t.vtt' type='text/vtt'/>",
    "<title>s</title><podcast:person role='host'>Someone</podcast:person>",
    # names and attribute names in any case, repeated summaries and content
    "<TITLE>t</TITLE><media:Thumbnail url='/T.png'/><media:content url='/c.jpg' MEDIUM='image'/>",
    "<title>t</title><media:content url='/c.jpg' type='Image/JPEG'/>",
    "<description>a</description><description>bb</description><description>c</description>",
    "<content:encoded>a</content:encoded><content:encoded>bb</content:encoded>"
    "<description>c</description><itunes:summary>ddd</itunes:summary>",
    # enclosures from <enclosure> and atom:link in document order: the first picture
    "<title>t</title><atom:link rel='enclosure' type='image/png' href='/a.png'/>"
    "<enclosure url='/b.jpg' type='image/jpeg'/>",
    "<link>/a</link><atom:link rel='alternate' type='application/rss+xml' href='/f'/>",
    "<guid isPermaLink='false'>g</guid><atom:link href='/x'/>",
    "<title>t</title><feedburner:origLink>javascript:alert(1)</feedburner:origLink>"
    "<link>https://ok.example/</link>",
    # GeoRSS: feedparser keeps `where`, good coordinates or bad
    "<title>g</title><georss:point>45.256 -71.92</georss:point>",
    "<title>g</title><georss:point>north</georss:point><georss:line>1 2 3</georss:line>",
    "<title>g</title><georss:polygon>1 2 3 4 5 6 1 2</georss:polygon>"
    "<georss:box>1e999 nan</georss:box><georss:elev>12</georss:elev>",
]

TAKEN_CHANNELS = [
    "<title>T</title><itunes:author>Show</itunes:author><itunes:summary>s</itunes:summary>"
    "<itunes:image href='/i.png'/><itunes:category text='A &amp; B'>"
    "<itunes:category text='C'/></itunes:category><itunes:explicit>no</itunes:explicit>",
    # itunes:owner's name and email become the author, as feedparser syncs its details
    "<title>T</title><itunes:owner><itunes:name>N</itunes:name><itunes:email>e@x.example"
    "</itunes:email></itunes:owner>",
    "<title>T</title><itunes:owner><itunes:email>e@x.example</itunes:email>"
    "<itunes:name>N</itunes:name></itunes:owner>",
    "<title>T</title><itunes:owner><itunes:name>N</itunes:name></itunes:owner>",
    "<title>T</title><itunes:owner/>",
    # ... and after an author, from that author's details
    "<itunes:author>Host Name</itunes:author><itunes:owner><itunes:name>Owner</itunes:name>"
    "<itunes:email>o@x.example</itunes:email></itunes:owner>",
    "<managingEditor>ed@x.example (Ed)</managingEditor><itunes:owner>"
    "<itunes:name>N</itunes:name></itunes:owner>",
    "<itunes:owner><itunes:name>N</itunes:name><itunes:email>e@x.example</itunes:email>"
    "</itunes:owner><itunes:author>After</itunes:author>",
    # several authors: the last one
    "<managingEditor>a@x.example</managingEditor><dc:creator>b</dc:creator>"
    "<itunes:author>c</itunes:author>",
    # a summary after a summary in the channel is content to feedparser, and that state
    # carries into the first item
    "<title>T</title><itunes:summary>a</itunes:summary><description>b</description>",
    "<title>T</title><sy:updatePeriod>hourly</sy:updatePeriod>"
    "<sy:updateFrequency>1</sy:updateFrequency><atom:link rel='hub' href='https://h.example/'/>"
    "<atom:link rel='self' href='https://x.example/f'/>"
    "<podcast:locked owner='o'>yes</podcast:locked>",
    "<atom:link href='https://alt.example/'/><title>T</title>",
    "<link>https://a.example/</link><atom:link href='https://alt.example/'/>",
    "<dc:language>en</dc:language><dc:rights>r</dc:rights><dc:date>2024-01-01</dc:date>"
    "<dc:publisher>p</dc:publisher><dc:subject>s</dc:subject>",
]


@pytest.mark.parametrize("item", TAKEN_ITEMS)
def test_extension_elements_of_an_item_take_the_fast_path(item: str) -> None:
    parsed, taken = both_paths(rss(f"<item>{item}</item><item>{item}</item>"))
    assert taken, item
    assert isinstance(parsed, ParsedFeed) and parsed.entries


@pytest.mark.parametrize("channel", TAKEN_CHANNELS)
def test_extension_elements_of_a_channel_take_the_fast_path(channel: str) -> None:
    item = "<item><description>d</description><itunes:summary>s2</itunes:summary></item>"
    _, taken = both_paths(rss(item + item, channel))
    assert taken, channel


# Declined on purpose (feedparser reads them through rules the fast reader does not repeat),
# with the same result all the same.
DECLINED_ITEMS = [
    # feedparser merges a second author's details into the first
    "<author>a@x.example</author><dc:creator>b</dc:creator>",
    "<itunes:author>a</itunes:author><dc:creator>b</dc:creator>",
    # a media:description or media:title deeper than the item: feedparser's depth rules
    "<media:group><media:description>deep</media:description></media:group><description>d"
    "</description>",
    "<media:content url='/a.jpg'><media:title>t</media:title></media:content>",
    # media:thumbnail's text is its URL, resolved; media:category is a tag
    "<media:thumbnail>/t.jpg</media:thumbnail>",
    "<media:category label='L'>c</media:category>",
    # georss:where holds GML, read by feedparser's GML handlers
    "<georss:where><gml:Point xmlns:gml='http://www.opengis.net/gml'><gml:pos>1 2</gml:pos>"
    "</gml:Point></georss:where>",
    # an item-level itunes:category is a tag; itunes:name outside an owner is a name
    "<itunes:category text='x'/>",
    "<itunes:name>n</itunes:name>",
    # a summary with a type feedparser decodes as base64
    "<itunes:summary type='application/octet-stream'>aGk=</itunes:summary>",
    # attributes on elements whose text is read
    "<feedburner:origLink x='1'>https://o.example/</feedburner:origLink>",
    "<itunes:keywords x='1'>a,b</itunes:keywords>",
    # a link with no href: its text is the link then
    "<atom:link rel='alternate'>https://x.example/</atom:link>",
    # markup inside an element feedparser only stores
    "<slash:comments><b>3</b></slash:comments>",
    # a plain `base` attribute is xml:base to feedparser
    "<enclosure url='a.jpg' type='image/jpeg' base='https://other.example/'/>",
    # two attributes feedparser would fold into one
    "<enclosure url='a.jpg' URL='b.jpg' type='image/jpeg'/>",
    # an element of a namespace declared on itself (feedparser adds the declaration to its
    # attributes): only Atom links and media:content/thumbnail may
    "<x:y xmlns:x='urn:x'>z</x:y>",
    # a namespace feedparser does not know, as the default: it reads the bare name
    "<title xmlns='urn:x'>t</title>",
    # a look-alike of a known namespace (wrong URI): its prefix, unknown namespace
    "<media:thumbnail xmlns:media='http://search.yahoo.com/mrss/x' url='/t.jpg'/>",
]


@pytest.mark.parametrize("item", DECLINED_ITEMS)
def test_extension_elements_beyond_the_fast_reader_go_to_feedparser(item: str) -> None:
    _, taken = both_paths(rss(f"<item><title>a</title>{item}</item>"))
    assert not taken, item


def namespaced(declarations: str, items: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" {declarations}>'
        f"<channel><title>T</title>{items}</channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "taken"),
    [
        # the usual URIs under other prefixes: feedparser knows them by URI
        (
            namespaced(
                "xmlns:m='http://search.yahoo.com/mrss/' xmlns:d='http://purl.org/dc/elements/1.1/'",
                "<item><d:creator>c</d:creator><m:thumbnail url='/t.jpg'/></item>",
            ),
            True,
        ),
        # the old media URI (no trailing slash), and an upper-case Dublin Core URI
        (
            namespaced(
                "xmlns:media='http://search.yahoo.com/mrss' "
                "xmlns:dc='HTTP://PURL.ORG/DC/ELEMENTS/1.1/'",
                "<item><dc:creator>c</dc:creator><media:thumbnail url='/t.jpg'/></item>",
            ),
            True,
        ),
        # a prefix of feedparser's own bound to another URI it knows: it maps prefixes
        # document-wide, so media:content would be read as dc's
        (
            namespaced(
                "xmlns:media='http://purl.org/dc/elements/1.1/' "
                "xmlns:dc='http://search.yahoo.com/mrss/'",
                "<item><media:creator>c</media:creator><dc:thumbnail url='/t.jpg'/></item>",
            ),
            False,
        ),
        # the media prefix bound to a URI feedparser does not know: it still calls its media
        # handlers by the prefix, and so does the fast reader
        (
            namespaced(
                "xmlns:media='urn:not-media'",
                "<item><title>t</title><media:content url='/a.jpg' medium='image'/></item>",
            ),
            True,
        ),
        # one unknown URI under two prefixes: feedparser names both by the first
        (
            namespaced(
                "xmlns:a='urn:x' xmlns:b='urn:x'",
                "<item><title>t</title><a:one>1</a:one><b:two>2</b:two></item>",
            ),
            False,
        ),
        # a stylesheet before the feed: neither reader reads it
        (
            b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="/s.xsl"?>'
            + rss("<item><title>t</title></item>").split(b"?>", 1)[1],
            True,
        ),
    ],
)
def test_namespaces_are_named_as_feedparser_names_them(body: bytes, taken: bool) -> None:
    assert both_paths(body)[1] is taken


@pytest.mark.parametrize(
    ("body", "taken"),
    [
        (
            atom(
                "<entry><title>t</title><id>tag:x,1</id><link href='/p'/>"
                "<feedburner:origLink>https://o.example/p</feedburner:origLink>"
                "<media:thumbnail xmlns:media='http://search.yahoo.com/mrss/' url='/t.jpg'/>"
                "<thr:total>3</thr:total><author><name>n</name>"
                "<gd:image rel='r' src='/g.gif'/></author></entry>",
                "<title>F</title><openSearch:totalResults>1</openSearch:totalResults>"
                "<link rel='self' href='/f'/>",
            ),
            True,
        ),
        (atom("<entry><title>t</title><media:content url='/a.jpg' medium='image'/></entry>"), True),
        # xml:base on the document element, relative to where the feed was fetched
        (atom("<entry><link href='p'/></entry>").replace(b"<feed ", b"<feed xml:base='b/' "), True),
        (atom("<entry><title>t</title><media:title>m</media:title></entry>"), False),
        (atom("<entry><title>t</title><dc:creator>c</dc:creator></entry>"), False),
        (atom("<entry><title>t</title><author><name>n</name><gd:image>x</gd:image></author>"
              "</entry>"), False),
        (atom("<entry><title>t</title></entry>", "<link rel='self' href='/f' base='/x/'/>"), False),
    ],
)  # fmt: skip
def test_atom_extension_elements(body: bytes, taken: bool) -> None:
    assert both_paths(body, "application/atom+xml")[1] is taken


# -- what is borrowed from feedparser, pinned ------------------------------------------------


def test_feedparsers_namespace_table_is_the_one_the_fast_reader_relies_on() -> None:
    assert KNOWN_NAMESPACES["http://search.yahoo.com/mrss/"] == "media"
    assert KNOWN_NAMESPACES["http://search.yahoo.com/mrss"] == "media"
    assert KNOWN_NAMESPACES["http://www.itunes.com/dtds/podcast-1.0.dtd"] == "itunes"
    assert KNOWN_NAMESPACES["http://purl.org/dc/elements/1.1/"] == "dc"
    assert KNOWN_NAMESPACES["http://purl.org/dc/terms/"] == "dcterms"
    assert KNOWN_NAMESPACES["http://purl.org/rss/1.0/modules/content/"] == "content"
    assert KNOWN_NAMESPACES["http://rssnamespace.org/feedburner/ext/1.0"] == "feedburner"
    assert KNOWN_NAMESPACES["http://www.w3.org/2005/atom"] == ""


def test_feedparsers_handlers_are_the_ones_the_fast_reader_repeats_or_skips() -> None:
    read = [
        "media_content", "media_thumbnail", "media_title", "media_description", "media_credit",
        "itunes_author", "itunes_summary", "itunes_keywords", "itunes_owner", "itunes_image",
        "dc_creator", "dc_date", "dc_subject", "dc_title", "dc_description",
        "dcterms_modified", "dcterms_issued", "content_encoded",
    ]  # fmt: skip
    skipped = [
        "slash_comments", "wfw_commentrss", "sy_updateperiod", "sy_updatefrequency",
        "itunes_duration", "itunes_title", "itunes_episode", "itunes_season",
        "itunes_episodetype", "feedburner_origlink", "thr_total", "podcast_guid",
    ]  # fmt: skip
    assert all(_has_handler(key) for key in read)
    assert not any(_has_handler(key) for key in skipped)


def test_feedparser_stores_what_it_has_no_handler_for_under_its_name() -> None:
    """The fast reader's reason to skip such elements: feedparser only keeps them, under a
    name `parse` does not read (origLink aside, which it reads the same way)."""
    body = rss(
        "<item><title>t</title><slash:comments>3</slash:comments>"
        "<feedburner:origLink> https://o.example/ </feedburner:origLink></item>"
    )
    entry = feedparser.parse(body).entries[0]
    assert entry["slash_comments"] == "3"
    assert entry["feedburner_origlink"] == "https://o.example/"


def test_feedparsers_author_sync_is_the_one_the_fast_reader_calls() -> None:
    """`_sync_author_detail` and `_save_author`, borrowed: what they make of a feed's
    author and an itunes:owner after it."""
    authors = parse_fast._FeedAuthor()
    authors.author("Ed (ed@x.org)")
    assert authors.context["author"] == "Ed (ed@x.org)"
    assert authors.context["author_detail"] == {"name": "Ed", "email": "ed@x.org"}
    authors.owner("name", " Owner ")
    assert authors.context["author"] == "Ed (ed@x.org)"
    # its e-mail pattern ends in 2 to 4 letters: feedparser's, repeated by calling it
    quirk = parse_fast._FeedAuthor()
    quirk.author("Ed (ed@x.example)")
    assert quirk.context["author_detail"] == {"name": "Ed (ple", "email": "ed@x.exam"}
    authors.owner("email", "o@x.example")
    assert authors.context["author"] == "Owner (ed@x.org)"
    assert authors.context["publisher_detail"] == {"name": "Owner", "email": "o@x.example"}


def test_without_feedparsers_author_sync_the_feed_goes_to_feedparser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = rss("<item><title>t</title></item>")
    headers = {"content-type": "application/rss+xml", "content-location": "https://x.example/"}
    monkeypatch.setattr(parse_fast._FeedAuthor, "_save_author", None)
    assert parse_plain_feed(body, headers) is None


def test_a_handler_feedparser_adds_sends_the_element_to_feedparser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = rss("<item><title>t</title><slash:comments>3</slash:comments></item>")
    headers = {"content-type": "application/rss+xml", "content-location": "https://x.example/"}
    assert parse_plain_feed(body, headers) is not None

    class Newer(parse_fast.HANDLERS):  # type: ignore[misc, name-defined]
        def _start_slash_comments(self, attrs_d: dict) -> None:
            pass

    monkeypatch.setattr(parse_fast, "HANDLERS", Newer)
    assert parse_plain_feed(body, headers) is None


def test_the_other_itunes_namespace_is_itunes_too() -> None:
    """feedparser knows iTunes under a second URI; a channel summary there counts as one."""
    body = namespaced(
        "xmlns:it='http://example.com/DTDs/PodCast-1.0.dtd'",
        "<it:summary>a</it:summary><description>b</description><item><description>the longer"
        "</description><it:summary>s</it:summary></item>",
    )
    assert both_paths(body)[1]
