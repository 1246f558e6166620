"""What granian costs per request as the app's own Python time grows:
``python -m bench.servercost [--spin 0,10,20,35,60] [--rounds 2]``.

Serves a bare ASGI app (this module's ``app``) that holds the GIL for ``SPIN_US``
microseconds per request, with the settings of ``tidings serve`` (ASGI, uvloop, one
worker), drives it with ``wrk -c64`` and prints the worker's CPU per request (user +
system, from ``/proc``) and the rest once the app's own time is taken off: the
server's share. Issue 18: the API worker spends ~110 us per ``GET`` of a queue through
granian while the app alone costs ~35 us in-process (``bench.inproc get``); this shows
how much of that gap any app of that length pays (granian's Rust threads waiting for
the GIL the app holds), so the next microsecond saved in the app is worth more than one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from typing import Any

from bench import wrk
from bench.procs import cpu_s, free_port, load

_SPIN_S = float(os.environ.get("SPIN_US", "0")) / 1e6
_BODY = b'{"queue":{"id":"q"}}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    end = time.perf_counter() + _SPIN_S
    while time.perf_counter() < end:  # the app's own work, GIL held
        pass
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def _worker(pid: int) -> int:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return int(found.stdout.split()[0])


def _serve(spin_us: float, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop",
            "--port", str(port), "--no-access-log", "--log-level", "warning",
            "bench.servercost:app",
        ],
        env={**os.environ, "SPIN_US": str(spin_us)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def measure(spin_us: float, seconds: float = 5.0) -> tuple[float, float]:
    """Requests/s and the worker's CPU microseconds per request."""
    port = free_port()
    server = _serve(spin_us, port)
    url = f"http://127.0.0.1:{port}/"
    try:
        await asyncio.sleep(1.0)  # granian binds, then forks its worker
        await wrk.get(url, {}, 64, 1)
        worker = _worker(server.pid)
        before = cpu_s(worker)
        result = await wrk.get(url, {}, 64, seconds)
        return result.requests_per_s, (cpu_s(worker) - before) / result.requests * 1e6
    finally:
        server.terminate()
        server.wait()


async def main(spins: list[float], rounds: int) -> None:
    for _ in range(rounds):
        for spin in spins:
            rate, cpu_us = await measure(spin)
            print(
                f"app {spin:4.0f} us: {rate:8.0f} req/s, worker {cpu_us:6.1f} us per request, "
                f"server's share {cpu_us - spin:5.1f} us (load {load()[0]})",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.servercost", description=__doc__)
    parser.add_argument("--spin", default="0,10,20,35,60", help="app microseconds, a list")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main([float(s) for s in args.spin.split(",")], args.rounds))
