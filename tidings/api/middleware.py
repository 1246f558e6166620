"""The conventions every endpoint shares (SPEC §1), checked by the app before routing
(``api/application.py``): ``406`` and ``415``, and the request body read once with
a hard cap (``413`` as soon as the cap is passed, whatever ``Content-Length`` said).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from starlette.responses import Response
from starlette.types import Receive, Scope

from tidings.api import problems

# Paths that answer without JSON negotiation: the console and the interactive docs
# page (HTML) and their assets (api/console.py).
_EXEMPT = frozenset({"/docs", "/v1/docs", "/console", "/v1/console"})
_EXEMPT_UNDER = ("/docs/", "/v1/docs/", "/console/", "/v1/console/")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
BODY_KEY = "tidings.body"
# An over-limit body up to this size is read to its end before the 413 (see _too_large).
_DRAIN_BYTES = 1 << 20
_UNREADABLE = "The request body could not be read: malformed HTTP framing, or the client left."


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def header_text(scope: Scope, name: bytes) -> str | None:
    """A request header as Starlette's ``request.headers.get`` reads it (the first of
    its name, latin-1), without building a headers object."""
    value = header(scope["headers"], name)
    return None if value is None else value.decode("latin-1")


def exempt(path: str) -> bool:
    return path in _EXEMPT or path.startswith(_EXEMPT_UNDER)


# The ranges that admit application/json, most specific first (RFC 9110 12.5.1: the
# most specific range that matches sets the quality, so "application/json;q=0, */*"
# refuses JSON). "+json" types do not admit it (SPEC §1: application/json or */*).
_SPECIFICITY = {"application/json": 0, "application/*": 1, "*/*": 2}


# Cached: clients send a few spellings of these headers, and parsing one is a decode,
# a split and a strip or two per request. Bounded (the values are the client's).
@lru_cache(maxsize=256)
def accepts_json(accept: bytes | None) -> bool:
    if accept is None or not accept.strip():
        return True
    best: tuple[int, bool] | None = None  # (specificity, acceptable) of the best match
    for part in accept.decode("latin-1").split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        rank = _SPECIFICITY.get(media)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, _quality(params) > 0)
    return best is not None and best[1]


def _quality(params: list[str]) -> float:
    """The ``q`` of a media range (1 when absent or malformed: a client that wrote a
    range meant to accept it)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 1.0
    return 1.0


@lru_cache(maxsize=256)
def is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.decode("latin-1").split(";", 1)[0].strip().lower()
    return media == "application/json"


async def read_body(
    receive: Receive, headers: Iterable[tuple[bytes, bytes]], max_bytes: int
) -> bytes | Response:
    """The whole body, or the problem that answers instead (413, 400)."""
    declared = header(headers, b"content-length")
    length = int(declared) if declared is not None and declared.isdigit() else None
    if length is not None and length > max_bytes:
        clean = length <= _DRAIN_BYTES and await _discard(receive, _DRAIN_BYTES)
        return _too_large(max_bytes, clean)
    message = await receive()
    if message["type"] == "http.request":
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):  # the whole body in one message
            return body if len(body) <= max_bytes else _too_large(max_bytes, True)
        # granian sends a Content-Length body, then an empty last message: with all
        # the declared bytes the body is whole (granian's parser holds the framing),
        # and waiting for that message was one more round trip through the server
        # per POST. Transfer-Encoding frames the body instead when both are sent.
        if len(body) == length and header(headers, b"transfer-encoding") is None:
            return body
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            # granian also reports a body it cannot decode (bad chunked framing,
            # Content-Length with Transfer-Encoding) as a disconnect; without an
            # answer it would send a 500. If the client is really gone, nobody reads
            # this 400 and no harm is done.
            return problems.problem(400, _UNREADABLE, headers={"Connection": "close"})
        chunk = message.get("body", b"")
        size += len(chunk)
        more = message.get("more_body", False)
        if size > max_bytes:
            return _too_large(max_bytes, not more or await _discard(receive, _DRAIN_BYTES))
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)
        message = await receive()


def _too_large(max_bytes: int, clean: bool) -> Response:
    """413. A modest excess is read and dropped first (``clean``: all of it was), so
    the client finishes sending, reads the answer and may reuse the connection;
    otherwise the answer says ``Connection: close`` (servers close a connection with
    a body left unread, and a client reusing it would fail)."""
    detail = f"The request body is larger than {max_bytes} bytes."
    return problems.problem(413, detail, headers=None if clean else {"Connection": "close"})


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
