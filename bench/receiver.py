"""The fast receiver every scenario delivers to (``python -m bench.receiver PORT``).

Answers ``200 {}`` to anything; records ``(path, webhook-id, arrival)`` for every
POST, with ``time.monotonic()`` (system-wide on Linux, so the benchmark process can
compare it with its own clock). ``GET /_arrivals`` hands the records over and forgets
them; ``GET /_count`` answers how many are held, ``GET /_reset`` drops them.
"""

from __future__ import annotations

import sys
import time

import uvloop
from aiohttp import web

OK = web.Response(text="{}", content_type="application/json")


def build() -> web.Application:
    arrivals: list[tuple[str, str, float]] = []

    async def notify(request: web.Request) -> web.Response:
        await request.read()
        arrivals.append((request.path, request.headers.get("webhook-id", ""), time.monotonic()))
        return web.Response(text="{}", content_type="application/json")

    async def live(_request: web.Request) -> web.Response:
        return web.Response(text="{}", content_type="application/json")

    async def take(_request: web.Request) -> web.Response:
        out = list(arrivals)
        arrivals.clear()
        return web.json_response(out)

    async def count(_request: web.Request) -> web.Response:
        return web.json_response(len(arrivals))

    async def reset(_request: web.Request) -> web.Response:
        held = len(arrivals)
        arrivals.clear()
        return web.json_response(held)

    app = web.Application()
    app.router.add_get("/_arrivals", take)
    app.router.add_get("/_count", count)
    app.router.add_get("/_reset", reset)
    app.router.add_get("/{tail:.*}", live)
    app.router.add_post("/{tail:.*}", notify)
    return app


def main() -> None:
    uvloop.install()
    web.run_app(build(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
