"""What a fetch sends, against a real local server: the session's headers, the validators
of the last poll, and cookies within a redirect chain (the request is prepared by us, not
by `Session.request`, see `fetch._get`)."""

from __future__ import annotations

from feedworld import rsshub_feed, rsshub_item
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.models import HttpState
from aggregator.sources.fetch import FetchLimits, fetch_source, make_session

FEED = rsshub_feed([rsshub_item(1)])


def test_headers_and_validators_are_sent(httpserver: HTTPServer) -> None:
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(FEED, headers={"ETag": '"v1"'}, content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(answer)
    limits = FetchLimits(user_agent="aggregator-test/1")
    session = make_session(limits)
    first = fetch_source(session, httpserver.url_for("/feed"), HttpState(), limits)
    assert first.body == FEED and first.http.etag == '"v1"'
    again = fetch_source(session, httpserver.url_for("/feed"), first.http, limits)
    assert again.not_modified
    for request in seen:
        assert request.headers["User-Agent"] == "aggregator-test/1"
        assert "application/rss+xml" in request.headers["Accept"]
        assert request.headers["Accept-Encoding"] == "gzip, deflate"
    assert "If-None-Match" not in seen[0].headers
    assert seen[1].headers["If-None-Match"] == '"v1"'


def test_a_cookie_set_by_a_redirect_is_sent_to_its_target(httpserver: HTTPServer) -> None:
    """Some hosts set a cookie and redirect to the feed, which they serve only with it."""
    httpserver.expect_request("/start").respond_with_response(
        Response(status=302, headers={"Location": "/feed", "Set-Cookie": "seen=1; Path=/"})
    )

    def feed(request: Request) -> Response:
        if request.cookies.get("seen") != "1":
            return Response("no cookie", status=403)
        return Response(FEED, content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(feed)
    limits = FetchLimits(user_agent="aggregator-test/1")
    result = fetch_source(make_session(limits), httpserver.url_for("/start"), HttpState(), limits)
    assert result.error is None and result.body == FEED
