"""The engine's claim in-process, before/after a change, with no HTTP in the way:
``python -m bench.claim BEFORE_DIR [--db sqlite] [--rounds 4]``.

Seeds one database (16 listeners, 32,000 pending deliveries), then alternates the
two trees, each in its own process: every run makes the deliveries due again and
times 60 claims of 256 (each followed by the record of its outcomes, as the engine
does). Prints ms per claim for every run and the medians' ratio. For a machine too
noisy for ``bench.ab delivery``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

from bench.procs import database
from bench.stats import median

_RUN = r"""
import asyncio, inspect, sys, time
from tidings.domain.models import DeliveryState
from tidings.storage.deliveries import AttemptResult
from tidings.storage.store import Store

async def main(url):
    store = await Store.open(url, migrate=False)
    await store.db.write(
        "UPDATE deliveries SET lease_until = 0, state = 'pending', attempts = 0,"
        " next_attempt_at = 0", durable=False)
    engine_id = "by" in inspect.signature(store.deliveries.claim).parameters
    now, cursor, spent, claims = int(time.time() * 1000), "", 0.0, 0
    for _ in range(60):
        args = (now, now + 30_000, 256, 31, [], cursor)
        started = time.perf_counter()
        batch = await store.deliveries.claim(*((1, *args) if engine_id else args))
        spent += time.perf_counter() - started
        if not batch:
            break
        claims, cursor = claims + 1, batch[-1].listener_id
        await store.deliveries.record(
            [AttemptResult(c, 200, DeliveryState.DELIVERED, 1, now, None) for c in batch])
    print(spent * 1000 / claims)
    await store.close()

asyncio.run(main(sys.argv[1]))
"""
# "after" is this tree.
HERE = Path(__file__).resolve().parent.parent


async def _seed(url: str) -> None:
    from tidings.bootstrap import bootstrap
    from tidings.domain.ids import new_id, now_ms
    from tidings.domain.models import NewMessage, Publication
    from tidings.signing import new_keys
    from tidings.storage.store import Store

    store = await Store.open(url)
    try:
        await bootstrap(store, None)
        org = await store.organizations.get_by_name("default")
        assert org is not None
        queue = await store.queues.create(org.id, "q", None, None)
        for n in range(16):
            url_ = f"http://l{n}.test/hook"
            await store.listeners.create(org.id, queue.id, f"l{n}", url_, url_, new_keys("v1"))
        await store.db.write("UPDATE listeners SET next_probe_at = 9000000000000")
        for _ in range(20):
            batch = [
                NewMessage(new_id(), org.id, queue.id, "m", "{}", now_ms()) for _ in range(100)
            ]
            await store.messages.insert_batch([Publication(tuple(batch))])
    finally:
        await store.close()


def _one(tree: Path, url: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _RUN, url],
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    async with database(args.db) as url:
        await _seed(url)
        runs: dict[str, list[float]] = {"before": [], "after": []}
        for n in range(args.rounds):
            order = [("before", args.before), ("after", HERE)]
            for name, tree in order if n % 2 == 0 else reversed(order):
                ms = await asyncio.to_thread(_one, tree, url)
                runs[name].append(ms)
                print(f"round {n + 1} {name}: {ms:.2f} ms per claim", flush=True)
    before, after = median(runs["before"]), median(runs["after"])
    print(
        f"claim {args.db}: before {before:.2f} ms, after {after:.2f} ms,"
        f" after/before {after / before:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
