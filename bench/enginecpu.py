"""The delivery engine's CPU per delivery, before/after a change, interleaved:
``python -m bench.enginecpu BEFORE_DIR [--db sqlite] [--rounds 3] [--backlog 20000]``.

Under ``tidings serve`` the engine shares the machine's cores with the API, so its CPU
per delivery is ingest's loss (issue 18). Throughput on a busy 2-core machine is a
noisy way to see a few microseconds; the engine process's own CPU time (user + system,
its threads included, from ``/proc``) over a backlog drained to one fast receiver is
a steadier one. BEFORE_DIR as for ``bench.ab`` (a ``git archive`` of the old tree);
``--after DIR`` runs another tree instead of this one (a snapshot of work in progress).
Each round also prints where the rest of the two cores went during the drain: every
PostgreSQL process (``postgres``, whatever database: run it on a quiet server), the
receiver, and the share of the machine left idle (an engine waiting on its round trips
leaves the cores idle rather than busy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import aiohttp
import uvloop

from bench import arrivals
from bench.delivery import drain_rate
from bench.memory import _children
from bench.procs import SOURCE, TICKS, Proc, cpu_s, database, load, receiver, stat_cpu_s, tidings
from bench.seed import listening_queue, seed_plain
from bench.stats import median


def _threads_s(pid: int) -> dict[str, float]:
    """CPU seconds of the event loop's thread and of the others (SQLite's, on SQLite)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = "loop" if task.name == str(pid) else "threads"
            out[name] = out.get(name, 0.0) + stat_cpu_s(task / "stat")
        except OSError:
            continue
    return out


def _postgres_s() -> float:
    """CPU seconds of every PostgreSQL process on the machine."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "postgres":
                total += stat_cpu_s(proc / "stat")
        except OSError:
            continue
    return total


def _idle_s() -> tuple[float, float]:
    """The machine's idle and total CPU seconds so far (all cores, /proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[3] / TICKS, sum(ticks) / TICKS


def _engine(server: Proc) -> int:
    for pid in _children(server.pid):
        try:
            if b"runtime.child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise RuntimeError("no engine child")


async def one(kind: str, recv: Proc, backlog: int) -> tuple[float, float]:
    """Engine CPU microseconds per delivery and deliveries/s, for one drained backlog."""
    recv_url = recv.url
    async with database(kind) as url, aiohttp.ClientSession() as session:
        queue_id = await listening_queue(url, session, recv_url, "fast")
        await seed_plain(url, queue_id, backlog)
        await arrivals.reset(session, recv_url)
        async with tidings(url) as server:
            pid = _engine(server)
            before, threads = cpu_s(pid), _threads_s(pid)
            pg, received, (idle, total) = _postgres_s(), cpu_s(recv.pid), _idle_s()
            rate = await drain_rate(session, recv_url, backlog)
            used = cpu_s(pid) - before
            split = {k: v - threads.get(k, 0.0) for k, v in _threads_s(pid).items()}
            pg, received = _postgres_s() - pg, cpu_s(recv.pid) - received
            idle_now, total_now = _idle_s()
    parts = ", ".join(
        f"{k} {v / backlog * 1e6:.1f}" for k, v in sorted(split.items(), key=lambda kv: -kv[1]) if v
    )
    print(f"  us per delivery by thread: {parts}", flush=True)
    others = f"receiver {received / backlog * 1e6:.1f}"
    if kind == "postgres":
        others = f"PostgreSQL {pg / backlog * 1e6:.1f}, " + others
    idle_share = (idle_now - idle) / (total_now - total)
    print(f"  us per delivery elsewhere: {others}; cores idle {idle_share:.0%}", flush=True)
    return used / backlog * 1e6, rate


async def ab(before: str, kind: str, rounds: int, backlog: int, after: str | None) -> None:
    runs: dict[str, list[float]] = {"before": [], "after": []}
    async with receiver() as recv:
        for i in range(rounds):
            for side in ["before", "after"] if i % 2 == 0 else ["after", "before"]:
                SOURCE["path"] = before if side == "before" else after
                us, rate = await one(kind, recv, backlog)
                runs[side].append(us)
                print(
                    f"round {i + 1} {side}: {us:.1f} us CPU/delivery, {rate:.0f}/s"
                    f" (load {load()[0]})",
                    flush=True,
                )
    SOURCE["path"] = None
    b, a = median(runs["before"]), median(runs["after"])
    print(
        f"engine CPU/delivery {kind}: before {b:.1f} us, after {a:.1f} us, after/before {a / b:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.enginecpu", description=__doc__)
    parser.add_argument("before")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--after", help="a source tree for 'after' (default: this one)")
    args = parser.parse_args()
    uvloop.run(ab(args.before, args.db, args.rounds, args.backlog, args.after))


if __name__ == "__main__":
    main()
