"""Full-text extraction: readability-lxml (what aggregator/sources/article.py uses) against
trafilatura, on the news-site-shaped pages of tests/data/articles. Prints figures; asserts
nothing.

    python bench/article.py               # both, 200 rounds a page
    python bench/article.py --rounds 50

Each extractor runs in a fresh subprocess, so its memory is its own: "RSS" is the process's
resident size after importing what a parser process already has (lxml, nh3, selectolax, our
sanitiser: the baseline), after importing the extractor, and its peak after extracting every
page `rounds` times. Both extractors get the same input (decoded, lazy images made real) and
their output goes through the same sanitiser, so the time per article is the whole of
`extract_article` with one or the other in the middle. Quality is read off each result:
which of the article's paragraphs, its figure caption, image and ordered list survived, and
which pieces of the page's furniture (navigation, ads, share buttons, comments, related
articles, footer) did not.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "tests" / "data" / "articles"
URL = "https://news.example/2026/11/28/article.html"
# page: (headers, kept markers, furniture markers)
CASES = {
    "zh-news.html": (
        {"content-type": "text/html; charset=utf-8"},
        ["<figcaption>", "mekong-drought.jpg", "<blockquote>", "<h2>"],
        ["主导航", "限时优惠", "分享到微博", "评论区第一条", "相关阅读", "最多阅读", "版权所有"],
    ),
    "en-news.html": (
        {"content-type": "text/html"},
        ["<figcaption>", "cycle-lane.jpg", "<ol>", "<blockquote", "static.ledger.example/doc"],
        [
            "Subscribe",
            "Advertisement",
            "Share on Facebook",
            "Comment one",
            "Related:",
            "All rights reserved",
            "morning briefing",
        ],
    ),
    "gbk-news.html": (
        {"content-type": "text/html"},
        ["20261126091245123.jpg", "图为新线开通首日"],
        ["网站首页", "当前位置", "分享到", "相关新闻：", "网友评论", "热点排行", "备案号"],
    ),
    "home.html": ({"content-type": "text/html"}, [], []),
    # zh-news.html with its article ten times as long and 600 KB of inline script: a big page.
    "zh-long": (
        {"content-type": "text/html; charset=utf-8"},
        ["<figcaption>", "mekong-drought.jpg", "<blockquote>", "<h2>"],
        ["主导航", "限时优惠", "分享到微博", "评论区第一条", "相关阅读", "最多阅读", "版权所有"],
    ),
}


def page_bytes(name: str) -> bytes:
    if name != "zh-long":
        return (PAGES / name).read_bytes()
    text = (PAGES / "zh-news.html").read_text(encoding="utf-8")
    start = text.index('<div class="article-body wysiwyg">') + len(
        '<div class="article-body wysiwyg">'
    )
    end = text.index('<div class="ad-slot ad-inarticle">')
    body = text[start:end].rsplit("</div>", 1)[0]
    script = "<script>window.__DATA__ = '" + "x" * 600_000 + "';</script>"
    return (text[:start] + body * 10 + text[start:].replace("</body>", script + "</body>")).encode()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(extractor: str, rounds: int) -> dict:
    """Runs in the subprocess: import, extract, measure."""
    sys.path.insert(0, str(ROOT))
    import lxml.html

    from aggregator.sources import article

    figures: dict = {"baseline_rss": rss_mib()}
    started = time.perf_counter()
    if extractor == "readability":
        article._document_class()  # the import extract_article makes on its first call
        extract = article.extract_article
    else:
        import trafilatura

        def extract(body: bytes, url: str, headers: dict) -> article.ArticleResult:
            text, _ = article.decode_page(body, headers.get("content-type", ""))
            document, base = article._parse(text, url)
            article.real_lazy_images(document)
            page = lxml.html.tostring(document, encoding="unicode")
            found = trafilatura.extract(
                page, url=base, output_format="html", include_images=True,
                include_links=True, include_formatting=True, include_tables=True,
                include_comments=False,
            )  # fmt: skip
            html, image = article.clean_html(found or "", base)
            length = article._text_lengths(html)[0] if html else 0
            if length < article.MIN_TEXT:
                return article.ArticleResult(html=None, text_length=length, reason="too little")
            return article.ArticleResult(html=html, text_length=length, image=image)

    figures["import_s"] = time.perf_counter() - started
    figures["import_rss"] = rss_mib()
    pages = {}
    for name, (headers, kept, furniture) in CASES.items():
        body = page_bytes(name)
        times = []
        result = None
        for _ in range(rounds):
            began = time.perf_counter()
            result = extract(body, URL, headers)
            times.append(time.perf_counter() - began)
        assert result is not None
        html = result.html or ""
        pages[name] = {
            "median_ms": statistics.median(times) * 1000,
            "first_ms": times[0] * 1000,
            "ok": result.html is not None,
            "text": result.text_length,
            "paragraphs": _paragraphs_kept(body, html),
            "kept": [m for m in kept if m in html],
            "missing": [m for m in kept if m not in html],
            "furniture": [m for m in furniture if m in html],
        }
    figures["pages"] = pages
    figures["peak_rss"] = peak_mib()
    return figures


def _paragraphs_kept(body: bytes, html: str) -> str:
    """How many of the page's article paragraphs (40+ characters of text, in its article
    body) are in `html`, as "kept/all"."""
    text = body.decode("gb18030" if b"gb2312" in body[:300] else "utf-8")
    text = text.split("<script>window.__DATA__")[0]
    match = re.search(
        r'class="(?:article-body|story-body)[^>]*>(.*?)</div>|id="content">(.*?)</div>',
        text,
        re.DOTALL,
    )
    if not match:
        return "-"
    found = re.findall(r"<p(?:\s[^>]*)?>(.*?)</p>", match.group(1) or match.group(2), re.DOTALL)
    wanted = [re.sub(r"<[^>]+>", "", p).strip("　 \n") for p in found]
    wanted = [w for w in wanted if len(w) >= 40]
    plain = re.sub(r"<[^>]+>", "", html).replace("&quot;", '"')
    return f"{sum(w in plain for w in wanted)}/{len(wanted)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--child", choices=["readability", "trafilatura"])
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child, options.rounds)))
        return
    for extractor in ("readability", "trafilatura"):
        run = subprocess.run(
            [sys.executable, __file__, "--child", extractor, "--rounds", str(options.rounds)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"\n{extractor}: import {figures['import_s'] * 1000:.0f} ms; RSS baseline "
            f"{figures['baseline_rss']:.1f} MiB, after import {figures['import_rss']:.1f} MiB "
            f"(+{figures['import_rss'] - figures['baseline_rss']:.1f}), peak after "
            f"{options.rounds} rounds {figures['peak_rss']:.1f} MiB "
            f"(+{figures['peak_rss'] - figures['baseline_rss']:.1f})"
        )
        print(
            f"  {'page':<14} {'median':>8} {'first':>8}  {'result':<8} {'text':>5}  "
            f"{'paras':>5}  kept / missing / furniture left"
        )
        for name, page in figures["pages"].items():
            print(
                f"  {name:<14} {page['median_ms']:6.2f}ms {page['first_ms']:6.1f}ms  "
                f"{'article' if page['ok'] else 'none':<8} {page['text']:>5}  "
                f"{page['paragraphs']:>5}  {len(page['kept'])} / {page['missing']} / "
                f"{page['furniture']}"
            )


if __name__ == "__main__":
    main()
