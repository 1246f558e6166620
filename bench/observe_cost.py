"""CPU cost per request of the observe middleware (request id, access log, metrics).

    python -m bench.observe_cost [--requests 20000] [--repeats 7]

Drives ``ObserveMiddleware`` in-process over an app that answers at once, so what is
timed is the middleware alone; the best of several interleaved repeats is kept (the
least disturbed by other load on the machine). Compare the microseconds with the time
a real request takes (1 / req/s of ``python -m bench.servers``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from typing import Any

from tidings.api.observe import ObserveMiddleware
from tidings.logs import configure_logging
from tidings.metrics import Metrics


class _Route:
    path = "/v1/queues/{queue_id}/messages"


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _Route
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(_message: Any) -> None:
    return None


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


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
        "bare app": (_app, None),
        "middleware, log off, metrics off": (ObserveMiddleware(_app), "WARNING"),
        "middleware, log off, metrics on": (ObserveMiddleware(_app, Metrics()), "WARNING"),
        "middleware, text log, metrics off": (ObserveMiddleware(_app), "text"),
        "middleware, json log, metrics off": (ObserveMiddleware(_app), "json"),
        "middleware, json log, metrics on": (ObserveMiddleware(_app, Metrics()), "json"),
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
