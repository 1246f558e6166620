"""Delivery throughput: deliveries/s to one fast receiver draining a backlog of
20,000 messages (issue 6, scenario 3).

The backlog is committed through tidings' own group-commit ingest while no engine
runs; then ``tidings serve`` starts and the rate is taken from the receiver's own
arrival times (first to last arrival). Same-run baseline, interleaved: a plain
aiohttp ``ClientSession`` loop (``bench.rawclient``, another process) posting the
same body to the same receiver with the engine's per-listener concurrency.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp

from bench import arrivals
from bench.loadgen import wait_count
from bench.procs import database, load, receiver, tidings
from bench.seed import listening_queue, seed_messages, seed_plain
from bench.stats import median, ratio
from tidings.config import Settings

CONCURRENCY = Settings().max_in_flight_per_listener  # one listener: the engine's cap


async def raw_client(url: str, count: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.rawclient",
        url,
        str(count),
        str(CONCURRENCY),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return float(out.decode().strip())


async def drain_rate(session: aiohttp.ClientSession, recv_url: str, count: int) -> float:
    """Deliveries/s between the first and the last arrival of ``count`` deliveries."""
    got = await wait_count(lambda: arrivals.count(session, recv_url), count, 600)
    rows = await arrivals.take(session, recv_url)
    if got < count:
        raise RuntimeError(f"only {got} of {count} deliveries arrived")
    times = sorted(at for _p, _id, at in rows)
    return (len(times) - 1) / (times[-1] - times[0])


async def _subject(kind: str, recv_url: str, backlog: int, plain: bool = False) -> float:
    """``plain``: seed in plain SQL that an older schema takes too (bench.ab)."""
    async with database(kind) as url, aiohttp.ClientSession() as session:
        queue_id = await listening_queue(url, session, recv_url, "fast")
        await (seed_plain if plain else seed_messages)(url, queue_id, backlog)
        await arrivals.reset(session, recv_url)
        async with tidings(url):
            return await drain_rate(session, recv_url, backlog)


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    backlog = 20_000
    rounds = 1 if quick else 2
    rows = []
    async with receiver() as recv, aiohttp.ClientSession() as session:
        target = recv.url + "/notify/raw"
        for kind in kinds:
            baselines, subjects, loads = [], [], []
            for _ in range(rounds):
                baselines.append(await raw_client(target, backlog))
                await arrivals.reset(session, recv.url)
                subjects.append(await _subject(kind, recv.url, backlog))
                loads.append(load()[0])
            baselines.append(await raw_client(target, backlog))
            await arrivals.reset(session, recv.url)
            rows.append(
                {
                    "db": kind,
                    "backlog": backlog,
                    "concurrency": CONCURRENCY,
                    "tidings_per_s": round(median(subjects)),
                    "raw_client_per_s": round(median(baselines)),
                    "of_raw_client": ratio(median(subjects), median(baselines)),
                    "runs": {"tidings": subjects, "raw_client": baselines},
                    "load": loads,
                }
            )
    return {"name": "delivery", "rows": rows}
