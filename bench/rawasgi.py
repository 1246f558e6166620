"""The "no framework" baseline: a bare ASGI app, served by granian with the settings
``tidings serve`` uses (see ``SERVE``). It reads the body, decodes it with the same
msgspec model and answers a same-shaped JSON with links, but stores nothing."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from tidings.api.wire import CreateMessage
from tidings.domain.ids import new_id

_decoder = msgspec.json.Decoder(CreateMessage)
_encoder = msgspec.json.Encoder()
_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = _answer(scope["path"], body) if scope["method"] == "POST" else _read(scope["path"])
    headers = [*_HEADERS, (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def _answer(path: str, body: bytes) -> bytes:
    created = _decoder.decode(body)
    message_id = new_id()
    base = "http://127.0.0.1" + path
    return _encoder.encode(
        {
            "message": {"id": message_id, "name": created.name},
            "_links": {"self": {"href": f"{base}/{message_id}"}, "queue": {"href": base}},
        }
    )


# What GET /v1/queues/{id} answers, field for field (bench.get's baseline).
_QUEUE = {
    "name": "bench", "created_at": "2026-12-05T20:00:00.000Z", "schema": None,
    "listeners_count": 1, "messages_count": 0,
}  # fmt: skip


def _read(path: str) -> bytes:
    """A same-shaped queue read: the id from the path, links, encoded per request."""
    queue_id = path.rsplit("/", 1)[-1]
    base = "http://127.0.0.1" + path
    return _encoder.encode(
        {
            "queue": {"id": queue_id, **_QUEUE},
            "_links": {"self": {"href": base}, "messages": {"href": f"{base}/messages"}},
        }
    )


def command(port: int, workers: int = 1) -> list[str]:
    """granian as ``tidings.runtime.serving`` runs it: one worker (unless told), uvloop,
    HTTP auto, no access log."""
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop",
        "--http", "auto", "--no-ws", "--workers", str(workers), "--log-level", "warning",
        "--no-access-log", "--host", "127.0.0.1", "--port", str(port), "bench.rawasgi:app",
    ]  # fmt: skip
