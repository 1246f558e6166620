"""What the rate limiter costs per request, and what a database round trip would cost.

    python -m bench.limiter_cost [postgresql://postgres@127.0.0.1:5432/DB]

1. ``RateLimiter.hit`` as built (admitted in memory from a share of the window reserved
   in the shared row, one transaction per share);
2. one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` per request, the
   alternative, on the UNLOGGED ``rate_counters`` table (PostgreSQL) and on SQLite,
   alone and with 16 concurrent requests of one key (one hot row);
3. end to end: ``GET /queues/{id}`` through ``tidings serve`` (uvloop) with the
   limiter off and on, 16 connections, so (2) can be set against a real request.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

import aiohttp

from tidings.api.ratelimit import RateLimiter
from tidings.storage.store import Store

_UPSERT = (
    "INSERT INTO rate_counters (key_id, window_start, hits) VALUES ($1, $2, 1)"
    " ON CONFLICT (key_id, window_start) DO UPDATE SET hits = rate_counters.hits + 1"
    " RETURNING hits"
)


def _summary(count: int, wall: float, latencies: list[float]) -> str:
    p50 = statistics.median(latencies) * 1e3
    p99 = statistics.quantiles(latencies, n=100)[98] * 1e3
    return f"{count / wall:9.0f}/s  p50 {p50:.3f} ms  p99 {p99:.3f} ms"


async def _timed(seconds: float, concurrency: int, op: Callable[[], Awaitable[object]]) -> str:
    """Run ``op`` from ``concurrency`` workers for ``seconds``: rate and latencies."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _summary(len(latencies), time.perf_counter() - start, latencies)


async def _db_costs(url: str) -> None:
    store = await Store.open(url)
    try:
        limiter = RateLimiter(store.rate_counters, 10**9, 60, store.clock)
        await limiter.hit("warm")
        hits = await _timed(1.0, 1, lambda: limiter.hit("k"))
        print(f"  RateLimiter.hit (in memory)      {hits}")

        async def upsert() -> object:
            return await store.db.write(_UPSERT, "hot", 0)

        for c in (1, 16):
            print(f"  upsert per request, {c:2} at once    {await _timed(2.0, c, upsert)}")
    finally:
        await store.close()


async def _http(base: str, key: str, concurrency: int, seconds: float) -> str:
    headers = {"X-API-KEY": key, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(base, headers=headers) as http:
        async with http.post("/queues", json={"name": f"b{time.time_ns()}"}) as r:
            qid = (await r.json())["queue"]["id"]

        async def get() -> object:
            async with http.get(f"/queues/{qid}") as r:
                await r.read()
                assert r.status == 200, r.status
            return None

        return await _timed(seconds, concurrency, get)


async def _end_to_end(url: str, rate_limit: int) -> str:
    key = "bench-operator-key-" + "b" * 20
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": url,
        "TIDINGS_BOOTSTRAP_API_KEY": key,
        "TIDINGS_RATE_LIMIT": str(rate_limit),
        "TIDINGS_PORT": "18931",
    }
    proc = subprocess.Popen([sys.executable, "-m", "tidings", "serve"], env=env)  # noqa: ASYNC220
    try:
        base = "http://127.0.0.1:18931"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(base + "/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        return await _http(base, key, 16, 3.0)
    finally:
        proc.terminate()
        proc.wait()


async def main() -> None:
    pg = sys.argv[1] if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as tmp:
        urls = [f"sqlite:///{tmp}/bench.db"] + ([pg] if pg else [])
        for url in urls:
            print(url.split(":")[0])
            await _db_costs(url)
            for limit in (0, 10**9):
                label = "off" if limit == 0 else "on "
                print(f"  GET /queues/id, limiter {label}     {await _end_to_end(url, limit)}")


if __name__ == "__main__":
    asyncio.run(main())
