"""Where the cores go during ingest: ``python -m bench.cpushare [--db sqlite] [--seconds 8]
[--rounds 3] [-- SERVE_ARGS...]``.

``bench ingest``'s c=64 scenario (``tidings serve``, one listener on the fast receiver,
``wrk -c64`` posting), with each process's CPU time (user + system, from ``/proc``)
over the run divided by the messages posted: the API worker and the engine child split
by thread (the event loop; granian's Rust runtime; the SQLite writer, told apart as the
thread that wrote the most bytes, since every Python thread is "python" to the kernel;
the rest: SQLite's readers, granian's Python threads), the receiver and ``wrk`` itself.
The sum says how many messages per second the machine's cores could carry at most with
this split (issue 18: the ingest target is a share of a raw ASGI app that has the cores
to itself). The writers' write system calls and bytes per message (``/proc/.../io``:
WAL, checkpoints, anything else they write) are printed after the table.
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
from bench.memory import _children
from bench.procs import cpu_s, database, load, receiver, stat_cpu_s, tidings
from bench.stats import median

# Per thread: (comm, CPU seconds, write system calls, bytes written).
Threads = dict[str, tuple[str, float, int, int]]


def _threads(pid: int) -> Threads:
    out: Threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            seconds = stat_cpu_s(task / "stat")
            io = dict(line.split(": ") for line in (task / "io").read_text().splitlines())
        except OSError:
            continue
        out[task.name] = (comm, seconds, int(io["syscw"]), int(io["wchar"]))
    return out


def _parts(pid: int, before: Threads, after: Threads) -> tuple[dict[str, float], tuple[int, int]]:
    """CPU seconds per part of a process over a run, and its writer's (writes, bytes)."""
    used = {}
    for tid, (comm, seconds, calls, written) in after.items():
        _, s0, c0, w0 = before.get(tid, (comm, 0.0, 0, 0))
        used[tid] = (comm, seconds - s0, calls - c0, written - w0)
    others = [t for t, (comm, *_) in used.items() if t != str(pid) and "tokio" not in comm]
    writer = max(others, key=lambda t: used[t][3], default=None)
    out: dict[str, float] = {}
    for tid, (comm, seconds, _, _) in used.items():
        if tid == str(pid):
            name = "loop"
        elif "tokio" in comm:
            name = "granian"
        else:
            name = "writer" if tid == writer else "threads"
        out[name] = out.get(name, 0.0) + seconds
    return out, (used[writer][2], used[writer][3]) if writer is not None else (0, 0)


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


async def one(
    kind: str, seconds: float, serve_args: list[str]
) -> tuple[dict[str, float], dict[str, float], float]:
    """Microseconds of CPU per message posted, by part; the writers' write calls and
    bytes per message; and the requests/s."""
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
        before = {role: _threads(pid) for role, pid in roles.items()}
        receiving, posting = cpu_s(recv.pid), _wrk_s()
        result = await wrk.post(target, MESSAGE, ingest.HEADERS, 64, seconds)
        used: dict[str, float] = {}
        writes: dict[str, float] = {}
        for role, pid in sorted(roles.items()):
            parts, (calls, written) = _parts(pid, before[role], _threads(pid))
            used |= {f"{role} {part}": v for part, v in sorted(parts.items())}
            writes[f"{role} writer calls"] = calls
            writes[f"{role} writer KB"] = written / 1024
        used["receiver"] = cpu_s(recv.pid) - receiving
        used["wrk"] = _wrk_s() - posting
    messages = max(result.requests, 1)
    per = {k: v / messages * 1e6 for k, v in used.items()}
    return per, {k: v / messages for k, v in writes.items()}, result.requests_per_s


async def run(kind: str, seconds: float, rounds: int, serve_args: list[str]) -> None:
    runs: list[dict[str, float]] = []
    written: list[dict[str, float]] = []
    rates: list[float] = []
    for i in range(rounds):
        per, writes, rate = await one(kind, seconds, serve_args)
        runs.append(per)
        written.append(writes)
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
    per_message = ", ".join(f"{k} {median([w[k] for w in written]):.2f}" for k in written[0])
    print(f"\nper message: {per_message}")


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
