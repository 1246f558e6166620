"""System calls of the API worker per request: ``python -m bench.syscalls
{queue,message,listener} [--seconds 4] [--source DIR]`` (needs ``strace``:
``apt-get install strace``; ``--source`` runs another tree, as ``bench.ab``).

Starts ``tidings serve`` on SQLite with one listener and one message, drives ``GET``
of one queue, message or listener with ``wrk -c64`` and counts the worker's system
calls (all its threads) with ``strace -f -c`` for the run, per request (one
``recvfrom`` per request). What it shows: futex calls and ``sched_yield`` are the GIL
changing hands between the event loop and granian's thread (docs/benchmarks.md);
``fcntl`` is SQLite's WAL read lock. strace slows the worker several times over: read
the counts, not the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import tempfile
from pathlib import Path

import uvloop

from bench import get, wrk
from bench.cpushare import _roles
from bench.procs import SOURCE, receiver

SHOWN = ("futex", "sched_yield", "fcntl", "epoll_wait", "write", "writev", "recvfrom")


def _counts(text: str) -> dict[str, int]:
    """``strace -c``'s table: calls by system call."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[3].isdigit():
            out[parts[-1]] = int(parts[3])
    return out


async def run(what: str, seconds: float) -> dict[str, float]:
    async with receiver() as recv, get.resource_urls("sqlite", recv.url) as (server, urls):
        target = urls[what]
        headers = get.HEADERS
        await wrk.get(target, headers, 64, 1)  # warm-up
        worker = _roles(server.pid)["api"]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "strace.txt"
            tracer = await asyncio.create_subprocess_exec(
                "strace", "-f", "-c", "-p", str(worker), "-o", str(out),
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                await wrk.get(target, headers, 64, seconds)
            finally:
                tracer.send_signal(signal.SIGINT)
                await asyncio.wait_for(tracer.wait(), 30)
            counts = _counts(out.read_text())
    requests = counts.get("recvfrom", 0)
    if not requests:
        raise RuntimeError("strace saw no request")
    return {name: counts.get(name, 0) / requests for name in SHOWN}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.syscalls", description=__doc__)
    parser.add_argument("what", choices=["queue", "message", "listener"])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--source", help="run the server from this source tree (as bench.ab)")
    args = parser.parse_args()
    SOURCE["path"] = args.source
    if shutil.which("strace") is None:
        raise SystemExit("bench.syscalls needs strace (apt-get install strace)")
    per = uvloop.run(run(args.what, args.seconds))
    print(f"GET of one {args.what}, system calls of the API worker per request:")
    print("  " + ", ".join(f"{name} {value:.2f}" for name, value in per.items()))


if __name__ == "__main__":
    main()
