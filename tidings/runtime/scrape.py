"""``/metrics`` on ``TIDINGS_METRICS_ADDRESS``: a separate listener (a private interface,
a sidecar) without the API port's token, in any process, ``tidings worker`` included.

A tiny aiohttp site in the same event loop (aiohttp's server: small, and already a
dependency of the test receivers and bench tools as well).
"""

from __future__ import annotations

import logging

from aiohttp import web

from tidings.config import parse_address
from tidings.metrics import CONTENT_TYPE, Metrics
from tidings.storage.database import Database

log = logging.getLogger("tidings.metrics")


async def start_listener(
    metrics: Metrics, address: str, db: Database, *, shared: bool = False
) -> web.AppRunner:
    """Serve ``GET /metrics`` on ``address`` until the returned runner is cleaned up.

    ``shared``: every API worker of a ``serve --workers N`` binds the address
    (``SO_REUSEPORT``); any of them answers for the whole node."""

    async def scrape(_request: web.Request) -> web.Response:
        return web.Response(body=await metrics.page(db), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, port = parse_address(address)
    await web.TCPSite(runner, host, port, reuse_port=shared or None).start()
    log.info("metrics at http://%s/metrics", address)
    return runner
