"""``Idempotency-Key`` on the publishing endpoints (SPEC §9).

A request with a key looks its key up once; a request without one costs nothing. The
answer to remember is written by the same group commit as the messages
(storage/idempotency.py), so whatever crashes, a retry with the key either finds
both or neither. The handler builds its answer before the commit: its bytes are what
is stored and what every replay sends.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from starlette.responses import Response

from tidings.api.context import Ctx
from tidings.api.middleware import header_text
from tidings.api.router import PREFIX
from tidings.domain.errors import BadRequest, Invalid, Unavailable
from tidings.domain.models import RememberedAnswer
from tidings.storage.idempotency import KeyTaken

HEADER = b"idempotency-key"
REPLAYED = "Idempotent-Replayed"
# 1..255 printable ASCII characters (SPEC §9).
KEY_PATTERN = "^[\\x20-\\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
# Another node's commit took the key between our look-up and our commit: look again.
_LOOKUPS = 2


@dataclass(frozen=True, slots=True)
class Keyed:
    """The key of this request, and how to make the answer it remembers."""

    org_id: str
    key: str
    fingerprint: str
    now_ms: int
    ttl_ms: int

    def answer(self, body: bytes) -> RememberedAnswer:
        return RememberedAnswer(
            self.org_id,
            self.key,
            self.fingerprint,
            200,
            body.decode(),
            self.now_ms,
            self.now_ms + self.ttl_ms,
        )


# Stores what the request publishes (with ``keyed``'s answer when given); answers the
# 200 body it committed.
Publish = Callable[[Keyed | None], Awaitable[bytes]]


def _key(ctx: Ctx) -> str | None:
    raw = header_text(ctx.request.scope, HEADER)
    if raw is None:
        return None
    if not _KEY.match(raw):
        raise BadRequest("The Idempotency-Key header must be 1 to 255 printable ASCII characters.")
    return raw


def _fingerprint(ctx: Ctx, body: bytes) -> str:
    """The endpoint (with or without /v1) and the body bytes."""
    path: str = ctx.request.scope["path"]
    if path.startswith(PREFIX + "/"):
        path = path[len(PREFIX) :]
    digest = hashlib.sha256(f"{ctx.request.method} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


async def publish_once(ctx: Ctx, publish: Publish) -> Response:
    """Run ``publish`` unless the key already answered this request (then replay it)."""
    key = _key(ctx)
    if key is None:
        return ctx.respond(msgspec.Raw(await publish(None)))
    body = await ctx.raw_body()
    keyed = Keyed(
        ctx.org_id,
        key,
        _fingerprint(ctx, body),
        ctx.clock.now_ms(),
        int(ctx.services.settings.idempotency_ttl_s * 1000),
    )
    with ctx.store.idempotency.hold(ctx.org_id, key):
        for _ in range(_LOOKUPS):
            found = await ctx.store.idempotency.find(ctx.org_id, key)
            if found is not None:
                return _replay(ctx, found, keyed.fingerprint)
            try:
                return ctx.respond(msgspec.Raw(await publish(keyed)))
            except KeyTaken:
                continue
    raise Unavailable("The Idempotency-Key kept changing hands; retry.")


def _replay(ctx: Ctx, found: RememberedAnswer, fingerprint: str) -> Response:
    if found.fingerprint != fingerprint:
        raise Invalid(
            "This Idempotency-Key was used with a different request (endpoint or body);"
            " use a new key for a new request."
        )
    response = ctx.respond(msgspec.Raw(found.body.encode()), {REPLAYED: "true"})
    response.status_code = found.status
    return response
