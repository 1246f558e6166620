"""No engine lock blocks ingest (issue 12, item 9): an engine paused in the middle of
a claim must not hold a lock that a ``POST .../messages`` on another node waits for.

PostgreSQL only (SQLite has one writer per file, so there is no row lock to hold):
a trigger makes the claim's ``UPDATE`` wait for an advisory lock the test holds, so
the claim stands still with its row locks taken, as a stopped process would leave it.
Also: no claim leases a listener's deliveries while its delete is under way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import start_server
from tests.integration.gates import gate_trigger
from tests.integration.test_delivery import add_listener, post, until
from tests.receivers import receiver
from tidings.config import Settings
from tidings.domain.ids import now_ms

GATE = 7011
_TRIGGER, _DROP = gate_trigger(
    "test_probe_gate", "listeners", "NEW.probe_lease_until <> OLD.probe_lease_until", GATE
)


@pytest.fixture
async def gate(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: no row locks between nodes")
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(_DROP + _TRIGGER)
        yield conn
    finally:
        await conn.execute("SELECT pg_advisory_unlock_all()")
        await conn.execute(_DROP)
        await conn.close()


async def _waiting_on_gate(gate: asyncpg.Connection) -> bool:
    waiting = await gate.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1",
        GATE,
    )
    return bool(waiting)


async def test_a_stalled_probe_claim_does_not_block_ingest(
    settings: Settings, gate: asyncpg.Connection
) -> None:
    async with start_server(settings, engine=False) as server, receiver() as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        await add_listener(server, qid, rx)  # its first probe is due at once
        await gate.execute(f"SELECT pg_advisory_lock({GATE})")
        now = now_ms()
        claim = asyncio.create_task(server.store.probes.claim(now, now + 5000, now + 30_000, 8))
        await until(lambda: _waiting_on_gate(gate))
        # The claim now holds its lock on the listener row: a message to that
        # listener's queue must still be committed (its deliveries row's foreign key
        # takes FOR KEY SHARE on the same row).
        await asyncio.wait_for(post(server, qid), 10)
        await gate.execute(f"SELECT pg_advisory_unlock({GATE})")
        assert [p.listener_id for p in await claim] != []


async def _waiting_for_a_row(conn: asyncpg.Connection, holder: int) -> bool:
    """Whether some session waits for a lock the session ``holder`` holds."""
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holder
    )
    return bool(waiting)


async def test_no_delivery_of_a_listener_is_claimed_while_its_delete_is_under_way(
    settings: Settings, gate: asyncpg.Connection
) -> None:
    """A listener's delete locks its deliveries, then deletes the row (the cascade takes
    the deliveries). A message committed in between has a delivery the delete did not
    lock; had an engine claimed it, the recorder would hold that row while it waits for
    the listener row the delete holds: a deadlock (seen in test_concurrency under load).
    So no claim leases the listener's deliveries until the delete has committed."""
    async with start_server(settings, engine=False) as server, receiver() as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        lid = (await add_listener(server, qid, rx))["id"]
        await post(server, qid)
        await post(server, qid)
        # The delete stands still on the first delivery, which this session holds.
        holder = await asyncpg.connect(settings.database_url)
        tx = holder.transaction()
        await tx.start()
        try:
            await holder.execute(
                "SELECT 1 FROM (SELECT message_id FROM deliveries WHERE listener_id = $1"
                " ORDER BY message_id LIMIT 1) d JOIN deliveries USING (message_id)"
                " WHERE listener_id = $1 FOR UPDATE OF deliveries",
                lid,
            )
            delete = asyncio.create_task(server.call("DELETE", f"/queues/{qid}/listeners/{lid}"))
            holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
            await until(lambda: _waiting_for_a_row(gate, holder_pid))
            await post(server, qid)  # its delivery is not locked by the delete
            now = now_ms()
            claimed = await server.store.deliveries.claim(1, now, now + 30_000, 10, 10, [])
            assert [c.listener_id for c in claimed] == []
        finally:
            await tx.rollback()
            await holder.close()
        assert (await delete).status_code == 200
        left = await gate.fetchval("SELECT count(*) FROM deliveries WHERE listener_id = $1", lid)
        assert left == 0
