"""Listener options (issue 15): what filters and a rate limit cost, as ratios to the
same run without them, rounds interleaved so the machine's drift hits both alike.

``python -m bench.listener_options [--db sqlite,postgres] [--rounds 3]``

* **fan-out with filters**: messages/s committed through the group-commit ingest into
  a queue with 100 listeners, every listener with a ``data`` filter (half of them
  match each message) against the same 100 listeners without filters. In-process on
  the storage layer: the fan-out is all that differs.
* **rate limit far above the achieved rate**: deliveries/s of ``tidings serve`` draining
  a backlog to one fast receiver, the listener with ``rate_limit: 10000`` against the
  same listener without one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
import uvloop

from bench import arrivals
from bench.api import ORDER, Api
from bench.delivery import drain_rate
from bench.procs import database, load, receiver, tidings
from bench.seed import seed_messages
from bench.stats import median, ratio
from tidings.domain.ids import new_id, now_ms
from tidings.domain.models import NewMessage, Publication
from tidings.domain.scopes import operator_scopes
from tidings.signing import new_keys
from tidings.storage.store import Store

LISTENERS = 100
MESSAGES = 2_000
IN_FLIGHT = 256
BACKLOG = 5_000
DATA = json.dumps({**ORDER, "country": "DE"})


async def fan_out_rate(kind: str, filtered: bool) -> float:
    """Messages/s committed into a queue with ``LISTENERS`` listeners."""
    async with database(kind) as url:
        store = await Store.open(url)
        try:
            org, _ = await store.organizations.create_with_key(
                "bench", new_id() + new_id(), "bench", operator_scopes()
            )
            queue = await store.queues.create(org.id, "fanout", None, None)
            for i in range(LISTENERS):
                country = "DE" if i % 2 == 0 else "FR"  # half of them match
                options = {"filter": {"data": {"country": country}}} if filtered else {}
                await store.listeners.create(
                    org.id,
                    queue.id,
                    f"l{i}",
                    "http://127.0.0.1:9/n",
                    "http://127.0.0.1:9/l",
                    new_keys("v1"),
                    options,
                )
            left = iter(range(MESSAGES))

            async def adder() -> None:
                for _ in left:
                    message = NewMessage(new_id(), org.id, queue.id, "order", DATA, now_ms())
                    await store.ingest.add(Publication((message,)))

            started = time.monotonic()
            await asyncio.gather(*(adder() for _ in range(IN_FLIGHT)))
            return MESSAGES / (time.monotonic() - started)
        finally:
            await store.close()


async def delivery_rate(kind: str, recv_url: str, limited: bool) -> float:
    async with database(kind) as url, aiohttp.ClientSession() as session:
        async with tidings(url, "--no-engine") as api_only:
            api = Api(api_only.url, session)
            queue_id = await api.queue()
            body: dict[str, Any] = {
                "name": "fast",
                "notify_url": f"{recv_url}/notify/fast",
                "liveness_url": f"{recv_url}/live/fast",
            }
            if limited:
                body["rate_limit"] = 10_000
            await api.call("POST", f"/queues/{queue_id}/listeners", body)
        await seed_messages(url, queue_id, BACKLOG)
        await arrivals.reset(session, recv_url)
        async with tidings(url):
            return await drain_rate(session, recv_url, BACKLOG)


async def main(kinds: list[str], rounds: int) -> None:
    print(f"load {load()}", flush=True)
    for kind in kinds:
        plain, filtered = [], []
        for _ in range(rounds):
            plain.append(await fan_out_rate(kind, False))
            filtered.append(await fan_out_rate(kind, True))
        print(
            f"[{kind}] fan-out to {LISTENERS} listeners, msgs/s: without filters "
            f"{[round(x) for x in plain]}, with filters (half matching) "
            f"{[round(x) for x in filtered]}; ratio of medians "
            f"{ratio(median(filtered), median(plain))}",
            flush=True,
        )
    async with receiver() as recv:
        for kind in kinds:
            free, limited = [], []
            for _ in range(rounds):
                free.append(await delivery_rate(kind, recv.url, False))
                limited.append(await delivery_rate(kind, recv.url, True))
            print(
                f"[{kind}] delivery of {BACKLOG}, deliveries/s: without rate_limit "
                f"{[round(x) for x in free]}, rate_limit=10000 {[round(x) for x in limited]}; "
                f"ratio of medians {ratio(median(limited), median(free))}",
                flush=True,
            )
    print(f"load {load()}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uvloop.run(main(args.db.split(","), args.rounds))
