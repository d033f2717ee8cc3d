"""A source's address is published without its secrets: user info never, query values
only when the user marks the address public."""

from __future__ import annotations

import json

import pytest
from feedworld import rsshub_feed, rsshub_item

from aggregator.outputs.redact import public_url, redact_text
from aggregator.service.index_page import index_page_for
from aggregator.service.status_report import status_report


@pytest.mark.parametrize(
    ("url", "public", "expected"),
    [
        ("https://alice:hunter2@host/feed", False, "https://host/feed"),
        ("https://alice:hunter2@host/feed", True, "https://host/feed"),
        ("https://host/feed?access_key=s3cr3t&format=rss", False,
         "https://host/feed?access_key=redacted&format=redacted"),
        ("https://host/feed?access_key=s3cr3t", True, "https://host/feed?access_key=s3cr3t"),
        ("https://host/feed?flag", False, "https://host/feed?flag"),
        ("https://host/feed", False, "https://host/feed"),
        ("http://[::1", False, None),
    ],
    ids=["user-info", "user-info-even-public", "query", "query-public", "bare-key", "plain",
         "unsplittable"],
)  # fmt: skip
def test_public_url(url: str, public: bool, expected: str | None) -> None:
    assert public_url(url, public) == expected


def test_errors_lose_the_secrets_of_the_urls_they_name() -> None:
    text = "too many redirects: https://u:p@host/a?token=x -> http://host/b"
    assert redact_text(text) == "too many redirects: https://host/a?token=redacted -> http://host/b"


def test_no_secret_of_a_source_url_is_published(feed_server, make_config, pipeline_for) -> None:
    feed_server.serve("/feed", rsshub_feed([rsshub_item(0, link="https://news.example/1")]))
    secret = feed_server.url("/feed").replace("://", "://alice:hunter2@") + "?access_key=s3cr3t"
    feed_server.serve("/broken", b"<html><body>no</body></html>", content_type="text/html")
    broken = feed_server.url("/broken") + "?token=t0k3n"
    config = make_config(
        [{"name": "private", "url": secret}, {"name": "broken", "url": broken}],
        feed={"max_items": 10},
    )
    pipeline = pipeline_for(config)
    pipeline.update_all()
    published = [
        path.read_text("utf-8") for path in config.paths.public.rglob("*") if path.is_file()
    ]
    states = {s.name: s for s in pipeline.store.source_states()}
    published.append(index_page_for(config, pipeline.store).decode("utf-8"))
    report = status_report(config.sources, states, {}, (), (), states["private"].last_fetch, True)
    published.append(json.dumps(report))
    assert any("access_key=redacted" in text for text in published)
    for text in published:
        for secret_text in ("hunter2", "alice", "s3cr3t", "t0k3n"):
            assert secret_text not in text
