"""Profile the server under load: ``python -m bench.profile {ingest,get,delivery} [--db sqlite]``.

Starts ``tidings serve`` on a fresh database, drives it (wrk POSTing messages or
GETting a queue at c=64, or a ``--backlog`` of messages to drain), records the API
worker (the engine's process for ``delivery``, and for ``ingest --engine``: the
engine delivering what is ingested, which shares the cores with the API) with
``py-spy record --gil -f raw`` (extra ``[bench]``) and prints the functions with the
most samples, self and inclusive. The collapsed stacks are kept under
``bench/results/`` for a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections import Counter
from pathlib import Path

import aiohttp
import uvloop

from bench import arrivals, wrk
from bench.api import MESSAGE, Api
from bench.ingest import HEADERS
from bench.memory import _children
from bench.procs import Proc, database, receiver, tidings
from bench.seed import listening_queue, seed_messages

RESULTS = Path(__file__).parent / "results"


def _worker(server: Proc, engine: bool = False) -> int:
    """granian runs the app in a child of ``tidings serve``, the engine runs in another
    (``tidings.runtime.child``; in granian's with ``--single-process``)."""
    children = _children(server.pid)
    engines = [pid for pid in children if b"runtime.child" in _cmdline(pid)]
    apis = [pid for pid in children if pid not in engines]
    if engine and engines:
        return engines[-1]
    return apis[-1] if apis else server.pid


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# "--gil": only the thread holding the GIL; without it (``--threads``) every thread that
# is not idle, so the SQLite threads' time outside the GIL shows too.
SAMPLED = {"only": "--gil"}


async def _record(pid: int, seconds: int, out: Path) -> None:
    only = [SAMPLED["only"]] if SAMPLED["only"] else []
    proc = await asyncio.create_subprocess_exec(
        "py-spy", "record", *only, "--nonblocking", "-r", "250", "-f", "raw",
        "-d", str(seconds), "-p", str(pid), "-o", str(out),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    await proc.wait()


def summarize(path: Path, top: int = 30) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
        ]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    held = "GIL held" if SAMPLED["only"] else "busy threads"
    lines = [f"{total} samples ({held})", "", "self:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


async def profile(
    what: str, kind: str, seconds: int, engine: bool = False, backlog: int = 20_000
) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    side = "-engine" if engine and what == "ingest" else ""
    out = RESULTS / f"profile-{what}{side}-{kind}-{stamp}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    async with database(kind) as url, receiver() as recv, aiohttp.ClientSession() as session:
        if what == "ingest":
            async with tidings(url) as server:
                api = Api(server.url, session)
                queue_id = await api.queue()
                await api.listener(queue_id, recv.url, "fast")
                target = f"{server.url}/v1/queues/{queue_id}/messages"
                load = asyncio.ensure_future(wrk.post(target, MESSAGE, HEADERS, 64, seconds + 4))
                await asyncio.sleep(2)
                await _record(_worker(server, engine=engine), seconds, out)
                print(await load)
        elif what == "get":
            async with tidings(url) as server:
                api = Api(server.url, session)
                queue_id = await api.queue()
                await api.listener(queue_id, recv.url, "fast")
                target = f"{server.url}/v1/queues/{queue_id}"
                load = asyncio.ensure_future(wrk.get(target, HEADERS, 64, seconds + 4))
                await asyncio.sleep(2)
                await _record(_worker(server), seconds, out)
                print(await load)
        else:
            queue_id = await listening_queue(url, session, recv.url, "fast")
            await seed_messages(url, queue_id, backlog)
            await arrivals.reset(session, recv.url)
            async with tidings(url) as server:
                await _record(_worker(server, engine=True), seconds, out)
                print("delivered while recording:", await arrivals.count(session, recv.url))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", choices=["ingest", "get", "delivery"])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--engine", action="store_true", help="ingest: record the delivery engine's process"
    )
    parser.add_argument("--backlog", type=int, default=20_000, help="delivery: messages")
    parser.add_argument(
        "--threads", action="store_true", help="every busy thread, not only the GIL's holder"
    )
    args = parser.parse_args()
    if args.threads:
        SAMPLED["only"] = ""
    out = uvloop.run(profile(args.what, args.db, args.seconds, args.engine, args.backlog))
    print(summarize(out))
    print(f"\ncollapsed stacks: {out}")


if __name__ == "__main__":
    main()
