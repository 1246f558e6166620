"""The engine's per-row statements never look their row up through a partial index
of pending rows on PostgreSQL: without statistics (a backlog that grew faster than
autovacuum analyzes) the planner takes such an index for tiny, and the listener's
whole backlog was scanned for every recorded attempt (10 ms a row at 20,000 pending).
"""

from __future__ import annotations

import re

import asyncpg
import pytest

from tests.conftest import start_server
from tests.integration.test_delivery import post
from tidings.config import Settings
from tidings.storage import claims, deliveries, health

# Each statement's arguments for a delivery (message id, listener id).
_ARGS = {
    "_RECORD": lambda mid, lid: [mid, lid, "delivered", 1, 200, 1, None],
    "_RELEASE": lambda mid, lid: [mid, lid],
    "_CLAIMED_ONE": lambda mid, lid: [mid, lid],
}


@pytest.mark.parametrize("statement", ["_RECORD", "_RELEASE"])
async def test_row_lookups_avoid_partial_indexes_without_statistics(
    settings: Settings, statement: str
) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL planner")
    async with start_server(settings, engine=False) as server:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        r = await server.call(
            "POST",
            f"/queues/{qid}/listeners",
            json={
                "name": "l",
                "notify_url": "http://127.0.0.1:9/h",
                "liveness_url": "http://127.0.0.1:9/l",
            },
        )
        assert r.status_code == 200, r.text
        for n in range(50):
            await post(server, qid, data=str(n))
    conn = await asyncpg.connect(settings.database_url)
    try:
        # As after a burst: no statistics for the table yet.
        await conn.execute("SELECT pg_stat_reset_single_table_counters('deliveries'::regclass)")
        await conn.execute("DELETE FROM pg_statistic WHERE starelid = 'deliveries'::regclass")
        mid, lid = await conn.fetchrow("SELECT message_id, listener_id FROM deliveries LIMIT 1")
        sql = getattr(deliveries, statement)
        args = _ARGS[statement](mid, lid)
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
    finally:
        await conn.close()
    assert "_due" not in plan, plan  # ix_deliveries_due, ix_deliveries_listener_due


@pytest.mark.parametrize("statement", ["_RECORD", "_RELEASE", "_CLAIMED_ONE"])
async def test_row_lookups_are_exact_in_a_generic_plan(settings: Settings, statement: str) -> None:
    """asyncpg prepares each statement once per connection, and PostgreSQL keeps one
    generic plan for it until the table is analyzed again. Planned on an empty table
    (a new database), the record's look-up went through ix_deliveries_listener_state
    (listener_id, state, message_id) matching the listener alone, reading every
    delivery of the listener to find one message's: after a burst of 10,000 messages,
    recording 130 outcomes took 150 ms and delivery ran at 640/s (docs/benchmarks.md).
    Whichever index the plan takes, it must descend to the row by its whole key."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL planner")
    args = ", ".join("NULL" if a is None else repr(a) for a in _ARGS[statement]("m", "l"))
    plan = await _generic_plan(settings, getattr(deliveries, statement), args)
    scans = re.findall(
        r"(?:Index Scan using|Bitmap Index Scan on) (\S*deliveries\S*).*\n\s+Index Cond: (.*)", plan
    )
    assert scans, plan
    for index, cond in scans:
        # The primary key (message_id, listener_id) from its first column, or the
        # listener-state index with all three of its columns.
        whole = {"deliveries_pkey": ["message_id"]}.get(
            index, ["listener_id", "state", "message_id"]
        )
        assert all(f"({column})" in cond for column in whole), plan


_CLAIM_STATEMENTS = {
    "candidates": (
        claims.candidates_sql("postgresql", "= ANY($3::text[])"),
        "1, 2, ARRAY['x']::text[], 'a', 100",
    ),
    "trials": (health._TAKE_TRIALS_POSTGRES, "1, 2, 10"),
    "leased": (claims._LEASED, "ARRAY['l1', 'l2']::text[], 1, 2"),
    "lease": (
        deliveries._LEASE_POSTGRES,
        "ARRAY['l1', 'l2']::text[], ARRAY[5, 5]::int[], ARRAY[NULL, NULL]::text[], 1, 'a', 2, 3, 4",
    ),
    "lease_counting": (
        deliveries._LEASE_COUNTING_POSTGRES,
        "ARRAY['l1']::text[], ARRAY[1]::int[], ARRAY[NULL]::text[], 1, 'a', 2, 3,"
        " ARRAY[5, 4, 3]::int[], ARRAY[2]::int[], 4",
    ),
}


@pytest.mark.parametrize("statement", list(_CLAIM_STATEMENTS))
async def test_the_claim_probes_each_listener_in_a_generic_plan(
    settings: Settings, statement: str
) -> None:
    """Planned on empty tables, the claim's candidates joined their EXISTS as a
    semi-join that walked every due delivery per listener (72 ms a claim with 100
    listeners) and the lease hashed the whole messages table. Every look-up of
    deliveries (and of lease counts) must be bounded by its listener, and messages,
    queues and listeners read by key (the candidates and the trials scan the
    listeners: they are what is being chosen)."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL planner")
    sql, args = _CLAIM_STATEMENTS[statement]
    plan = await _generic_plan(settings, sql, args)
    lines = plan.splitlines()
    probes = 0
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if re.search(r"Index (?:Only )?Scan (?:using|on) \S*(?:deliveries|lease_counts)", line):
            probes += 1
            assert "Index Cond:" in after and "listener_id" in after, plan
        # The lease's UPDATE finds its rows by ctid (a sequential scan only while a
        # table is under ~40 pages: deliveries.py).
        if "Seq Scan on deliveries" in line:
            assert "ctid" in after, plan
    assert probes, plan
    chosen = {"candidates", "trials"}
    scanned = {"messages", "queues"} | (set() if statement in chosen else {"listeners"})
    assert not [t for t in scanned if f"Seq Scan on {t}" in plan], plan


async def _generic_plan(settings: Settings, sql: str, args: str) -> str:
    """The generic plan of ``sql`` made on empty copies of the tables with their
    indexes, as in a new database (the suite's shared database has statistics), in a
    schema gone with the rollback."""
    conn = await asyncpg.connect(settings.database_url)
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute("CREATE SCHEMA fresh")
        for table in ("queues", "listeners", "messages", "deliveries", "lease_counts"):
            await conn.execute(f"CREATE TABLE fresh.{table} (LIKE public.{table} INCLUDING ALL)")
        await conn.execute("SET LOCAL search_path = fresh")
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE lookup AS {sql}")
        rows = await conn.fetch(f"EXPLAIN EXECUTE lookup({args})")
        await conn.execute("DEALLOCATE lookup")
    finally:
        await tx.rollback()
        await conn.close()
    return "\n".join(r[0] for r in rows)
