"""Reads: ``GET`` of one queue, one message and one listener under ``wrk`` at 64
connections (issue 18: "GET of one resource >= 0.4x raw ASGI").

Each a read through authentication, routing and the store, against ``tidings serve``
as a user starts it with one listener (the engine idle once the one message is
delivered): the queue from the node's cache, the message with its delivery, the
listener with its missed ids. Same-run baseline, interleaved round by round: the raw
ASGI app (``bench.rawasgi``) answering a same-shaped queue JSON on the same server
settings. The rate limit is off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench import ingest, wrk
from bench.api import Api
from bench.procs import API_KEY, Proc, database, load, receiver, tidings
from bench.stats import median

CONNECTIONS = 64
HEADERS = {"X-API-KEY": API_KEY}
RESOURCES = ("queue", "message", "listener")


@asynccontextmanager
async def resource_urls(kind: str, recv_url: str) -> AsyncIterator[tuple[Proc, dict[str, str]]]:
    """A running ``tidings serve`` and the URLs of a queue, its listener and a message
    (also used by ``bench.ab`` and ``bench.syscalls``)."""
    async with database(kind) as url, tidings(url) as server:
        async with aiohttp.ClientSession() as session:
            api = Api(server.url, session)
            queue_id = await api.queue()
            listener_id = await api.listener(queue_id, recv_url, "fast")
            message_id = await api.post(queue_id)
        queue = f"{server.url}/v1/queues/{queue_id}"
        yield (
            server,
            {
                "queue": queue,
                "message": f"{queue}/messages/{message_id}",
                "listener": f"{queue}/listeners/{listener_id}",
            },
        )


async def measure(kind: str, recv_url: str, seconds: float) -> dict[str, wrk.WrkResult]:
    found = {}
    async with resource_urls(kind, recv_url) as (_, urls):
        for resource, target in urls.items():
            await wrk.get(target, HEADERS, CONNECTIONS, 1)  # warm-up
            found[resource] = await wrk.get(target, HEADERS, CONNECTIONS, seconds)
    return found


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    seconds, rounds = (5.0, 2) if quick else (10.0, 3)
    rows = []
    async with receiver() as recv, ingest.raw_asgi() as raw:
        for kind in kinds:
            subjects: dict[str, list[wrk.WrkResult]] = {r: [] for r in RESOURCES}
            ratios: dict[str, list[float]] = {r: [] for r in RESOURCES}
            baselines, loads = [], []
            for _ in range(rounds):
                base = await wrk.get(f"{raw.url}/v1/queues/q", HEADERS, CONNECTIONS, seconds)
                baselines.append(base)
                for resource, sub in (await measure(kind, recv.url, seconds)).items():
                    if sub.errors:
                        raise RuntimeError(f"GET of a {resource} answered {sub.errors} errors")
                    subjects[resource].append(sub)
                    ratios[resource].append(sub.requests_per_s / base.requests_per_s)
                loads.append(load()[0])
            for resource in RESOURCES:
                subs = subjects[resource]
                rows.append(
                    {
                        "db": kind,
                        "resource": resource,
                        "connections": CONNECTIONS,
                        "tidings_per_s": round(median([s.requests_per_s for s in subs])),
                        "raw_asgi_per_s": round(median([b.requests_per_s for b in baselines])),
                        "of_raw_asgi": round(median(ratios[resource]), 3),
                        "p50_ms": round(median([s.p50_ms for s in subs]), 2),
                        "p99_ms": round(median([s.p99_ms for s in subs]), 2),
                        "runs": {
                            "tidings": [s.as_dict() for s in subs],
                            "raw_asgi": [b.as_dict() for b in baselines],
                        },
                        "load": loads,
                    }
                )
    return {"name": "get", "rows": rows}
