"""Publishing (issue 14): ``python -m bench.publishing {keys,batch,delayed,purge,all}
[--db sqlite,postgres] [--seconds S] [--rounds N]``; also ``python -m bench publishing``.

Every figure is a ratio to a baseline measured in the same run, on the same server:

* ``keys``: ingest with a fresh ``Idempotency-Key`` on every request vs without
  (``wrk -c64``, rounds alternate); goal >= 0.8.
* ``batch``: messages/s through ``.../messages/batch`` with 100 per request
  (``wrk -c8``) vs single-message POSTs (``wrk -c64``), alternating; goal >= 5.
  ``batch`` has one listener (the engine sends meanwhile), ``batch0`` none.
* ``delayed``: idle CPU seconds per second of a server (API + engine processes, and
  on PostgreSQL the database's backends) holding 100,000 delayed messages vs one
  holding 100, both running and sampled over the same windows; goal <= 1 (noise
  allowing).
* ``purge``: ingest (``wrk -c64``) while the purge deletes 1,000,000 expired
  messages (each with a delivered delivery) vs ingest before and after the purge;
  goal >= 0.8. Also the purge's own rate, to say whether it keeps up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import uvloop

from bench import wrk
from bench.api import MESSAGE, Api
from bench.memory import _children
from bench.procs import cpu_s, database, load, receiver, tidings
from bench.stats import median, ratio

HEADERS = {"X-API-KEY": "", "Content-Type": "application/json"}
# 8 batches of 100 in flight: 800 messages, below the ingest queue's cap (2,048).
BATCH_CONNECTIONS = 8
DAY_MS = 86_400_000
# A fresh key per request (one wrk thread, so a counter is unique within a run).
_KEYED_LUA = """
local n = 0
local prefix = "{prefix}-"
request = function()
  n = n + 1
  wrk.headers["Idempotency-Key"] = prefix .. n
  return wrk.format()
