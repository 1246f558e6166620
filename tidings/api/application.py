"""The ASGI application object: the lifespan protocol, the middleware chain and dispatch
(the last-resort 500 is the outermost middleware's, ``api/observe.py``).

It replaces Starlette's application and router stack (error middleware, exception
middleware, regex router, request/response wrappers per layer), which cost more
than the handlers on the ingest path (docs/benchmarks.md). Handlers still get a
Starlette ``Request`` and return a Starlette ``Response``: those are thin and well
made; only the layers between server and handler were costly.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.api import problems
from tidings.api.observe import ROUTE_KEY
from tidings.api.router import Router

log = logging.getLogger("tidings.api")
Lifespan = Callable[[], AbstractAsyncContextManager[None]]
Wrap = Callable[[ASGIApp], ASGIApp]


class App:
    """``middleware`` wrap the dispatcher, first = outermost."""

    def __init__(self, router: Router, lifespan: Lifespan, middleware: list[Wrap]) -> None:
        self.router = router
        self.state = SimpleNamespace()
        self._lifespan = lifespan
        inner: ASGIApp = self._dispatch
        for wrap in reversed(middleware):
            inner = wrap(inner)
        self._http = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._run_lifespan(receive, send)
        elif scope["type"] == "websocket":  # no WebSocket endpoints: refuse the handshake
            await send({"type": "websocket.close", "code": 1008})

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.router.match(scope["path"])
        if found is None:
            response = problems.problem(404, "No such path.")
        else:
            scope[ROUTE_KEY] = found.route.template
            method = scope["method"]
            handler = found.route.handlers.get("GET" if method == "HEAD" else method)
            if handler is None:
                response = problems.problem(
                    405,
                    "This method is not allowed on this path.",
                    headers={"Allow": found.route.allow},
                )
            else:
                scope["path_params"] = found.params
                try:
                    response = await handler(Request(scope, receive))
                except Exception as exc:
                    response = problems.from_error(exc)
        if scope["method"] == "HEAD":  # the headers of a GET (Content-Length included)
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": response.raw_headers})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return
        await response(scope, receive, send)

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        started = False
        await receive()  # lifespan.startup
        try:
            async with self._lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except BaseException:
            kind = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{kind}.failed", "message": traceback.format_exc()})
            raise
        await send({"type": "lifespan.shutdown.complete"})
