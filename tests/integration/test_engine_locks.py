"""No engine lock blocks ingest (issue 12, item 9): an engine paused in the middle of
a claim must not hold a lock that a ``POST .../messages`` on another node waits for.

PostgreSQL only (SQLite has one writer per file, so there is no row lock to hold):
a trigger makes the claim's ``UPDATE`` wait for an advisory lock the test holds, so
the claim stands still with its row locks taken, as a stopped process would leave it.
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
