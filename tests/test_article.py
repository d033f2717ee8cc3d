"""Full-text articles (aggregator/sources/article.py): news-site-shaped pages served by a real
local HTTP server, fetched with the real fetcher and extracted with the real extractor."""

from __future__ import annotations

import gzip
import itertools
import re
import resource
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.sources.article import (
    MAX_PAGE_BYTES,
    MIN_TEXT,
    ArticleResult,
    HostGate,
    decode_page,
    extract_article,
    fetch_article,
)
from aggregator.sources.fetch import FetchLimits, make_session
from aggregator.sources.reach import reach_for

PAGES = Path(__file__).parent / "data" / "articles"
HTML = "text/html; charset=utf-8"
# Phrases from the pages' furniture: none may survive extraction.
ZH_FURNITURE = ["主导航", "限时优惠", "广告", "分享到微博", "读者评论", "评论区第一条", "相关阅读",
                "最多阅读", "版权所有", "dataLayer", "ad-slot"]  # fmt: skip
EN_FURNITURE = ["Subscribe", "cookies", "Advertisement", "Share on Facebook",
                "morning briefing", "Comment one", "Related:", "All rights reserved",
                "__INITIAL_STATE__", "renderAd"]  # fmt: skip
GBK_FURNITURE = ["网站首页", "当前位置", "分享到", "相关新闻：", "网友评论", "热点排行", "备案号"]


@pytest.fixture
def limits() -> FetchLimits:
    return FetchLimits(user_agent="aggregator-test/1", connect_timeout=2, read_timeout=2)


@pytest.fixture
def fetch(limits: FetchLimits) -> Iterator[Callable[..., object]]:
    """fetch_article with a fresh session, allowed to reach the local test server."""
    session = make_session(limits)

    def run(url: str, limits: FetchLimits = limits):
        return fetch_article(session, url, limits, reach_for(url, allow_private=True))

    yield run
    session.close()


def serve(
    server: HTTPServer, path: str, body: bytes, content_type: str | None = HTML, **headers: str
) -> str:
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    server.expect_request(path).respond_with_response(
        Response(body, headers=headers, content_type=content_type)
    )
    return server.url_for(path)


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def fetched_article(fetch, url: str, feed_text_length: int = 0) -> ArticleResult:
    result = fetch(url)
    assert result.error is None, result.error
    return extract_article(result.body, result.url, result.headers, feed_text_length)


def paragraphs(raw: bytes, encoding: str = "utf-8") -> list[str]:
    """The article paragraphs of a test page: the texts of <p> with 40+ characters inside
    its article body."""
    text = raw.decode(encoding)
    body = re.search(
        r'class="(?:article-body|story-body)[^>]*>(.*?)</div>|id="content">(.*?)</div>',
        text,
        re.DOTALL,
    )
    assert body
    found = re.findall(r"<p(?:\s[^>]*)?>(.*?)</p>", body.group(1) or body.group(2), re.DOTALL)
    texts = [re.sub(r"<[^>]+>", "", p).strip().replace("　", "") for p in found]
    return [t for t in texts if len(t) >= 40]


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&quot;", '"')


def test_a_chinese_news_page_keeps_the_article_and_drops_the_rest(
    httpserver: HTTPServer, fetch
) -> None:
    raw = page("zh-news.html")
    url = serve(httpserver, "/news/2026/11/28/mekong.html", raw)
    article = fetched_article(fetch, url)
    assert article.ok, article.reason
    html = article.html
    expected = paragraphs(raw)
    assert len(expected) >= 10
    for text in expected:
        assert text in text_of(html)
    assert "<h2>渔业同样受到冲击</h2>" in html
    assert "<blockquote><p>如果上游的水坝" in html
    assert "<li>柬埔寨向受灾渔民发放大米和现金补助；</li>" in html
    # The figure, its caption, and its lazy image made real and absolute, with srcset too.
    base = httpserver.url_for("/")
    assert "<figcaption>2026年11月，越南同塔省一处干涸的稻田" in html
    assert (
        f'<img class="lazyload" src="{base}images/2026/11/mekong-drought.jpg" alt="干涸的稻田" '
        f'srcset="{base}images/2026/11/mekong-drought-800.jpg 800w, '
        f'{base}images/2026/11/mekong-drought-1600.jpg 1600w" referrerpolicy="no-referrer">'
    ) in html
    assert "data:image" not in html and "data-src" not in html
    assert f'<a href="{base}news/2025/mekong-dams-explainer" rel="noopener noreferrer">' in html
    assert article.image == f"{base}images/2026/11/mekong-drought.jpg"
    assert article.title == "湄公河流域持续干旱 下游数百万农民面临减产"
    assert article.encoding == "utf-8"
    for furniture in ZH_FURNITURE:
        assert furniture not in html, furniture
    for tag in ("<script", "<style", "<iframe", "<form", "<nav", "<header", "<footer", "<aside"):
        assert tag not in html, tag


