"""The index page at / of `aggregator run`, as a real browser (Debian's chromium, headless)
renders it: every source with its state, the newest entries, a link to every feed that
answers with the right feed, and the autodiscovery tags readers look for.

Chromium is a system package, not a Python one. Without it the test is skipped on a
developer's machine and fails under CI (where $CI is set), so CI can never pass it silently.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import lxml.html
import pytest
import requests
from conftest import FeedServer
from daemonworld import RunningDaemon, local, wait_for, write_config
from feedworld import rsshub_feed, rsshub_item

INSTALL_HINT = (
    "the index page test needs Debian's chromium: apt-get update && apt-get install -y chromium"
)
FEED_TYPES = {  # by file name: what the server must answer with, and how to read it
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}


def chromium() -> str:
    """The browser's path; a failure under CI, a skip with the install line elsewhere."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"chromium is missing and CI is set: {INSTALL_HINT}")
        pytest.skip(f"chromium is not installed; {INSTALL_HINT}")
    return path


def browse(browser: str, profile: Path, *arguments: str) -> str:
    """Run headless chromium once on its own profile; its stdout."""
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "HOME": str(profile)},
    )
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def text_of(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def test_the_index_page_in_a_real_browser(
    feed_server: FeedServer,
    tmp_path: Path,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    browser = chromium()
    feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
    tech_items = [
        rsshub_item(i, title=f'Python release {i} & "friends"', guid=f"tech-{i}") for i in (10, 11)
    ]
    feed_server.serve("/tech", rsshub_feed(tech_items, title="Tech news"))
    feed_server.serve("/broken", b"<html>oops</html>", status=500, etag=False)
    config = write_config(
        tmp_path,
        [
            {
                "name": "news",
                "url": local(feed_server, "/news"),
                "title": "半岛新闻",
                "categories": ["新闻", "World"],
            },
            {"name": "tech", "url": local(feed_server, "/tech"), "categories": ["Tech"]},
            {"name": "broken", "url": local(feed_server, "/broken"), "title": "Broken & Co"},
        ],
    )
    daemon = start_daemon(config)
    session = requests.Session()
    session.trust_env = False  # only ever 127.0.0.1, whatever proxy the machine sets
    base = f"http://{daemon.host}:{daemon.port}/"

    # The first polls are in and published: the merged feed holds all five entries and the
    # broken source has failed once.
    wait_for(
        lambda: len(feedparser.parse(session.get(base + "feed.xml").content).entries) == 5,
        "the merged feed to hold five entries",
    )
    wait_for(lambda: daemon.status("broken")["consecutive_errors"] >= 1, "the broken poll")

    profile = tmp_path / "chromium"
    profile.mkdir()
    dom = browse(browser, profile, "--dump-dom", base)
    page = lxml.html.fromstring(dom)
    assert text_of(page.find(".//h1")) == "Test merged feed"

    # Each source by its title and name, with its state and, when failing, its error.
    rows = {
        text_of(row.find("td")): [text_of(cell) for cell in row.findall("td")]
        for row in page.xpath("//h2[text()='Sources']/following-sibling::table[1]//tr[td]")
    }
    # (tech has no title in the config: the one its feed gave.)
    assert set(rows) == {"半岛新闻 news", "Tech news tech", "Broken & Co broken"}
    assert rows["半岛新闻 news"][1:4:2] == ["ok", "3"]
    assert rows["Tech news tech"][1:4:2] == ["ok", "2"]
    assert rows["Broken & Co broken"][1] == "error"
    assert "500" in rows["Broken & Co broken"][5]
    assert {cells[4] for cells in rows.values()} == {"RSS Atom JSON"}  # each one's own feeds

    # The newest entries, newest first, their titles as sent (escaped markup shown as text).
    latest = [
        text_of(item)
        for item in page.xpath("//h2[text()='Latest entries']/following-sibling::ul[1]/li")
    ]
    titles = [f"新闻标题 第{i}条" for i in range(3)]
    titles += [f'Python release {i} & "friends"' for i in (10, 11)]
    for title in titles:
        assert sum(title in line for line in latest) == 1, (title, latest)
    assert [line.split(" ", 5)[-1] for line in latest][:3] == titles[:3]

    # Every feed linked from the page answers 200 with the right type and a real feed:
    # merged, 3 categories, 3 sources; RSS, Atom and JSON Feed each.
    feeds = sorted(
        {href for href in page.xpath("//body//a/@href") if href.endswith(tuple(FEED_TYPES))}
    )
    assert len(feeds) == 3 * (1 + 3 + 3), feeds
    for href in feeds:
        check_feed(session, urljoin(base, href))

    # Autodiscovery: the merged feeds first, then each category's; no source's.
    alternates = page.xpath("//head/link[@rel='alternate']")
    assert [link.get("href") for link in alternates[:3]] == ["feed.xml", "atom.xml", "feed.json"]
    assert len(alternates) == 3 * (1 + 3)
    assert all(link.get("title") for link in alternates)
    categories = {link.get("href").rsplit("/", 1)[0] for link in alternates[3:]}
    assert categories == {"category/%E6%96%B0%E9%97%BB", "category/world", "category/tech"}
    for link in alternates:
        url = urljoin(base, link.get("href"))
        assert check_feed(session, url) == link.get("type") + "; charset=utf-8"
        assert link.get("href") in feeds  # also linked in the body

    # What a person sees: kept for a look (the path is printed when the test fails).
    screenshot = tmp_path / "index.png"
    browse(browser, profile, f"--screenshot={screenshot}", "--window-size=1200,900", base)
    assert png_size(screenshot) == (1200, 900)
    print(f"screenshot of the index page: {screenshot}")
    assert daemon.stop()[0] == 0


def check_feed(session: requests.Session, url: str) -> str:
    """Fetch a feed linked from the page: 200, the content type its name promises, and a
    body that parses as that kind of feed, with entries unless it is the broken source's.
    Returns the content type."""
    answer = session.get(url, timeout=10)
    expected = FEED_TYPES[url.rsplit("/", 1)[-1]]
    assert (answer.status_code, answer.headers["Content-Type"]) == (200, expected), url
    if expected.startswith("application/feed+json"):
        entries = json.loads(answer.content)["items"]
    else:
        parsed = feedparser.parse(answer.content)
        assert not parsed.bozo and parsed.version in {"rss20", "atom10"}, url
        entries = parsed.entries
    assert bool(entries) != ("/source/broken/" in url), url
    return expected


def test_the_index_page_in_a_chinese_browser(
    feed_server: FeedServer,
    tmp_path: Path,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    """A browser set to Chinese (zh-CN) gets the page in Simplified Chinese: its headings,
    column names, status words and times; titles and errors as their feeds sent them."""
    browser = chromium()
    feed_server.serve("/news", rsshub_feed([rsshub_item(i) for i in range(3)]))
    feed_server.serve("/broken", b"<html>oops</html>", status=500, etag=False)
    config = write_config(
        tmp_path,
        [
            {"name": "news", "url": local(feed_server, "/news"), "title": "半岛新闻"},
            {"name": "broken", "url": local(feed_server, "/broken"), "title": "Broken & Co"},
            {"name": "paused", "url": local(feed_server, "/paused"), "enabled": False},
        ],
    )
    daemon = start_daemon(config)
    session = requests.Session()
    session.trust_env = False
    base = f"http://{daemon.host}:{daemon.port}/"
    wait_for(
        lambda: len(feedparser.parse(session.get(base + "feed.xml").content).entries) == 3,
        "the merged feed to hold three entries",
    )
    wait_for(lambda: daemon.status("broken")["consecutive_errors"] >= 1, "the broken poll")

    # What the server says about the page, to a client asking as the browser will.
    asked = session.get(base, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert asked.headers["Content-Language"] == "zh-Hans"
    assert asked.headers["Vary"] == "Accept-Encoding, Accept-Language"
    english = session.get(base, headers={"Accept-Language": "en-US"})
    assert english.headers["Content-Language"] == "en"
    assert english.headers["ETag"] != asked.headers["ETag"]

    profile = tmp_path / "chromium"
    profile.mkdir()
    chinese = ("--lang=zh-CN", "--accept-lang=zh-CN")
    page = lxml.html.fromstring(browse(browser, profile, *chinese, "--dump-dom", base))
    assert page.get("lang") == "zh-Hans"
    assert text_of(page.find(".//h1")) == "Test merged feed"  # the config's title, as written
    headings = [text_of(heading) for heading in page.findall(".//h2")]
    assert headings == ["订阅源", "来源", "最新条目"]
    table = page.xpath("//h2[text()='来源']/following-sibling::table[1]")[0]
    assert [text_of(cell) for cell in table.findall(".//th")] == [
        "来源", "状态", "上次抓取", "条目", "订阅源", "最近的错误"
    ]  # fmt: skip
    rows = {
        text_of(row.find("td")): [text_of(cell) for cell in row.findall("td")]
        for row in table.xpath(".//tr[td]")
    }
    assert rows["半岛新闻 news"][1] == "正常" and rows["半岛新闻 news"][3] == "3"
    assert "年" in rows["半岛新闻 news"][2] and rows["半岛新闻 news"][2].endswith(" UTC")
    assert rows["Broken & Co broken"][1] == "错误" and "500" in rows["Broken & Co broken"][5]
    assert rows["paused paused"][1:3] == ["已停用", "从未"]
    assert "全部来源（合并）" in text_of(page.find(".//body"))

    screenshot = tmp_path / "index-zh.png"
    browse(browser, profile, *chinese, f"--screenshot={screenshot}", "--window-size=1200,900", base)
    assert png_size(screenshot) == (1200, 900)
    print(f"screenshot of the index page in Chinese: {screenshot}")
    assert daemon.stop()[0] == 0
