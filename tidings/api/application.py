"""The ASGI application object: the lifespan protocol and one function per request.

Every HTTP request runs through :meth:`App._http`, in this order: a request id, load
shedding (``503``), the conventions of SPEC §1 (``406``; the body read once with a
hard cap, ``413``; ``415``), routing (``404``, ``405``), the handler, then one
``send`` of the answer with its ``X-Request-Id``, and the access log and metrics.

It replaces Starlette's application and router stack (error middleware, exception
middleware, regex router, request/response wrappers per layer), and then our own
chain of three middleware (observe, shedding, conventions), each a coroutine layer
with a wrapped ``send`` or ``receive``: together they cost more than the handlers on
the ingest path (docs/benchmarks.md). Handlers still get a Starlette ``Request`` and
return a Starlette ``Response`` (its status, headers and body are sent from here).
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tidings.api import problems
from tidings.api.middleware import (
    BODY_KEY,
    BODY_METHODS,
    accepts_json,
    exempt,
    header,
    is_json,
    read_body,
)
from tidings.api.observe import ROUTE_KEY, Observer, incoming_id
from tidings.api.router import Router
from tidings.logs import flush_access, request_id

log = logging.getLogger("tidings.api")
Lifespan = Callable[[], AbstractAsyncContextManager[None]]

# Load shedding: past a cap on requests in progress, answer 503 at once. Without it
# an overloaded node queues every request (in the ingest batcher, in the event loop)
# until clients time out, and memory grows with the queue; a rejection costs a
# fraction of a request, and clients told Retry-After come back when there is room.
# /health is exempt: an overloaded node is alive, and must not be restarted for it.
_NOT_SHED = frozenset({"/health", "/v1/health"})
RETRY_AFTER_S = 1
_OVERLOADED = "The server is overloaded; retry after the Retry-After delay."
_NOT_JSON = "Send the request body as Content-Type: application/json."
_JSON_ONLY = "This API answers application/json only."


def _pretty(query: bytes) -> bool:
    return b"pretty" in query and ("pretty", ["true"]) in parse_qs(query.decode("latin-1")).items()


class App:
    def __init__(
        self,
        router: Router,
        lifespan: Lifespan,
        observer: Observer,
        max_in_progress: int,
        max_body_bytes: int,
    ) -> None:
        self.router = router
        self.state = SimpleNamespace()
        self.observer = observer
        self.max_in_progress = max_in_progress
        self.max_body_bytes = max_body_bytes
        self.in_progress = 0
        self._lifespan = lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._run_lifespan(receive, send)
        elif kind == "websocket":  # no WebSocket endpoints: refuse the handshake
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Not a secret. 16 hex digits; bytes.hex, not a ``:016x`` format spec (parsed on
        # every use, ~1,000 machine instructions).
        rid = incoming_id(scope["headers"]) or random.getrandbits(64).to_bytes(8, "big").hex()
        token = request_id.set(rid)
        status = 0  # no answer started yet
        started = time.perf_counter()
        try:
            response = await self._answer(scope, receive)
            if response.status_code >= 400 and _pretty(scope.get("query_string", b"")):
                response = problems.indented(response)  # handlers indent their own 200s
            status = response.status_code
            headers = response.raw_headers
            headers.append((b"x-request-id", rid.encode("ascii")))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            # HEAD: the headers of a GET (Content-Length included), no body.
            body = b"" if scope["method"] == "HEAD" else response.body
            await send({"type": "http.response.body", "body": body})
        except Exception:
            # The last resort (handlers' errors were mapped already): a bug here still
            # answers a JSON 500, when no answer had started.
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if status == 0:
                response = problems.problem(500)
                headers = [*response.raw_headers, (b"x-request-id", rid.encode("ascii"))]
                status = 500
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": response.body})
        finally:
            self.observer.record(scope, status, time.perf_counter() - started)
            request_id.reset(token)

    async def _answer(self, scope: Scope, receive: Receive) -> Response:
        path: str = scope["path"]
        if path in _NOT_SHED:
            if not accepts_json(header(scope["headers"], b"accept")):
                return problems.problem(406, _JSON_ONLY)
            return await self._route(scope, receive)
        if self.in_progress >= self.max_in_progress:
            return problems.problem(503, _OVERLOADED, headers={"Retry-After": str(RETRY_AFTER_S)})
        self.in_progress += 1
        try:
            if exempt(path):  # HTML and assets: no JSON negotiation
                return await self._route(scope, receive)
            headers = scope["headers"]
            if not accepts_json(header(headers, b"accept")):
                return problems.problem(406, _JSON_ONLY)
            if scope["method"] in BODY_METHODS:
                body = await read_body(receive, headers, self.max_body_bytes)
                if isinstance(body, Response):
                    return body
                if body and not is_json(header(headers, b"content-type")):
                    return problems.problem(415, _NOT_JSON)
                scope[BODY_KEY] = body  # handlers read it from here (Ctx.raw_body)
            return await self._route(scope, receive)
        finally:
            self.in_progress -= 1

    async def _route(self, scope: Scope, receive: Receive) -> Response:
        found = self.router.match(scope["path"])
        if found is None:
            return problems.problem(404, "No such path.")
        scope[ROUTE_KEY] = found.route.template
        method = scope["method"]
        handler = found.route.handlers.get("GET" if method == "HEAD" else method)
        if handler is None:
            return problems.problem(
                405,
                "This method is not allowed on this path.",
                headers={"Allow": found.route.allow},
            )
        scope["path_params"] = found.params
        try:
            return await handler(Request(scope, receive))
        except Exception as exc:
            return problems.from_error(exc)

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        started = False
        await receive()  # lifespan.startup
        try:
            async with self._lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except BaseException:
            flush_access()
            kind = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{kind}.failed", "message": traceback.format_exc()})
            raise
        flush_access()  # the last access lines, before the server stops the loop
        await send({"type": "lifespan.shutdown.complete"})
