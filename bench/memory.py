"""Memory: peak RSS of ``tidings serve`` with 100,000 pending deliveries to a
receiver that is down (issue 6, scenario 5).

Same-run baseline: the same server, settings and run time with 1,000 pending. The
engine claims in batches, so the two peaks should match: memory must not grow with
the number of pending deliveries. The server runs its engine for ``seconds`` against
the dead listener (attempts refused, then liveness marks it down) while its peak
resident set (``VmHWM`` of the server and its worker processes) is read.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from bench.procs import Proc, database, free_port, load, tidings
from bench.seed import listening_queue, seed_messages
from bench.stats import ratio

PENDING = (1_000, 100_000)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out + [g for c in out for g in _children(c)]


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peaks_kib(proc: Proc) -> dict[str, int]:
    pids = [proc.pid, *_children(proc.pid)]
    return {
        "peak_rss_kib": sum(_status_kib(p, "VmHWM") for p in pids),
        "rss_kib": sum(_status_kib(p, "VmRSS") for p in pids),
        "worker_peak_rss_kib": max(_status_kib(p, "VmHWM") for p in pids),
    }


async def measure(kind: str, pending: int, seconds: float) -> dict[str, Any]:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with database(kind) as url, aiohttp.ClientSession() as session:
        queue_id = await listening_queue(url, session, down, "down")
        await seed_messages(url, queue_id, pending)
        samples = []
        async with tidings(url) as server:
            for _ in range(int(seconds)):
                await asyncio.sleep(1)
                samples.append(peaks_kib(server)["rss_kib"])
            peaks = peaks_kib(server)
    return {"db": kind, "pending": pending, **peaks, "rss_samples_kib": samples, "load": load()}


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    seconds = 10.0 if quick else 30.0
    rows = []
    for kind in kinds:
        small = await measure(kind, PENDING[0], seconds)
        big = await measure(kind, PENDING[1], seconds)
        big["of_baseline_peak"] = ratio(big["peak_rss_kib"], small["peak_rss_kib"])
        small["of_baseline_peak"] = 1.0
        rows += [small, big]
    return {"name": "memory", "rows": rows}
