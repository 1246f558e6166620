"""How long taking over a dead engine's claims takes with a backlog:
``python -m bench.takeover [--db sqlite,postgres] [--pending 100000]``.

The takeover (storage/engines.py) runs only after an engine died, and finds the dead
engine's leases by scanning the pending deliveries (no index holds a lease, so that a
lease is a HOT update on PostgreSQL: storage/leases.py). Per database: a fresh
database with one listener and ``--pending`` deliveries (and 1,000, the baseline),
two engines of this tree in this process; one claims a batch and "dies" (its
liveness lock released), the other times its takeover.
"""

from __future__ import annotations

import argparse
import time

import aiohttp
import uvloop

from bench.procs import database, load, receiver
from bench.seed import listening_queue, seed_plain
from tidings.domain.ids import now_ms
from tidings.storage.store import Store

BASELINE = 1_000


async def one(kind: str, recv_url: str, pending: int) -> tuple[int, float]:
    """(released, ms) of one takeover with ``pending`` deliveries waiting."""
    async with database(kind) as url, aiohttp.ClientSession() as session:
        queue_id = await listening_queue(url, session, recv_url, "fast")
        await seed_plain(url, queue_id, pending)
        store = await Store.open(url, migrate=False)
        try:
            engines = store.engines
            dead, alive = await engines.join(now_ms()), await engines.join(now_ms())
            now = now_ms() + 1000
            await store.deliveries.claim(dead.id, now, now + 60_000, 100, 100, [])
            await dead.lock.release()
            started = time.perf_counter()
            released = await engines.take_over(alive, now_ms())
            ms = (time.perf_counter() - started) * 1000
            await engines.leave(alive)
        finally:
            await store.close()
    return released, ms


async def run(kinds: list[str], pending: int) -> None:
    async with receiver() as recv:
        for kind in kinds:
            _, base = await one(kind, recv.url, BASELINE)
            released, ms = await one(kind, recv.url, pending)
            print(
                f"takeover {kind}: {released} released, {ms:.1f} ms with {pending} pending,"
                f" {base:.1f} ms with {BASELINE}: {ms / base:.2f}x (load {load()[0]})",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.takeover", description=__doc__)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--pending", type=int, default=100_000)
    args = parser.parse_args()
    uvloop.run(run(args.db.split(","), args.pending))


if __name__ == "__main__":
    main()
