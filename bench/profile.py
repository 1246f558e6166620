"""Profile the server under load: ``python -m bench.profile {ingest,delivery} [--db sqlite]``.

Starts ``tidings serve`` on a fresh database, drives it (wrk POSTing messages at
c=64, or a 20,000-message backlog to drain), records the app worker with
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
from bench.seed import seed_messages

RESULTS = Path(__file__).parent / "results"


def _worker(server: Proc) -> int:
    """granian runs the app (and the engine) in a child of ``tidings serve``."""
    children = _children(server.pid)
    return children[-1] if children else server.pid


async def _record(pid: int, seconds: int, out: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        "py-spy", "record", "--gil", "--nonblocking", "-r", "250", "-f", "raw",
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
    lines = [f"{total} samples (GIL held)", "", "self:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


async def profile(what: str, kind: str, seconds: int) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = RESULTS / f"profile-{what}-{kind}-{stamp}.txt"
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
                await _record(_worker(server), seconds, out)
                print(await load)
        else:
            async with tidings(url, "--no-engine") as api_only:
                api = Api(api_only.url, session)
                queue_id = await api.queue()
                await api.listener(queue_id, recv.url, "fast")
            await seed_messages(url, queue_id, 20_000)
            await arrivals.reset(session, recv.url)
            async with tidings(url) as server:
                await _record(_worker(server), seconds, out)
                print("delivered while recording:", await arrivals.count(session, recv.url))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", choices=["ingest", "delivery"])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    out = uvloop.run(profile(args.what, args.db, args.seconds))
    print(summarize(out))
    print(f"\ncollapsed stacks: {out}")


if __name__ == "__main__":
    main()
