"""A bug in the app's own layers still answers a JSON 500 with a request id, unless an
answer had already started (then nothing more is sent)."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any

from tidings.api.application import App
from tidings.api.observe import Observer
from tidings.api.router import Match, Router


class _BrokenRouter(Router):
    def match(self, path: str) -> Match | None:
        raise RuntimeError("a bug")


@asynccontextmanager
async def _nothing() -> Any:
    yield


async def _call(router: Router, fail_on_body: bool = False) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if fail_on_body and message["type"] == "http.response.body":
            raise RuntimeError("the client left")
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1/queues", "headers": []}
    app = App(router, _nothing, Observer(), max_in_progress=10, max_body_bytes=1024)
    await app(scope, receive, send)
    return sent


async def test_an_unhandled_error_answers_a_json_500() -> None:
    start, body = await _call(_BrokenRouter())
    assert start["status"] == 500
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert len(headers[b"x-request-id"]) == 16
    assert json.loads(body["body"]) == {"title": "Internal Server Error", "status": 500}


async def test_an_error_after_the_answer_started_sends_nothing_more() -> None:
    sent = await _call(Router(), fail_on_body=True)
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert sent[0]["status"] == 404
