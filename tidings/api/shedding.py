"""Load shedding: past a cap on requests in progress, answer ``503`` at once.

Without it an overloaded node queues every request (in the ingest batcher, in
the event loop) until clients time out, and memory grows with the queue. A
rejection costs a fraction of a request, so the node keeps answering quickly,
and clients told ``Retry-After`` come back when there is room. ``/health`` is
exempt: an overloaded node is alive, and must not be restarted for being busy.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.api.problems import send_problem

_EXEMPT = frozenset({"/health", "/v1/health"})
RETRY_AFTER_S = 1


class SheddingMiddleware:
    def __init__(self, app: ASGIApp, max_in_progress: int) -> None:
        self.app = app
        self.max_in_progress = max_in_progress
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.max_in_progress:
            await send_problem(
                send,
                503,
                "The server is overloaded; retry after the Retry-After delay.",
                extra=((b"retry-after", str(RETRY_AFTER_S).encode()),),
            )
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