def test_an_english_newspaper_page_resolves_against_its_base_href(
    httpserver: HTTPServer, fetch
) -> None:
    raw = page("en-news.html")
    url = serve(httpserver, "/city/2026/11/27/cycling", raw)
    article = fetched_article(fetch, url)
    assert article.ok, article.reason
    html = article.html
    for text in paragraphs(raw):
        assert text in text_of(html), text
    assert article.base_url == "https://static.ledger.example/"
    # <picture> with a lazy <source> and a lazy <img> (data-original), made real.
    assert (
        '<source type="image/webp" '
        'srcset="https://static.ledger.example/images/2026/cycle-lane-wide.webp">'
    ) in html
    assert 'src="https://static.ledger.example/images/2026/cycle-lane.jpg"' in html
    assert "<figcaption>A trial section of protected lane" in html
    assert "<ol>\n     <li>Phase one:" in html
    assert '<a href="https://static.ledger.example/documents/cycling-network-plan.pdf"' in html
    for furniture in EN_FURNITURE:
        assert furniture not in html, furniture
    assert "<script" not in html and "<iframe" not in html


def test_a_gbk_page_without_a_charset_header(httpserver: HTTPServer, fetch) -> None:
    raw = page("gbk-news.html")
    url = serve(httpserver, "/news/2026/1126/gaotie.html", raw, content_type="text/html")
    article = fetched_article(fetch, url)
    assert article.ok, article.reason
    assert article.encoding == "gb18030"  # the page says gb2312, and uses GBK's 镕
    for text in paragraphs(raw, "gb18030"):
        assert text in text_of(article.html).replace("　", "")
    assert "退休教师王镕说" in article.html
    assert "�" not in article.html
    assert f'<img src="{httpserver.url_for("/uploadfile/2026/1126/")}' in article.html
    for furniture in GBK_FURNITURE:
        assert furniture not in article.html, furniture


def test_a_gbk_page_that_declares_nothing_is_detected() -> None:
    raw = page("gbk-news.html").replace(b"; charset=gb2312", b"")
    text, codec = decode_page(raw, "text/html")
    assert codec in ("gb18030", "gbk")
    assert "退休教师王镕说" in text
    article = extract_article(raw, "https://news.example/a.html", {"Content-Type": "text/html"})
    assert article.ok, article.reason
    assert "高速铁路正式开通运营" in article.html


@pytest.mark.parametrize(
    ("body", "content_type", "codec"),
    [
        ("中文页面".encode("gbk"), "text/html; charset=GBK", "gb18030"),
        ('<meta charset="big5">中文'.encode("big5"), "text/html", "big5hkscs"),
        ("中文页面".encode(), "text/html; charset=utf-8", "utf-8"),
        (b"\xef\xbb\xbf" + "中文".encode(), "text/html; charset=gbk", "utf-8"),  # BOM wins
        ("café".encode("cp1252"), "text/html; charset=iso-8859-1", "cp1252"),
        (  # mislabelled
            "<p>本月二十五日，一条全长三百二十公里的高速铁路正式开通运营。</p>".encode("gbk"),
            "text/html; charset=utf-8",
            "gb18030",
        ),
        ("中文页面，真的是中文".encode(), "text/html; charset=nonsense", "utf-8"),
    ],
)
def test_decoding(body: bytes, content_type: str, codec: str) -> None:
    assert decode_page(body, content_type)[1] == codec


def test_a_home_page_of_links_is_no_article(httpserver: HTTPServer, fetch) -> None:
    url = serve(httpserver, "/", page("home.html"))
    article = fetched_article(fetch, url)
    assert not article.ok
    assert article.html is None
    assert article.reason and "too little text" in article.reason


def test_an_article_no_longer_than_the_feeds_content_is_not_wanted() -> None:
    raw = page("en-news.html")
    found = extract_article(raw, "https://ledger.example/a", {})
    assert found.ok
    article = extract_article(raw, "https://ledger.example/a", {}, found.text_length)
    assert article.html is None
    assert article.reason and "no more text than the feed's" in article.reason
    assert extract_article(raw, "https://ledger.example/a", {}, found.text_length - 1).ok


def test_a_teaser_page_is_too_little_text() -> None:
    body = b"<html><body><article><p>" + b"Short teaser, read on in the app. " * 3
    article = extract_article(body + b"</p></article></body></html>", "https://x.example/", {})
    assert not article.ok and article.text_length < MIN_TEXT


