"""ASGI middleware for the conventions every endpoint shares (SPEC §1).

It answers ``406`` and ``415`` before routing, and reads the request body once with
a hard cap (``413`` as soon as the cap is passed, whatever ``Content-Length`` said),
then replays it to the app.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.problems import send_problem

# Paths that answer without JSON negotiation: the console and the interactive docs
# page (HTML) and their assets (api/console.py).
_EXEMPT = frozenset({"/docs", "/v1/docs", "/console", "/v1/console"})
_EXEMPT_UNDER = ("/docs/", "/v1/docs/", "/console/", "/v1/console/")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
BODY_KEY = "tidings.body"
# An over-limit body up to this size is read to its end before the 413 (see _too_large).
_DRAIN_BYTES = 1 << 20
_UNREADABLE = "The request body could not be read: malformed HTTP framing, or the client left."


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _exempt(path: str) -> bool:
    return path in _EXEMPT or path.startswith(_EXEMPT_UNDER)


def accepts_json(accept: bytes | None) -> bool:
    if accept is None:
        return True
    for part in accept.decode("latin-1").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("application/json", "*/*", "application/*", "") or media.endswith("+json"):
            return True
    return False


def is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.decode("latin-1").split(";", 1)[0].strip().lower()
    return media == "application/json"


class ConventionsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if not accepts_json(_header(headers, b"accept")):
            await send_problem(send, 406, "This API answers application/json only.")
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        if body and not is_json(_header(headers, b"content-type")):
            await send_problem(
                send, 415, "Send the request body as Content-Type: application/json."
            )
            return
        scope[BODY_KEY] = body  # handlers read it from here, skipping a second stream pass
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        declared = _header(scope["headers"], b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            clean = int(declared) <= _DRAIN_BYTES and await _discard(receive, _DRAIN_BYTES)
            await self._too_large(send, clean)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # granian also reports a body it cannot decode (bad chunked framing,
                # Content-Length with Transfer-Encoding) as a disconnect; without an
                # answer it would send a 500. If the client is really gone, nobody reads
                # this 400 and no harm is done.
                await send_problem(send, 400, _UNREADABLE, close=True)
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                more = message.get("more_body", False)
                await self._too_large(send, not more or await _discard(receive, _DRAIN_BYTES))
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send, clean: bool) -> None:
        """413. A modest excess is read and dropped first (``clean``: all of it was),
        so the client finishes sending, reads the answer and may reuse the connection;
        otherwise the answer says ``Connection: close`` (servers close a connection
        with a body left unread, and a client reusing it would fail)."""
        detail = f"The request body is larger than {self.max_body_bytes} bytes."
        await send_problem(send, 413, detail, close=not clean)


async def _discard(receive: Receive, limit: int) -> bool:
    """Read the rest of the body and drop it; False when it passed ``limit`` bytes."""
    read = 0
    while read <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


def _replay(body: bytes, original: Receive) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:  # the body is spent: what remains is the client going away
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