end
"""


def _headers() -> dict[str, str]:
    from bench.procs import API_KEY

    return {**HEADERS, "X-API-KEY": API_KEY}


async def _setup(server_url: str, session: aiohttp.ClientSession, recv_url: str) -> str:
    api = Api(server_url, session)
    queue_id = await api.queue(f"bench-{uuid.uuid4().hex[:6]}")
    await api.listener(queue_id, recv_url, "fast")
    return queue_id


# --- keys and batch ------------------------------------------------------------------


async def _keys(kind: str, seconds: float, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"without": [], "with_key": []}
    errors = 0
    async with (
        database(kind) as url,
        receiver() as recv,
        tidings(url) as server,
        aiohttp.ClientSession() as session,
    ):
        queue_id = await _setup(server.url, session, recv.url)
        target = f"{server.url}/v1/queues/{queue_id}/messages"
        await wrk.post(target, MESSAGE, _headers(), 64, 2)  # warm-up
        for n in range(rounds):
            order = ["without", "with_key"] if n % 2 == 0 else ["with_key", "without"]
            for which in order:
                lua = _KEYED_LUA.format(prefix=uuid.uuid4().hex) if which == "with_key" else ""
                result = await wrk.post(target, MESSAGE, _headers(), 64, seconds, lua)
                errors += result.errors
                runs[which].append(result.requests_per_s)
    return {
        "db": kind,
        "without_rps": runs["without"],
        "with_key_rps": runs["with_key"],
        "ratio": ratio(median(runs["with_key"]), median(runs["without"])),
        "errors": errors,
        "load": load(),
    }


def _batch_body(size: int) -> bytes:
    item = json.loads(MESSAGE)
    return json.dumps({"messages": [item] * size}, separators=(",", ":")).encode()


async def _batch(kind: str, seconds: float, rounds: int, listeners: int = 1) -> dict[str, Any]:
    """``listeners=0``: the queue has none, so the engine sends nothing while both are
    measured (on 2 cores the engine's sending competes with the API for CPU)."""
    runs: dict[str, list[float]] = {"single": [], "batch100": []}
    errors = 0
    body = _batch_body(100)
    async with (
        database(kind) as url,
        receiver() as recv,
        tidings(url) as server,
        aiohttp.ClientSession() as session,
    ):
        if listeners:
            queue_id = await _setup(server.url, session, recv.url)
        else:
            queue_id = await Api(server.url, session).queue("bench-no-listener")
        single = f"{server.url}/v1/queues/{queue_id}/messages"
        batch = single + "/batch"
        await wrk.post(single, MESSAGE, _headers(), 64, 2)
        await wrk.post(batch, body, _headers(), BATCH_CONNECTIONS, 2)
        for n in range(rounds):
            order = ["single", "batch100"] if n % 2 == 0 else ["batch100", "single"]
            for which in order:
                if which == "single":
                    result = await wrk.post(single, MESSAGE, _headers(), 64, seconds)
                    runs[which].append(result.requests_per_s)
                else:
                    result = await wrk.post(batch, body, _headers(), BATCH_CONNECTIONS, seconds)
                    runs[which].append(result.requests_per_s * 100)
                errors += result.errors
    return {
        "db": kind,
        "listeners": listeners,
        "single_msg_per_s": runs["single"],
        "batch100_msg_per_s": runs["batch100"],
        "ratio": ratio(median(runs["batch100"]), median(runs["single"])),
        "errors": errors,
        "load": load(),
    }


# --- delayed -------------------------------------------------------------------------


def _cpu_s(pids: list[int]) -> float:
    return sum(cpu_s(pid) for pid in pids)


async def _pg_backends(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


async def _seed_delayed(server_url: str, queue_id: str, count: int) -> None:
    item = {"data": "later", "delay": 3600}
    async with aiohttp.ClientSession() as session:
        api = Api(server_url, session)
        left = list(range(0, count, 100))

        async def worker() -> None:
            while left:
                start = left.pop()
                size = min(100, count - start)
                await api.call(
                    "POST", f"/queues/{queue_id}/messages/batch", {"messages": [item] * size}
                )

        await asyncio.gather(*(worker() for _ in range(8)))


async def _delayed(kind: str, seconds: float, rounds: int) -> dict[str, Any]:
    sizes = (100, 100_000)
    async with (
        database(kind) as url_small,
        database(kind) as url_large,
        receiver() as recv,
        tidings(url_small) as small,
        tidings(url_large) as large,
        aiohttp.ClientSession() as session,
    ):
        servers = {sizes[0]: (small, url_small), sizes[1]: (large, url_large)}
        for size, (server, _) in servers.items():
            queue_id = await _setup(server.url, session, recv.url)
            await _seed_delayed(server.url, queue_id, size)
        await asyncio.sleep(5)  # let the seeding's work (and autovacuum) settle
        samples: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(rounds):
            pids = {}
            for size, (server, url) in servers.items():
                pids[size] = [server.popen.pid, *_children(server.popen.pid)]
                if kind == "postgres":
                    pids[size] += await _pg_backends(url)
            before = {size: _cpu_s(p) for size, p in pids.items()}
            started = time.monotonic()
            await asyncio.sleep(seconds)
            elapsed = time.monotonic() - started
            for size, p in pids.items():
                samples[size].append((_cpu_s(p) - before[size]) / elapsed)
    return {
        "db": kind,
        "idle_cpu_s_per_s": {str(size): [round(x, 4) for x in s] for size, s in samples.items()},
        "ratio_100k_to_100": ratio(median(samples[sizes[1]]), median(samples[sizes[0]])),
        "load": load(),
    }


# --- purge ---------------------------------------------------------------------------


async def _ids(server_url: str, session: aiohttp.ClientSession, queue_id: str) -> dict[str, str]:
    api = Api(server_url, session)
    queue = (await api.call("GET", f"/queues/{queue_id}"))["queue"]
    listeners = await api.call("GET", f"/queues/{queue_id}/listeners")
    org = (await api.call("GET", "/events?limit=1"))["events"][0]["client"]["id"]
    return {"org": org, "queue": queue["id"], "listener": listeners["listeners"][0]["id"]}


async def _seed_expired(kind: str, url: str, ids: dict[str, str], count: int) -> None:
    """``count`` messages two days old, each delivered to the queue's listener."""
    old = int(time.time() * 1000) - 2 * DAY_MS
    if kind == "postgres":
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO messages (id, org_id, queue_id, name, data, created_at, updated_at)"
                " SELECT 'seed' || lpad(g::text, 9, '0'), $1, $2, 'old', '{\"n\": 1}', $3, $3"
                " FROM generate_series(1, $4) g",
                ids["org"],
                ids["queue"],
                old,
                count,
            )
            await conn.execute(
                "INSERT INTO deliveries (message_id, listener_id, org_id, state, attempts,"
                " last_status, last_attempt_at)"
                " SELECT id, $1, org_id, 'delivered', 1, 200, created_at FROM messages"
                " WHERE queue_id = $2 AND name = 'old'",
                ids["listener"],
                ids["queue"],
            )
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        return

    def seed() -> None:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60)
        try:
            conn.execute(
                "INSERT INTO messages (id, org_id, queue_id, name, data, created_at, updated_at)"
                " WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?4)"
                " SELECT 'seed' || printf('%09d', n), ?1, ?2, 'old', '{\"n\": 1}', ?3, ?3 FROM g",
                (ids["org"], ids["queue"], old, count),
            )
            conn.execute(
                "INSERT INTO deliveries (message_id, listener_id, org_id, state, attempts,"
                " last_status, last_attempt_at)"
                " SELECT id, ?1, org_id, 'delivered', 1, 200, created_at FROM messages"
                " WHERE queue_id = ?2 AND name = 'old'",
                (ids["listener"], ids["queue"]),
            )
            conn.commit()
            # Checkpointed here, not by the server's first commits: otherwise the
            # "before" baseline pays for copying the seed's ~1M rows into the database.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    await asyncio.to_thread(seed)


