"""Where Prometheus reads ``/metrics``: on the API port behind a bearer token, and/or
on a separate address (for a private interface or a sidecar) without one.

The separate listener is a tiny aiohttp site in the same event loop (aiohttp is
already our HTTP client), so it also serves ``tidings worker``, which has no API.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from starlette.requests import Request
from starlette.responses import Response

from tidings.api import problems
from tidings.config import parse_address
from tidings.metrics import CONTENT_TYPE, Metrics
from tidings.storage.database import Database, StorageError

log = logging.getLogger("tidings.metrics")


async def _page(metrics: Metrics, db: Database) -> bytes:
    try:
        await metrics.refresh_gauges(db)
    except StorageError as exc:  # serve the counters anyway; the gauges keep old values
        log.warning("could not refresh metric gauges: %s", exc)
    return metrics.render()


def token_page(
    metrics: Metrics, token: str, db: Callable[[], Database]
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics`` on the API port; ``401`` without ``Authorization: Bearer <token>``.

    ``db`` is a getter: the database opens in the lifespan, after routing is built."""
    expected = f"Bearer {token}".encode()

    async def scrape(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return problems.problem(
                401,
                "Send Authorization: Bearer <TIDINGS_METRICS_TOKEN>.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(await _page(metrics, db()), media_type=CONTENT_TYPE)

    return scrape


async def start_listener(metrics: Metrics, address: str, db: Database) -> web.AppRunner:
    """Serve ``GET /metrics`` on ``address`` until the returned runner is cleaned up."""

    async def scrape(_request: web.Request) -> web.Response:
        body = await _page(metrics, db)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, port = parse_address(address)
    await web.TCPSite(runner, host, port).start()
    log.info("metrics at http://%s/metrics", address)
    return runner