def test_scripts_styles_and_foreign_iframes_are_gone() -> None:
    text = " ".join(["The council met again on Thursday, and the debate went on."] * 3)
    paragraphs_html = "".join(f"<p>{text} Paragraph {i}.</p>" for i in range(8))
    body = f"""<html><head><style>p {{ color: red }}</style></head><body>
    <div class="article-content">
      {paragraphs_html}
      <p onclick="steal()">Click <a href="javascript:alert(1)">here</a> and
         <a href="/more" onmouseover="x()">more</a>, a paragraph long enough to count.</p>
      <script>document.write('<p>injected text that must not appear</p>')</script>
      <style>.x {{ display: block }}</style>
      <iframe src="https://www.youtube.com/embed/abc123" width="560" height="315"></iframe>
      <iframe src="https://evil.example/frame"></iframe>
      <img src="/chart.png" onerror="steal()" style="width: 100%">
    </div></body></html>""".encode()
    article = extract_article(body, "https://x.example/news/1", {})
    assert article.ok, article.reason
    html = article.html
    for gone in ("<script", "<style", "onclick", "onmouseover", "onerror", "javascript:",
                 "injected text", "evil.example", "color: red", "style="):  # fmt: skip
        assert gone not in html, gone
    assert '<iframe src="https://www.youtube.com/embed/abc123"' in html
    assert '<img src="https://x.example/chart.png" referrerpolicy="no-referrer">' in html
    assert '<a href="https://x.example/more" rel="noopener noreferrer">more</a>' in html


