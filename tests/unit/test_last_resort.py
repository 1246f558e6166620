"""A bug in a layer of the app still answers a JSON 500 with a request id, unless an
answer had already started (then nothing more is sent)."""

from __future__ import annotations

import json
from typing import Any

from tidings.api.observe import ObserveMiddleware


async def _call(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1/queues", "headers": []}
    await ObserveMiddleware(app)(scope, receive, send)
    return sent


async def test_an_unhandled_error_answers_a_json_500() -> None:
    async def broken(_scope: Any, _receive: Any, _send: Any) -> None:
        raise RuntimeError("a bug")

    start, body = await _call(broken)
    assert start["status"] == 500
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert len(headers[b"x-request-id"]) == 16
    assert json.loads(body["body"]) == {"title": "Internal Server Error", "status": 500}


async def test_an_error_after_the_answer_started_sends_nothing_more() -> None:
    async def half(_scope: Any, _receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("a bug")

    sent = await _call(half)
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert sent[0]["status"] == 200
