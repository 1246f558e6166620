"""CPU cost per request of what the app observes (request id, access log, metrics).

    python -m bench.observe_cost [--requests 20000] [--repeats 7]

Drives the app in-process over a router with one route that answers at once, so
what is timed is the app's own layers; the best of several interleaved repeats is kept (the
least disturbed by other load on the machine). Compare the microseconds with the time
a real request takes (1 / req/s of ``python -m bench.servers``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tidings.api.application import App
from tidings.api.observe import Observer
from tidings.api.router import Router
from tidings.logs import configure_logging
from tidings.metrics import Metrics


async def _bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _answer(_request: Request) -> Response:
    return Response(b"{}", media_type="application/json")


@asynccontextmanager
async def _nothing() -> Any:
    yield


def _app(metrics: Metrics | None = None) -> App:
    router = Router()
    router.add("POST", "/queues/{queue_id}/messages", _answer)
    return App(router, _nothing, Observer(metrics), max_in_progress=512, max_body_bytes=1024)


async def _send(_message: Any) -> None:
    return None


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"{}"}


async def _run(app: Any, n: int) -> float:
    headers = [(b"x-api-key", b"k" * 43), (b"content-type", b"application/json")]
    started = time.perf_counter()
    for _ in range(n):
        scope = {"type": "http", "method": "POST", "path": "/v1/queues/q/messages"}
        scope["headers"] = headers
        await app(scope, _receive, _send)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    devnull = open(os.devnull, "w")  # noqa: SIM115
    variants = {
        "bare app": (_bare, None),
        "app, log off, metrics off": (_app(), "WARNING"),
        "app, log off, metrics on": (_app(Metrics()), "WARNING"),
        "app, text log, metrics off": (_app(), "text"),
        "app, json log, metrics off": (_app(), "json"),
        "app, json log, metrics on": (_app(Metrics()), "json"),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.repeats):
        for name, (app, log) in variants.items():
            if log == "WARNING":
                configure_logging("text", "WARNING")
            else:
                configure_logging(log or "text", "INFO")
            logging.getLogger().handlers[0].setStream(devnull)  # type: ignore[attr-defined]
            best[name] = min(best[name], asyncio.run(_run(app, args.requests)))
    base = best["bare app"]
    for name, us in best.items():
        print(f"  {name:<36} {us:6.1f} us/request  (+{us - base:5.1f} us over the bare app)")


if __name__ == "__main__":
    main()