def test_a_page_that_is_not_html_is_refused(httpserver: HTTPServer, fetch) -> None:
    url = serve(httpserver, "/photo.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 1000, "image/jpeg")
    result = fetch(url)
    assert result.body is None
    assert result.error == "not a web page (image/jpeg)"


def test_the_fetch_asks_for_html(httpserver: HTTPServer, fetch) -> None:
    url = serve(httpserver, "/a", page("en-news.html"))
    assert fetch(url).body
    request, _ = httpserver.log[0]
    assert request.headers["Accept"].startswith("text/html")
    assert request.headers.get("If-None-Match") is None


# Hostile pages: a clear error or a result with a reason, never an exception, bounded time
# and memory.


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_huge_page_is_cut_at_the_limit(httpserver: HTTPServer, fetch) -> None:
    chunk = b"<p>" + b"x" * 65530 + b"</p>"

    def endless(request: Request) -> Response:
        return Response((chunk for _ in range(2000)), content_type=HTML)  # 128 MiB, chunked

    httpserver.expect_request("/huge").respond_with_handler(endless)
    before = peak_rss_mib()
    result = fetch(httpserver.url_for("/huge"))
    assert result.body is None
    assert result.error == "response larger than the 4 MiB limit (article pages)"
    assert peak_rss_mib() - before < 64


def test_a_declared_huge_page_is_refused_unread(httpserver: HTTPServer, fetch) -> None:
    url = serve(httpserver, "/big", b"<p>x</p>" * (MAX_PAGE_BYTES // 8 + 1))
    result = fetch(url)
    assert result.error == "response larger than the 4 MiB limit (article pages)"


def test_a_gzip_bomb_is_cut_at_the_limit(httpserver: HTTPServer, fetch) -> None:
    member = gzip.compress(b"\0" * 2**20, 9)
    bomb = member * 1024  # 1 GiB inflated, ~1 MB on the wire
    url = serve(httpserver, "/bomb", bomb, Content_Encoding="gzip")
    before = peak_rss_mib()
    result = fetch(url)
    assert result.error == "response larger than the 4 MiB limit (article pages)"
    assert peak_rss_mib() - before < 64


def test_a_slow_server_times_out(httpserver: HTTPServer, limits: FetchLimits, fetch) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response(page("en-news.html"), content_type=HTML)

    httpserver.expect_request("/slow").respond_with_handler(slow)
    quick = FetchLimits(user_agent="t", connect_timeout=1, read_timeout=0.5, total_timeout=5)
    started = time.monotonic()
    result = fetch(httpserver.url_for("/slow"), quick)
    assert result.error == "timed out after 0.5 s waiting for the server"
    assert time.monotonic() - started < 1.4


def test_a_public_sources_link_cannot_reach_a_private_address(
    httpserver: HTTPServer, limits: FetchLimits
) -> None:
    url = serve(httpserver, "/a", page("en-news.html"))
    with make_session(limits) as session:
        result = fetch_article(session, url, limits, reach_for("https://news.example/feed"))
    assert result.body is None and result.error
    assert "private" in result.error or "loopback" in result.error or "local" in result.error
    assert not httpserver.log


PARAGRAPH = b"<p>This is a paragraph of text, with commas, to score well.</p>"


def test_the_largest_page_within_the_limits_takes_bounded_time() -> None:
    body = b"<html><body>" + b"<div>" * 250 + PARAGRAPH * 15_500 + b"</div>" * 250
    started = time.monotonic()
    article = extract_article(body, "https://x.example/", {})
    assert time.monotonic() - started < 10  # 1.3 s when measured
    assert article.ok


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<div>" * 200_000 + b"deep text " * 100 + b"</div>" * 200_000, id="nested"),
        pytest.param(b"<b><i><u><s>" * 20_000 + b"<p>text</p>" * 20_000, id="formatting"),
        pytest.param(
            b"<html><body>" + b"<script>var a = '<p>not text</p>';</script>" * 50_000,
            id="scripts",
        ),
        pytest.param(b"<table>" * 50_000 + b"<td>cell</td>" * 50_000, id="tables"),
        pytest.param(b'<img alt="' + b" width=1" * 200_000 + b'">' + b"<p>x</p>", id="attrs"),
        pytest.param(b"<?xml version='1.0' encoding='utf-8'?><html></html>", id="xml-decl"),
        pytest.param(b"\0\xff\xfe garbage \x00" * 1000, id="binary"),
        pytest.param(b"   ", id="blank"),
        pytest.param(b"x" * (MAX_PAGE_BYTES + 1), id="too-large"),
        pytest.param(b"<div>" * 250 + PARAGRAPH * 40_000, id="deep-and-wide"),
        pytest.param(b"<div><p>short text, over 25 characters</p></div>" * 70_000, id="elements"),
    ],
)
def test_hostile_markup_gives_a_reason_in_bounded_time(body: bytes) -> None:
    started = time.monotonic()
    article = extract_article(body, "https://x.example/", {"content-type": "text/html"})
    assert time.monotonic() - started < 10
    assert article.html is None
    assert article.reason


def test_a_page_of_scripts_around_an_article_keeps_only_the_article() -> None:
    script = b"<script>" + b"window.x = '" + b"a" * 50_000 + b"';</script>"
    body = script * 20 + page("en-news.html") + script * 20
    article = extract_article(body, "https://ledger.example/a", {})
    assert article.ok, article.reason
    assert "window.x" not in article.html and "aaaa" not in article.html


# HostGate: politeness per host.


def test_host_gate_limits_requests_in_flight_per_host() -> None:
    gate = HostGate(per_host=2, interval=0)
    lock = threading.Lock()
    in_flight = {"a.example": 0, "b.example": 0}
    most = dict.fromkeys(in_flight, 0)

    def work(host: str) -> None:
        with gate.slot(f"https://{host}/page"):
            with lock:
                in_flight[host] += 1
                most[host] = max(most[host], in_flight[host])
            time.sleep(0.02)
            with lock:
                in_flight[host] -= 1

    threads = [threading.Thread(target=work, args=(h,)) for h in in_flight for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == {"a.example": 2, "b.example": 2}


def test_host_gate_spaces_the_starts_of_one_host_but_not_of_others() -> None:
    gate = HostGate(per_host=4, interval=0.1)
    starts: dict[str, list[float]] = {"a.example": [], "B.example:8080": []}

    def work(host: str) -> None:
        with gate.slot(f"http://{host}/x"):
            starts[host].append(time.monotonic())

    threads = [threading.Thread(target=work, args=(h,)) for h in starts for _ in range(4)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for host_starts in starts.values():
        ordered = sorted(host_starts)
        gaps = [b - a for a, b in itertools.pairwise(ordered)]
        assert min(gaps) >= 0.09
    # The two hosts ran side by side: four starts each, 0.1 s apart, in ~0.3 s, not 0.7 s.
    assert time.monotonic() - began < 0.6


def test_host_gate_gives_up_after_its_timeout() -> None:
    gate = HostGate(per_host=1, interval=0)
    with gate.slot("https://a.example/1"):
        with (
            pytest.raises(TimeoutError, match=r"a\.example"),
            gate.slot("https://a.example/2", 0.1),
        ):
            pass
        with gate.slot("https://other.example/"):  # another host is not held up
            pass
    with gate.slot("https://a.example/3", timeout=0.1):  # released, even after a timeout
        pass


def test_host_gate_releases_a_slot_when_the_work_fails() -> None:
    gate = HostGate(per_host=1, interval=0)
    with pytest.raises(RuntimeError), gate.slot("https://a.example/"):
        raise RuntimeError("fetch failed")
    with gate.slot("https://a.example/", timeout=0.1):
        pass
