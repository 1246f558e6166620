"""Latency of GET /events and GET /stats/messages over a big event table.

    python -m bench.events [--database sqlite|postgres|URL] [--events 1000000]
                           [--requests 200] [--port 8097]

It fills a fresh database with ``--events`` events of one organization spread over
the last 7 days (the default retention), written through the store's own event
log in big transactions (so the per-minute counters are filled the way the server
fills them), then starts ``tidings serve`` on it as a subprocess and times
sequential keep-alive requests, each scenario after a warm-up. Prints p50/p99/max
per scenario and the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg

from tidings.domain.clock import ManualClock
from tidings.domain.events import EventType, NewEvent, Ref
from tidings.domain.ids import new_id, now_ms
from tidings.domain.scopes import operator_scopes
from tidings.storage.database import Connection
from tidings.storage.retention import EventRetention
from tidings.storage.store import Store

KEY = "bench-events-key-" + "e" * 32
PG_ADMIN = os.environ.get("TIDINGS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "tidings_bench_events"
DAY_MS = 86_400_000
SPAN_MS = 7 * DAY_MS - 60_000  # inside the default retention, so every event is readable
PER_CALL = 100  # events per EventLog.add_many call: they share one stored_at
PER_TX = 200  # calls per transaction
# A realistic mix: mostly messages and delivery attempts, some resource changes.
MIX = (
    [EventType.MESSAGE_ADDED] * 40
    + [EventType.MESSAGE_PUBLISHED_OK] * 40
    + [EventType.MESSAGE_PUBLISHED_NOT_OK] * 12
    + [EventType.QUEUE_ADDED, EventType.QUEUE_UPDATED, EventType.QUEUE_DELETED]
    + [EventType.LISTENER_ADDED, EventType.LISTENER_UPDATED, EventType.LISTENER_DELETED]
    + [EventType.API_KEY_ADDED, EventType.API_KEY_UPDATED]
)


def _event(org_id: str, event_type: EventType, rng: random.Random) -> NewEvent:
    queue = Ref(f"q{rng.randrange(50)}", "orders")
    if event_type.value.startswith("api_key"):
        return NewEvent(org_id, event_type, api_key=Ref(new_id(), "ci"))
    if event_type.value.startswith("queue"):
        return NewEvent(org_id, event_type, queue=queue)
    listener = Ref(f"l{rng.randrange(200)}", "shop")
    if event_type.value.startswith("listener"):
        return NewEvent(org_id, event_type, queue=queue, listener=listener)
    message = Ref(new_id(), None if rng.random() < 0.5 else "order")
    if event_type is EventType.MESSAGE_ADDED:
        return NewEvent(org_id, event_type, queue=queue, message=message)
    return NewEvent(org_id, event_type, queue=queue, listener=listener, message=message)


async def fill(url: str, total: int) -> str:
    """Fill ``total`` events over the last 7 days; answers the organization's id."""
    end = now_ms()
    clock = ManualClock(end - SPAN_MS)
    store = await Store.open(url, clock=clock)
    try:
        org, _ = await store.organizations.create_with_key("bench", KEY, "bench", operator_scopes())
        calls = max(1, total // PER_CALL)
        step_ms = SPAN_MS // calls
        rng = random.Random(5)
        started, written = time.perf_counter(), 0
        while written < total:
            # Batches drawn outside the transaction: ``run`` may run its body again.
            batches = []
            for _ in range(PER_TX):
                n = min(PER_CALL, total - written - sum(map(len, batches)))
                if n <= 0:
                    break
                batches.append([_event(org.id, rng.choice(MIX), rng) for _ in range(n)])

            async def fill(tx: Connection, batches: list[list[NewEvent]] = batches) -> None:
                for batch in batches:
                    await store.events.add_many(tx, batch)
                    clock.advance(step_ms)

            await store.db.run(fill)
            written += sum(map(len, batches))
            print(f"\r  filled {written:,} events", end="", flush=True)
        elapsed = time.perf_counter() - started
        print(f" in {elapsed:.1f} s ({written / elapsed:,.0f} events/s)")
        # What a running server would already have done: drop counters no window needs.
        clock.set(end)
        await EventRetention(store.events, 7 * DAY_MS, clock=clock, pause_s=0).run_once()
        return org.id
    finally:
        await store.close()


async def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'events.db'}"
    if kind != "postgres":
        return kind  # a URL given as is: the caller owns that database
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DB}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DB


async def cursors(url: str, org_id: str, count: int) -> list[tuple[int, str]]:
    """Random (stored_at, id) positions across the table, to start pages from."""
    store = await Store.open(url, migrate=False)
    try:
        rng, found = random.Random(7), []
        start = now_ms() - SPAN_MS
        for _ in range(count):
            at = start + rng.randrange(SPAN_MS)
            page = await store.events.read(org_id, None, None, at, 1)
            if page:
                found.append((page[0].stored_at, page[0].id))
        if url.startswith("postgresql"):
            await store.db.execute("ANALYZE")  # what autovacuum would do after a bulk load
        return found
    finally:
        await store.close()


def start_server(url: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TIDINGS_RATE_LIMIT": "0"}
    log = (workdir / "server.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--port", str(port), "--database", url],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with session.get(base + "/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready")


async def timed(
    requests: int, make: Callable[[int], Awaitable[None]], warmup: int = 20
) -> list[float]:
    for i in range(warmup):
        await make(i)
    samples = []
    for i in range(requests):
        started = time.perf_counter()
        await make(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(base: str, points: list[tuple[int, str]], requests: int) -> None:
    headers = {"X-API-KEY": KEY}
    async with aiohttp.ClientSession(headers=headers) as session:
        await wait_ready(session, base)

        def getter(
            path: str, params: Callable[[int], dict[str, str]]
        ) -> Callable[[int], Awaitable[None]]:
            async def get(i: int) -> None:
                async with session.get(base + path, params=params(i)) as response:
                    assert response.status == 200, await response.text()
                    await response.read()

            return get

        def after(i: int) -> dict[str, str]:
            stored_at, event_id = points[i % len(points)]
            return {"startAfter": str(stored_at), "startAfterId": event_id}

        scenarios: dict[str, Callable[[int], Awaitable[None]]] = {
            "GET /events (first 100)": getter("/v1/events", lambda i: {}),
            "GET /events?limit=1000": getter("/v1/events", lambda i: {"limit": "1000"}),
            "GET /events cursor at a random position": getter("/v1/events", after),
            "GET /events?events=queues cursor": getter(
                "/v1/events", lambda i: {"events": "queues", **after(i)}
            ),
            "GET /events?events=api_keys (rare kind)": getter(
                "/v1/events", lambda i: {"events": "api_keys"}
            ),
            "GET /stats/messages": getter("/v1/stats/messages", lambda i: {}),
        }
        print(f"{'scenario':44} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for name, make in scenarios.items():
            samples = await timed(requests, make)
            print(
                f"{name:44} {statistics.median(samples):8.2f} {_quantile(samples, 0.99):8.2f}"
                f" {max(samples):8.2f}"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--port", type=int, default=8097)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tidings-bench-events-") as tmp:
        workdir = Path(tmp)
        url = await fresh_database(args.database, workdir)
        print(f"database: {url.split('@')[-1]}  events: {args.events:,}")
        org_id = await fill(url, args.events)
        points = await cursors(url, org_id, 200)
        server = start_server(url, args.port, workdir)
        try:
            print(f"load average before measuring: {os.getloadavg()}")
            await measure(f"http://127.0.0.1:{args.port}", points, args.requests)
            print(f"load average after measuring: {os.getloadavg()}")
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    asyncio.run(main())