async def _old_left(kind: str, url: str) -> int:
    sql = "SELECT count(*) FROM messages WHERE name = 'old'"
    if kind == "postgres":
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    def count() -> int:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()

    return await asyncio.to_thread(count)


async def _purge(kind: str, seconds: float, count: int, max_windows: int) -> dict[str, Any]:
    async with (
        database(kind) as url,
        receiver() as recv,
        tidings(url, TIDINGS_PURGE_INTERVAL="1") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(server.url, session)
        queue_id = await _setup(server.url, session, recv.url)
        await api.call("PUT", f"/queues/{queue_id}", {"retention_seconds": None})
        await api.post(queue_id)  # an event, for the organization's id
        ids = await _ids(server.url, session, queue_id)
        seeded = time.monotonic()
        await _seed_expired(kind, url, ids, count)
        seed_s = time.monotonic() - seeded
        target = f"{server.url}/v1/queues/{queue_id}/messages"
        await wrk.post(target, MESSAGE, _headers(), 64, 2)  # warm-up
        before = (await wrk.post(target, MESSAGE, _headers(), 64, seconds)).requests_per_s
        # Messages older than an hour are now past retention: the purge starts.
        await api.call("PUT", f"/queues/{queue_id}", {"retention_seconds": 3600})
        started = time.monotonic()
        during: list[float] = []
        progress: list[tuple[float, int]] = []
        for _ in range(max_windows):
            result = await wrk.post(target, MESSAGE, _headers(), 64, seconds)
            left = await _old_left(kind, url)
            during.append(result.requests_per_s)
            progress.append((round(time.monotonic() - started, 1), left))
            if left == 0:
                break
        purge_s = time.monotonic() - started
        left = progress[-1][1]
        while left:  # finish the purge before the "after" baseline
            await asyncio.sleep(2)
            left = await _old_left(kind, url)
        purge_done_s = time.monotonic() - started
        after = (await wrk.post(target, MESSAGE, _headers(), 64, seconds)).requests_per_s
    baseline = (before + after) / 2
    return {
        "db": kind,
        "expired": count,
        "seed_s": round(seed_s, 1),
        "ingest_before_rps": round(before),
        "ingest_during_purge_rps": [round(x) for x in during],
        "ingest_after_rps": round(after),
        "ratio": ratio(median(during), baseline),
        "progress_s_left": progress,
        "purge_s": round(purge_done_s, 1),
        "purge_msgs_per_s_during_ingest": round((count - progress[-1][1]) / purge_s),
        "ingest_msgs_per_s_during_purge": round(median(during)),
        "load": load(),
    }


async def run_all(
    names: list[str], kinds: list[str], seconds: float, rounds: int, expired: int
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for kind in kinds:
        for name in names:
            print(f"[bench.publishing] {name} on {kind} (load {load()})", flush=True)
            if name == "keys":
                row = await _keys(kind, seconds, rounds)
            elif name == "batch":
                row = await _batch(kind, seconds, rounds)
            elif name == "batch0":
                row = await _batch(kind, seconds, rounds, listeners=0)
            elif name == "delayed":
                row = await _delayed(kind, 2 * seconds, rounds)
            else:
                row = await _purge(kind, seconds, expired, 30)
            row["scenario"] = name
            print(json.dumps(row), flush=True)
            rows.append(row)
    return {"name": "publishing", "rows": rows}


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    """The ``python -m bench publishing`` entry."""
    seconds = 5.0 if quick else 10.0
    names = ["keys", "batch", "batch0", "delayed", "purge"]
    return await run_all(names, kinds, seconds, 3, 1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publishing", description=__doc__)
    parser.add_argument("scenario", choices=["all", "keys", "batch", "batch0", "delayed", "purge"])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--expired", type=int, default=1_000_000)
    args = parser.parse_args()
    everything = ["keys", "batch", "batch0", "delayed", "purge"]
    names = everything if args.scenario == "all" else [args.scenario]
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    uvloop.run(run_all(names, kinds, args.seconds, args.rounds, args.expired))


if __name__ == "__main__":
    main()
