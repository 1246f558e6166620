"""API worker processes, ``tidings serve --workers N`` (issue 18):
``python -m bench.workers [--db sqlite] [--workers 1,2] [--rounds 3] [--seconds 5]``.

Each round, for every N (the order alternates round by round): ``GET /v1/queues/{id}``
and durable ``POST .../messages`` (one listener on the fast receiver, the backlog
delivered before the next run) under ``wrk -c64`` against ``tidings serve --workers
N`` (engine child as usual); and the raw ASGI app (``bench.rawasgi``) with N granian
workers answering the same two requests, so the baseline is as honest as the subject
(does a bare app gain from a second worker on this machine?). Prints every run, then
medians with the ratios to raw ASGI at 1 worker and to ``--workers 1``.

Also the CPU the whole ``serve`` (supervisor, workers, engine child) spent per request
(``get_cpu_us``, ``ingest_cpu_us``: ingest until every message was delivered), which
drifts less with a shared machine's load than the rates do.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench import get, ingest, wrk
from bench.api import MESSAGE, Api
from bench.procs import cpu_s, database, load, receiver, tidings
from bench.stats import median

CONNECTIONS = 64


@asynccontextmanager
async def _queue(server_url: str, recv_url: str) -> AsyncIterator[str]:
    async with aiohttp.ClientSession() as session:
        api = Api(server_url, session)
        queue_id = await api.queue()
        await api.listener(queue_id, recv_url, "fast")
        yield f"{server_url}/v1/queues/{queue_id}"


async def _raw(workers: int, seconds: float) -> dict[str, float]:
    async with ingest.raw_asgi(workers) as raw:
        path = f"{raw.url}/v1/queues/q"
        await wrk.get(path, get.HEADERS, CONNECTIONS, 1)  # warm-up
        read = await wrk.get(path, get.HEADERS, CONNECTIONS, seconds)
        write = await wrk.post(path + "/messages", MESSAGE, ingest.HEADERS, CONNECTIONS, seconds)
    return {"get": read.requests_per_s, "ingest": write.requests_per_s}


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and every process under it so far (live ones)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    pids, total = [root], 0.0
    for pid in pids:
        pids.extend(children.get(pid, []))
        total += cpu_s(pid)
    return total


async def _tidings(kind: str, workers: int, recv_url: str, seconds: float) -> dict[str, float]:
    async with (
        database(kind) as url,
        tidings(url, "--workers", str(workers)) as server,
        _queue(server.url, recv_url) as target,
        aiohttp.ClientSession() as session,
    ):
        await wrk.get(target, get.HEADERS, CONNECTIONS, 1)  # warm-up
        before = tree_cpu_s(server.pid)
        read = await wrk.get(target, get.HEADERS, CONNECTIONS, seconds)
        get_cpu_us = (tree_cpu_s(server.pid) - before) / read.requests * 1e6
        await ingest.tidings_run(session, target + "/messages", recv_url, 16, 1)  # warm-up
        before = tree_cpu_s(server.pid)
        write = await ingest.tidings_run(
            session, target + "/messages", recv_url, CONNECTIONS, seconds
        )
        ingest_cpu_us = (tree_cpu_s(server.pid) - before) / write["requests"] * 1e6
    if read.errors or write["errors"]:
        raise RuntimeError(f"errors: GET {read.errors}, POST {write['errors']}")
    return {
        "get": read.requests_per_s,
        "ingest": write["rps"],
        "get_cpu_us": round(get_cpu_us, 1),
        "ingest_cpu_us": round(ingest_cpu_us, 1),
    }


async def run(kind: str, counts: list[int], rounds: int, seconds: float) -> dict[str, Any]:
    wrk.ensure_wrk()
    runs: dict[str, list[dict[str, float]]] = {}
    async with receiver() as recv:
        for i in range(rounds):
            order = counts if i % 2 == 0 else counts[::-1]
            for n in order:
                for side in ("raw", "tidings"):
                    if side == "raw":
                        row = await _raw(n, seconds)
                    else:
                        row = await _tidings(kind, n, recv.url, seconds)
                    row["load"] = load()[0]
                    runs.setdefault(f"{side} w{n}", []).append(row)
                    print(f"round {i + 1} {side} workers={n}: {row}", flush=True)
    medians = {
        name: {what: round(median([r[what] for r in rows])) for what in rows[0] if what != "load"}
        for name, rows in runs.items()
    }
    base, raw1 = medians[f"tidings w{counts[0]}"], medians[f"raw w{counts[0]}"]
    ratios = {
        name: {
            what: {
                "of_raw_w1": round(m[what] / raw1[what], 3),
                "of_same_side_w1": round(
                    m[what] / (raw1 if name.startswith("raw") else base)[what], 3
                ),
            }
            for what in ("get", "ingest")
        }
        for name, m in medians.items()
    }
    return {"db": kind, "medians": medians, "ratios": ratios, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--workers", default="1,2", help="comma-separated counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    result = uvloop.run(run(args.db, counts, args.rounds, args.seconds))
    print(json.dumps({k: result[k] for k in ("medians", "ratios")}, indent=1))


if __name__ == "__main__":
    main()
