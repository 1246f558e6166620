"""Reads: ``GET /v1/queues/{id}`` under ``wrk`` at 64 connections (issue 18).

A one-row read through authentication, routing and the store, against ``tidings
serve`` as a user starts it with one listener (the engine idle). Same-run baseline,
interleaved round by round: the raw ASGI app (``bench.rawasgi``) answering a
same-shaped queue JSON on the same server settings. The rate limit is off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench import ingest, wrk
from bench.api import Api
from bench.procs import API_KEY, database, load, receiver, tidings
from bench.stats import median

CONNECTIONS = 64
HEADERS = {"X-API-KEY": API_KEY}


@asynccontextmanager
async def queue_url(kind: str, recv_url: str, *args: str) -> AsyncIterator[str]:
    """A running ``tidings serve`` and the URL of one of its queues (with a listener)."""
    async with database(kind) as url, tidings(url, *args) as server:
        async with aiohttp.ClientSession() as session:
            api = Api(server.url, session)
            queue_id = await api.queue()
            await api.listener(queue_id, recv_url, "fast")
        yield f"{server.url}/v1/queues/{queue_id}"


async def measure(kind: str, recv_url: str, seconds: float) -> wrk.WrkResult:
    async with queue_url(kind, recv_url) as target:
        await wrk.get(target, HEADERS, CONNECTIONS, 1)  # warm-up
        return await wrk.get(target, HEADERS, CONNECTIONS, seconds)


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    seconds, rounds = (5.0, 2) if quick else (10.0, 3)
    rows = []
    async with receiver() as recv, ingest.raw_asgi() as raw:
        for kind in kinds:
            subjects, baselines, ratios, loads = [], [], [], []
            for _ in range(rounds):
                base = await wrk.get(f"{raw.url}/v1/queues/q", HEADERS, CONNECTIONS, seconds)
                sub = await measure(kind, recv.url, seconds)
                if sub.errors:
                    raise RuntimeError(f"GET answered {sub.errors} errors")
                subjects.append(sub)
                baselines.append(base)
                ratios.append(sub.requests_per_s / base.requests_per_s)
                loads.append(load()[0])
            rows.append(
                {
                    "db": kind,
                    "connections": CONNECTIONS,
                    "tidings_per_s": round(median([s.requests_per_s for s in subjects])),
                    "raw_asgi_per_s": round(median([b.requests_per_s for b in baselines])),
                    "of_raw_asgi": round(median(ratios), 3),
                    "p50_ms": round(median([s.p50_ms for s in subjects]), 2),
                    "p99_ms": round(median([s.p99_ms for s in subjects]), 2),
                    "runs": {
                        "tidings": [s.as_dict() for s in subjects],
                        "raw_asgi": [b.as_dict() for b in baselines],
                    },
                    "load": loads,
                }
            )
    return {"name": "get", "rows": rows}
