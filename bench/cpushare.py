"""Where the cores go during ingest: ``python -m bench.cpushare [--db sqlite] [--seconds 8]
[--rounds 3] [-- SERVE_ARGS...]``.

``bench ingest``'s c=64 scenario (``tidings serve``, one listener on the fast receiver,
``wrk -c64`` posting), with each process's CPU time (user + system, from ``/proc``)
over the run divided by the messages posted: the API worker split by thread (its
event loop, granian's Rust runtime, the rest: SQLite's writer and readers), the engine
child, the receiver and ``wrk`` itself. The sum says how many messages per second the
machine's cores could carry at most with this split (issue 18: the ingest target is a
share of a raw ASGI app that has the cores to itself).
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

import aiohttp
import uvloop

from bench import ingest, wrk
from bench.api import MESSAGE, Api
from bench.enginecpu import _cpu_s, _cpu_s_of
from bench.memory import _children
from bench.procs import database, load, receiver, tidings
from bench.stats import median


def _api_threads(pid: int) -> dict[str, float]:
    """CPU seconds of the API worker's threads: event loop, granian's runtime, others."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            seconds = _cpu_s_of(task / "stat")
        except OSError:
            continue
        name = "loop" if task.name == str(pid) else "granian" if "tokio" in comm else "threads"
        out[name] = out.get(name, 0.0) + seconds
    return out


def _roles(server_pid: int) -> dict[str, int]:
    """The API worker (the child whose threads include granian's runtime) and the engine."""
    roles: dict[str, int] = {}
    for pid in _children(server_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            comms = {(t / "comm").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()}
        except OSError:
            continue
        if b"runtime.child" in cmd:
            roles["engine"] = pid
        elif any("tokio" in c for c in comms):
            roles["api"] = pid
    return roles


def _wrk_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk runs as our child
    return usage.ru_utime + usage.ru_stime


async def one(kind: str, seconds: float, serve_args: list[str]) -> tuple[dict[str, float], float]:
    """Microseconds of CPU per message posted, by part; and the requests/s."""
    async with (
        receiver() as recv,
        database(kind) as url,
        tidings(url, *serve_args) as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(server.url, session)
        queue_id = await api.queue()
        await api.listener(queue_id, recv.url, "fast")
        target = f"{server.url}/v1/queues/{queue_id}/messages"
        # Warm-up past the first seconds, in which the API's caches read around
        # themselves until they surely hear their channels' wake-ups (storage.wakeups).
        await wrk.post(target, MESSAGE, ingest.HEADERS, 64, 3)
        roles = _roles(server.pid)
        threads = _api_threads(roles["api"])
        engine = _cpu_s(roles["engine"]) if "engine" in roles else 0.0
        receiving, posting = _cpu_s(recv.pid), _wrk_s()
        result = await wrk.post(target, MESSAGE, ingest.HEADERS, 64, seconds)
        used = {f"api {k}": v - threads.get(k, 0.0) for k, v in _api_threads(roles["api"]).items()}
        if "engine" in roles:
            used["engine"] = _cpu_s(roles["engine"]) - engine
        used["receiver"] = _cpu_s(recv.pid) - receiving
        used["wrk"] = _wrk_s() - posting
    per = {k: v / max(result.requests, 1) * 1e6 for k, v in used.items()}
    return per, result.requests_per_s


async def run(kind: str, seconds: float, rounds: int, serve_args: list[str]) -> None:
    runs: list[dict[str, float]] = []
    rates: list[float] = []
    for i in range(rounds):
        per, rate = await one(kind, seconds, serve_args)
        runs.append(per)
        rates.append(rate)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in per.items())
        print(f"round {i + 1}: {rate:.0f} req/s; us per message: {parts} (load {load()[0]})")
    keys = list(runs[0])
    medians = {k: median([r.get(k, 0.0) for r in runs]) for k in keys}
    total = sum(medians.values())
    cores = os.cpu_count() or 1
    print(f"\n{kind}, serve {' '.join(serve_args) or '(default)'}: {median(rates):.0f} req/s")
    print("| part | us CPU per message | share |\n|---|---|---|")
    for k in keys:
        print(f"| {k} | {medians[k]:.1f} | {medians[k] / total:.0%} |")
    print(
        f"| **all** | **{total:.1f}** | at most {cores / total * 1e6:,.0f} msg/s on {cores} cores |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpushare", description=__doc__)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("serve_args", nargs="*", help="after --: arguments for tidings serve")
    args = parser.parse_args()
    uvloop.run(run(args.db, args.seconds, args.rounds, args.serve_args))


if __name__ == "__main__":
    main()
