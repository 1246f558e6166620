"""What one message costs PostgreSQL: ``python -m bench.pgcost [--messages N] [--listeners L]``.

Starts ``tidings serve`` (API + engine child) on a fresh PostgreSQL database with
``L`` listeners on the fast receiver, posts ``N`` messages with 32 in flight, waits
until every delivery arrived, and reports per message: bytes added to each table
(with its indexes and TOAST), WAL bytes (``pg_current_wal_lsn`` before/after), and
CPU seconds of the tidings processes (API, engine) and of every PostgreSQL process
(``/proc``), so the share that lands on the primary is measured, not guessed; and
the row versions written per message on each table (inserts, updates and how many of
those were HOT: a HOT update adds no index entries), from ``pg_stat_user_tables``;
and, where the server preloads ``pg_stat_statements`` (``shared_preload_libraries``,
a restart), each statement's execution time and calls per message, the costliest
first: which statement the PostgreSQL CPU above goes to (its execution only: parsing,
the protocol and commits are not in it).
Other load on the machine adds to the PostgreSQL figure (autovacuum, checkpoints of
other databases): run it on a quiet machine, twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import aiohttp
import asyncpg
import uvloop

from bench import arrivals
from bench.api import MESSAGE, Api
from bench.loadgen import wait_count
from bench.memory import _children
from bench.procs import cpu_s, database, receiver, tidings

TABLES = ("messages", "deliveries", "events", "attempts", "event_counts", "listeners")


async def _backends(conn: asyncpg.Connection) -> dict[int, str]:
    """PostgreSQL's processes by role: this database's backends (tidings' pools) and the
    shared background processes (WAL writer, checkpointer, ...; other databases on the
    same server add to those)."""
    rows = await conn.fetch(
        "SELECT pid, datname = current_database() AS ours, backend_type FROM pg_stat_activity"
    )
    return {
        r["pid"]: "this database" if r["ours"] else r["backend_type"]
        for r in rows
        if r["ours"] or r["backend_type"] != "client backend"
    }


async def _sizes(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT c.relname, pg_total_relation_size(c.oid) AS bytes FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'r'"
    )
    return {r["relname"]: int(r["bytes"]) for r in rows}


async def _row_writes(conn: asyncpg.Connection) -> dict[str, tuple[int, int, int]]:
    rows = await conn.fetch(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
    )
    return {r["relname"]: (r["n_tup_ins"], r["n_tup_upd"], r["n_tup_hot_upd"]) for r in rows}


async def _statements(conn: asyncpg.Connection) -> dict[str, tuple[float, int]] | None:
    """Execution ms and calls per statement of this database so far, or None without
    pg_stat_statements."""
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rows = await conn.fetch(
            "SELECT query, total_exec_time, calls FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    except asyncpg.PostgresError:  # not preloaded: the view cannot be read
        return None
    out: dict[str, tuple[float, int]] = {}
    for r in rows:
        text = " ".join(r["query"].split())[:100]
        ms, calls = out.get(text, (0.0, 0))
        out[text] = (ms + r["total_exec_time"], calls + r["calls"])
    return out


def _statement_costs(
    after: dict[str, tuple[float, int]], before: dict[str, tuple[float, int]], per: float
) -> list[str]:
    costs = []
    for text, (ms, calls) in after.items():
        ms0, calls0 = before.get(text, (0.0, 0))
        if calls > calls0:
            costs.append(((ms - ms0) * 1000 / per, (calls - calls0) / per, text))
    return [f"{us:.1f} us, {n:.2f} calls: {text}" for us, n, text in sorted(costs)[::-1][:12]]


def _per(
    after: dict[str, tuple[int, int, int]], before: dict[str, tuple[int, int, int]], per: float
) -> dict[str, tuple[float, ...]]:
    return {
        t: tuple(round((a - b) / per, 2) for a, b in zip(v, before.get(t, (0, 0, 0)), strict=True))
        for t, v in after.items()
    }


async def measure(messages: int, listeners: int) -> dict[str, Any]:
    async with (
        database("postgres") as url,
        receiver() as recv,
        aiohttp.ClientSession() as s,
        tidings(url) as server,
    ):
        api = Api(server.url, s)
        queue_id = await api.queue()
        for n in range(listeners):
            await api.listener(queue_id, recv.url, f"l{n}")
        await api.post(queue_id)  # warm every path once
        await wait_count(lambda: arrivals.count(s, recv.url), listeners, 60)
        await arrivals.reset(s, recv.url)
        tree = [server.pid, *_children(server.pid)]
        conn = await asyncpg.connect(url)
        try:
            sizes, lsn = await _sizes(conn), await conn.fetchval("SELECT pg_current_wal_lsn()")
            writes = await _row_writes(conn)
            statements = await _statements(conn)
            roles = await _backends(conn)
            pg = {pid: cpu_s(pid) for pid in roles}
            ours = {pid: cpu_s(pid) for pid in tree}
            started = time.monotonic()
            gate = asyncio.Semaphore(32)

            async def one() -> None:
                async with gate:
                    await api.post(queue_id, MESSAGE)

            await asyncio.gather(*(one() for _ in range(messages)))
            posted = time.monotonic() - started
            await wait_count(lambda: arrivals.count(s, recv.url), messages * listeners, 600)
            took = time.monotonic() - started
            await asyncio.sleep(1.0)  # the recorder's last batch
            pg_cpu: dict[str, float] = {}
            for pid, role in roles.items():
                pg_cpu[role] = pg_cpu.get(role, 0.0) + cpu_s(pid) - pg[pid]
            our_cpu = {pid: cpu_s(pid) - before for pid, before in ours.items()}
            wal = await conn.fetchval(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)", lsn
            )
            after = await _sizes(conn)
            statements_after = await _statements(conn)
            # A backend reports its counts after a transaction at most once a second,
            # and an idle one 10 s after its last (PostgreSQL 15's statistics).
            await asyncio.sleep(11.0)
            writes_after = await _row_writes(conn)
        finally:
            await conn.close()
    per = float(messages)
    return {
        "messages": messages,
        "listeners": listeners,
        "posted_per_s": round(messages / posted),
        "delivered_all_s": round(took, 2),
        "wal_bytes_per_message": round(float(wal) / per),
        "table_bytes_per_message": {
            t: round((after.get(t, 0) - sizes.get(t, 0)) / per)
            for t in sorted(after)
            if after.get(t, 0) != sizes.get(t, 0)
        },
        "row_writes_per_message (inserts, updates, of them HOT)": {
            t: w for t, w in sorted(_per(writes_after, writes, per).items()) if any(w)
        },
        "cpu_us_per_message": {
            "tidings (all processes)": round(sum(our_cpu.values()) / per * 1e6),
            **{f"pid {pid}": round(v / per * 1e6) for pid, v in our_cpu.items()},
            **{f"postgresql {role}": round(v / per * 1e6) for role, v in pg_cpu.items()},
        },
        "load": os.getloadavg(),
        **(
            {
                "statements (execution per message)": _statement_costs(
                    statements_after, statements, per
                )
            }
            if statements is not None and statements_after is not None
            else {}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pgcost", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--listeners", type=int, default=1)
    args = parser.parse_args()
    result = uvloop.run(measure(args.messages, args.listeners))
    for key, value in result.items():
        if isinstance(value, list):
            print(f"{key}:", *(f"  {line}" for line in value), sep="\n")
        else:
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
