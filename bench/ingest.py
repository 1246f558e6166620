"""Ingest throughput: durable ``POST /queues/{id}/messages`` under ``wrk`` at 1, 16 and
64 connections, with one listener on the fast receiver (issue 6, scenario 1).

Same-run baselines, interleaved with every tidings run: (a) the raw ASGI app
(``bench.rawasgi``) on the same server settings, parsing the same body; (b) the raw
driver inserting the same row with one commit per row (``bench.rawdriver``).

After each tidings run the scenario waits until the receiver has every message, so
the c=64 run also gives the sustained ingest + delivery rate: messages / (run +
drain time).

Three deployments are measured: ``serve`` (``tidings serve`` as a user starts it: the
API in granian's worker, the engine in a supervised child process), ``single``
(``tidings serve --single-process``: API and engine share one interpreter, the
default before issue 18) and ``split`` (``tidings serve --no-engine`` plus
``tidings worker`` on the same database).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench import arrivals, rawasgi, wrk
from bench.api import MESSAGE, Api
from bench.loadgen import wait_count
from bench.procs import (
    API_KEY,
    SOURCE,
    Proc,
    database,
    free_port,
    load,
    receiver,
    spawn,
    tidings,
    tidings_env,
    wait_ready,
)
from bench.stats import median, ratio

CONNECTIONS = (1, 16, 64)
TOPOLOGIES = ("serve", "single", "split")
HEADERS = {"X-API-KEY": API_KEY, "Content-Type": "application/json"}


@asynccontextmanager
async def raw_asgi(workers: int = 1) -> AsyncIterator[Proc]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn(rawasgi.command(port, workers), "rawasgi", url)
    try:
        await wait_ready(proc, "/")
        yield proc
    finally:
        proc.stop()


async def raw_driver(kind: str, url: str, seconds: float) -> float:
    if kind == "sqlite":  # a file of its own beside tidings' database, same disk
        url = url.removesuffix(".db") + "-driver.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.rawdriver",
        kind,
        url,
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return float(out.decode().strip())


async def tidings_run(
    session: aiohttp.ClientSession,
    url: str,
    recv_url: str,
    c: int,
    seconds: float,
    headers: dict[str, str] = HEADERS,
    drain_timeout_s: float = 120,
) -> dict[str, Any]:
    """One ingest run (``wrk``) and the drain that follows, until the receiver has
    every message answered 200 (or ``drain_timeout_s``): the sustained rate."""
    await arrivals.reset(session, recv_url)
    started = time.monotonic()
    result = await wrk.post(url, MESSAGE, headers, c, seconds)
    ran = time.monotonic() - started
    ok = result.requests - result.errors
    got = await wait_count(lambda: arrivals.count(session, recv_url), ok, drain_timeout_s)
    drained = time.monotonic() - started - ran
    return {
        **result.as_dict(),
        "delivered": got,
        "drain_s": round(drained, 2),
        "sustained_msg_per_s": round(min(ok, got) / (ran + drained)),
    }


@asynccontextmanager
async def deployment(url: str, topology: str) -> AsyncIterator[Proc]:
    """The API's process; with ``split`` a ``tidings worker`` runs beside it."""
    if topology != "split":
        async with tidings(url, *(["--single-process"] if topology == "single" else [])) as s:
            yield s
        return
    async with tidings(url, "--no-engine") as server:
        engine = spawn(
            [sys.executable, "-m", "tidings", "worker"], "worker", "", tidings_env(url),
            cwd=SOURCE["path"],
        )  # fmt: skip
        try:
            yield server
        finally:
            engine.stop()


async def _measure(
    kind: str, url: str, raw_url: str, seconds: float, rounds: int
) -> dict[str, Any]:
    rows: dict[tuple[str, int], list[dict[str, Any]]] = {
        (t, c): [] for t in TOPOLOGIES for c in CONNECTIONS
    }
    drivers: list[float] = []
    async with receiver() as recv, aiohttp.ClientSession() as session:
        for n in range(rounds):
            for topology in TOPOLOGIES:
                async with deployment(url, topology) as server:
                    api = Api(server.url, session)
                    queue_id = await api.queue(f"bench-{topology}-{n}")
                    await api.listener(queue_id, recv.url, "fast")
                    path = f"/v1/queues/{queue_id}/messages"
                    target, raw_target = server.url + path, raw_url + path
                    await tidings_run(session, target, recv.url, 16, 2)  # warm-up
                    for c in CONNECTIONS:
                        raw = await wrk.post(raw_target, MESSAGE, HEADERS, c, seconds)
                        sub = await tidings_run(session, target, recv.url, c, seconds)
                        row = {"raw": raw.as_dict(), "tidings": sub, "load": load()[0]}
                        rows[topology, c].append(row)
            drivers.append(await raw_driver(kind, url, seconds))
    return {"runs": rows, "drivers": drivers}


def _summarize(kind: str, measured: dict[str, Any]) -> list[dict[str, Any]]:
    driver = median(measured["drivers"])
    out = []
    for (topology, c), runs in measured["runs"].items():
        subject = median([r["tidings"]["rps"] for r in runs])
        out.append(
            {
                "db": kind,
                "topology": topology,
                "connections": c,
                "tidings_rps": round(subject),
                "raw_asgi_rps": round(median([r["raw"]["rps"] for r in runs])),
                "of_raw_asgi": median([ratio(r["tidings"]["rps"], r["raw"]["rps"]) for r in runs]),
                "raw_driver_rows_per_s": round(driver),
                "of_raw_driver": ratio(subject, driver),
                "tidings_p50_ms": round(median([r["tidings"]["p50_ms"] for r in runs]), 2),
                "tidings_p99_ms": round(median([r["tidings"]["p99_ms"] for r in runs]), 2),
                "raw_p50_ms": round(median([r["raw"]["p50_ms"] for r in runs]), 2),
                "errors": sum(r["tidings"]["errors"] for r in runs),
                "sustained_msg_per_s": round(
                    median([r["tidings"]["sustained_msg_per_s"] for r in runs])
                ),
                "drain_s": round(median([r["tidings"]["drain_s"] for r in runs]), 2),
                "load": [r["load"] for r in runs],
                "runs": runs,
            }
        )
    return out


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    seconds = 5.0 if quick else 10.0
    rounds = 2 if quick else 3
    wrk.ensure_wrk()
    rows: list[dict[str, Any]] = []
    async with raw_asgi() as raw:
        for kind in kinds:
            async with database(kind) as url:
                measured = await _measure(kind, url, raw.url, seconds, rounds)
            rows += _summarize(kind, measured)
    return {"name": "ingest", "rows": rows}
