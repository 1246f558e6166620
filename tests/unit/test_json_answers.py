"""Every JSON answer of the API is built by ``context.respond``; its fast path must send
what Starlette's ``Response(..., media_type="application/json")`` sent, header for header
(clients and the contract tests see these bytes)."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from tidings.api.context import respond


def _request(query: bytes = b"") -> Request:
    return Request({"type": "http", "query_string": query, "headers": [], "path": "/v1/x"})


@pytest.mark.parametrize("status", [200, 201, 202])
def test_a_json_answer_is_what_starlette_would_send(status: int) -> None:
    body = {"queue": {"id": "q1", "name": "caf\u00e9"}, "_links": {}}
    got = respond(_request(), body, status)
    want = Response(got.body, status_code=status, media_type="application/json")
    assert got.body == b'{"queue":{"id":"q1","name":"caf\xc3\xa9"},"_links":{}}'
    assert (got.status_code, got.raw_headers) == (want.status_code, want.raw_headers)
    assert got.headers["content-type"] == "application/json"
    got.headers.update({"X-RateLimit-Limit": "10"})  # as the endpoint wrapper adds them
    assert got.raw_headers[-1] == (b"x-ratelimit-limit", b"10")


def test_extra_headers_and_pretty_answers_keep_their_headers() -> None:
    got = respond(_request(b"pretty=true"), {"a": 1}, 200, {"X-Total-Count": "3"})
    assert got.body == b'{\n  "a": 1\n}'
    assert got.raw_headers == [
        (b"x-total-count", b"3"),
        (b"content-length", str(len(got.body)).encode()),
        (b"content-type", b"application/json"),
    ]
    got.headers.update({"X-RateLimit-Limit": "10"})  # as the endpoint wrapper adds them
    assert (b"x-ratelimit-limit", b"10") in got.raw_headers
