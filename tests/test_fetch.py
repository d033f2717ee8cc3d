"""What a fetch sends, against a real local server: the session's headers, the validators
of the last poll, and cookies within a redirect chain (the request is prepared by us, not
by `Session.request`, see `fetch._get`). And what an answer asks of the next poll, as
tables: Cache-Control's max-age and Retry-After (pure functions, read directly), and which
status each header is read from and which redirects are adopted (through a real server)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import pytest
from feedworld import rsshub_feed, rsshub_item
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.models import FetchResult, HttpState
from aggregator.sources import fetch as fetch_module
from aggregator.sources.fetch import FetchLimits, _max_age, _retry_after, fetch_source, make_session

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


# -- the HTTP caching rules: what an answer's headers and status ask of the next poll ---------

MAX_AGE = [  # (id, Cache-Control, seconds the answer may be reused: a floor for the next poll)
    ("absent", None, None),
    ("empty", "", None),
    ("max-age", "max-age=600", 600),
    ("after public", "public, max-age=600", 600),
    ("no space after comma", "private,max-age=600", 600),
    ("upper case", "MAX-AGE=600", 600),
    ("quoted", 'max-age="600"', 600),
    ("spaces around =", "max-age = 600", 600),
    ("zero", "max-age=0", 0),
    ("among other directives", "stale-while-revalidate=60, max-age=300", 300),
    ("no-store wins", "no-store, max-age=600", None),
    ("no-store after it wins", "max-age=600 , no-store", None),
    ("no-cache alone", "no-cache", None),
    ("no-cache keeps max-age", "no-cache, max-age=600", 600),
    ("s-maxage is for shared caches", "s-maxage=600", None),
    ("max-age beside s-maxage", "s-maxage=600, max-age=60", 60),
    ("max-stale is not max-age", "max-stale=600", None),
    ("another directive's suffix", "x-max-age=600", None),
    ("negative", "max-age=-1", None),
    ("not a number", "max-age=soon", None),
]


@pytest.mark.parametrize(
    ("header", "expected"), [c[1:] for c in MAX_AGE], ids=[c[0] for c in MAX_AGE]
)
def test_max_age_from_cache_control(header: str | None, expected: int | None) -> None:
    assert _max_age(header) == expected


NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # Wed, 02 Dec 2026 10:00:00 GMT
RETRY_AFTER = [  # (id, Retry-After, seconds to wait, counted from NOW)
    ("absent", None, None),
    ("empty", "", None),
    ("seconds", "120", 120),
    ("seconds with spaces", " 120 ", 120),
    ("zero", "0", 0),
    ("negative", "-5", None),
    ("fraction", "1.5", None),
    ("words", "soon", None),
    ("HTTP-date", "Wed, 02 Dec 2026 11:00:00 GMT", 3600),
    ("HTTP-date with offset", "Wed, 02 Dec 2026 12:00:00 +0100", 3600),
    ("HTTP-date without zone is GMT", "Wed, 02 Dec 2026 11:00:00", 3600),
    ("obsolete RFC 850 date", "Wednesday, 02-Dec-26 11:00:00 GMT", 3600),
    ("obsolete asctime date", "Wed Dec  2 11:00:00 2026", 3600),
    ("HTTP-date in the past", "Wed, 02 Dec 2026 09:00:00 GMT", 0),
    ("ISO 8601 is no HTTP-date", "2026-12-02T11:00:00Z", None),
]


class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        return NOW.astimezone(tz)


@pytest.mark.parametrize(
    ("header", "expected"), [c[1:] for c in RETRY_AFTER], ids=[c[0] for c in RETRY_AFTER]
)
def test_retry_after_in_seconds_or_as_a_date(
    header: str | None, expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_module, "datetime", _FrozenClock)
    assert _retry_after(header) == expected


ANSWERS = [  # (id, status, headers, max_age, retry_after) of one answer, through a real server
    ("200 with max-age", 200, {"Cache-Control": "max-age=600"}, 600, None),
    ("304 renews max-age", 304, {"Cache-Control": "max-age=600"}, 600, None),
    ("Expires is not read", 200, {"Expires": "Wed, 01 Dec 2100 00:00:00 GMT"}, None, None),
    ("503 Retry-After", 503, {"Retry-After": "120"}, None, 120),
    ("429 Retry-After", 429, {"Retry-After": "7200"}, None, 7200),
    ("500 Retry-After is read too", 500, {"Retry-After": "120"}, None, 120),
    ("200 Retry-After is not read", 200, {"Retry-After": "120"}, None, None),
    ("503 with both", 503, {"Retry-After": "60", "Cache-Control": "max-age=600"}, 600, 60),
]


@pytest.mark.parametrize(
    ("status", "headers", "max_age", "retry_after"),
    [c[1:] for c in ANSWERS],
    ids=[c[0] for c in ANSWERS],
)
def test_what_an_answer_asks_of_the_next_poll(
    httpserver: HTTPServer,
    status: int,
    headers: dict[str, str],
    max_age: int | None,
    retry_after: int | None,
) -> None:
    body = FEED if status == 200 else b""
    httpserver.expect_request("/feed").respond_with_response(
        Response(body, status=status, headers=headers, content_type="application/rss+xml")
    )
    result = fetch_path(httpserver, "/feed")
    assert (result.status, result.max_age, result.retry_after) == (status, max_age, retry_after)


REDIRECTS = [  # (id, statuses of the hops before the feed, status of the feed, URL adopted)
    ("no redirect", [], 200, False),
    ("301 adopted", [301], 200, True),
    ("308 adopted", [308], 200, True),
    ("302 not adopted", [302], 200, False),
    ("307 not adopted", [307], 200, False),
    ("301 then 308 adopted", [301, 308], 200, True),
    ("301 then 302 not adopted", [301, 302], 200, False),
    ("302 then 301 not adopted", [302, 301], 200, False),
    ("301 to a 304 adopted", [301], 304, True),
    # Reported whatever the end; the poller adopts it only from a good answer (test_update.py).
    ("301 to a 404 reported", [301], 404, True),
]


@pytest.mark.parametrize(
    ("hops", "end", "adopted"), [c[1:] for c in REDIRECTS], ids=[c[0] for c in REDIRECTS]
)
def test_only_permanent_redirects_are_adopted(
    httpserver: HTTPServer, hops: list[int], end: int, adopted: bool
) -> None:
    for index, status in enumerate(hops):
        target = f"/hop{index + 1}" if index + 1 < len(hops) else "/feed"
        httpserver.expect_request(f"/hop{index}").respond_with_response(
            Response(status=status, headers={"Location": target})
        )
    httpserver.expect_request("/feed").respond_with_response(
        Response(FEED if end == 200 else b"", status=end, content_type="application/rss+xml")
    )
    result = fetch_path(httpserver, "/hop0" if hops else "/feed")
    assert result.url == httpserver.url_for("/feed") and result.status == end
    assert result.permanent_redirect == (httpserver.url_for("/feed") if adopted else None)


def fetch_path(httpserver: HTTPServer, path: str) -> FetchResult:
    limits = FetchLimits(user_agent="aggregator-test/1")
    return fetch_source(make_session(limits), httpserver.url_for(path), HttpState(), limits)


def test_a_permanent_redirect_that_adds_credentials_is_followed_not_adopted(
    httpserver: HTTPServer,
) -> None:
    """Adopted, `user:secret@` would be shown in the log and `sources` and sent with every
    poll; a source configured with them keeps them through a move on its own host."""
    port = httpserver.port
    httpserver.expect_request("/start").respond_with_response(
        Response(status=301, headers={"Location": f"http://user:secret@127.0.0.1:{port}/feed"})
    )
    httpserver.expect_request("/moved").respond_with_response(
        Response(status=301, headers={"Location": f"http://user:secret@127.0.0.1:{port}/feed"})
    )
    httpserver.expect_request("/feed").respond_with_response(
        Response(FEED, content_type="application/rss+xml")
    )
    limits = FetchLimits(user_agent="aggregator-test/1")
    session = make_session(limits)
    added = fetch_source(session, httpserver.url_for("/start"), HttpState(), limits)
    assert added.body == FEED and added.permanent_redirect is None
    configured = f"http://user:secret@127.0.0.1:{port}/moved"
    kept = fetch_source(session, configured, HttpState(), limits)
    assert kept.permanent_redirect == f"http://user:secret@127.0.0.1:{port}/feed"


@pytest.mark.parametrize("location", [None, ""], ids=["no Location", "an empty Location"])
def test_a_redirect_with_nowhere_to_go_says_so(httpserver: HTTPServer, location) -> None:
    headers = {} if location is None else {"Location": location}
    httpserver.expect_request("/feed").respond_with_response(Response(status=301, headers=headers))
    result = fetch_path(httpserver, "/feed")
    assert result.error == "HTTP 301 Moved Permanently with no Location to follow"
