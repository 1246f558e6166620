"""The engine registry on both databases (storage/engines.py): liveness locks, claims
that name their engine, and the takeover of a dead engine's claims."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.conftest import Running
from tests.integration.test_delivery import add_listener, post, until
from tests.receivers import receiver
from tidings.config import Settings
from tidings.domain.ids import now_ms
from tidings.storage.database import LockTaken
from tidings.storage.engines import Membership


async def _lease(server: Running, message_id: str) -> tuple[int, int | None]:
    row = await server.store.db.fetchrow(
        "SELECT lease_until, claimed_by FROM deliveries WHERE message_id = $1", message_id
    )
    assert row is not None
    return row["lease_until"], row["claimed_by"]


async def _registered(server: Running) -> set[int]:
    return {r["id"] for r in await server.store.db.fetch("SELECT id FROM engines")}


async def _claim_one(server: Running, me: Membership, queue: dict[str, Any]) -> str:
    async with receiver() as rx:
        await add_listener(server, queue["id"], rx)
    mid = await post(server, queue["id"])
    now = now_ms() + 1000
    [claimed] = await server.store.deliveries.claim(me.id, now, now + 60_000, 10, 10, [])
    assert claimed.message_id == mid
    return mid


@pytest.fixture
async def idle_queue(idle: Running) -> dict[str, Any]:
    response = await idle.call("POST", "/v1/queues", json={"name": "orders"})
    body: dict[str, Any] = response.json()["queue"]
    return body


async def test_a_dead_engines_claims_are_released_and_it_is_forgotten(
    idle: Running, idle_queue: dict[str, Any]
) -> None:
    engines = idle.store.engines
    dead, alive = await engines.join(now_ms()), await engines.join(now_ms())
    assert await _registered(idle) == {dead.id, alive.id}
    mid = await _claim_one(idle, dead, idle_queue)
    lease_until, claimed_by = await _lease(idle, mid)
    assert lease_until > now_ms() and claimed_by == dead.id

    # Alive: its claims stay.
    assert await engines.take_over(alive, now_ms()) == 0
    assert (await _lease(idle, mid))[0] == lease_until

    await dead.lock.release()  # what its death does; the registration stays behind
    assert await engines.take_over(alive, now_ms()) == 1
    assert (await _lease(idle, mid))[0] == 0  # due at once, for any engine
    assert await _registered(idle) == {alive.id}
    await engines.leave(alive)
    assert await _registered(idle) == set()


async def test_a_liveness_lock_is_held_once(idle: Running) -> None:
    me = await idle.store.engines.join(now_ms())
    try:
        with pytest.raises(LockTaken):
            await idle.store.db.hold_lock(me.id)
        assert await idle.store.db.free_locks([me.id]) == []
    finally:
        await idle.store.engines.leave(me)
    assert await idle.store.db.free_locks([me.id]) == [me.id]


async def test_a_lost_lock_connection_is_retaken_and_registered_again(
    idle: Running, settings: Settings
) -> None:
    if settings.is_sqlite:
        pytest.skip("a file lock is only lost with its process")
    engines = idle.store.engines
    me, other = await engines.join(now_ms()), await engines.join(now_ms())
    admin = await asyncpg.connect(settings.database_url)
    holder = (
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND ((classid::bigint << 32) | objid::bigint) = $1"
    )
    try:
        before = await admin.fetchval(holder, me.id)
        # Cut the connection holding the lock: the other engine takes us for dead.
        await admin.execute("SELECT pg_terminate_backend($1)", before)

        async def retaken() -> bool:
            now = await admin.fetchval(holder, me.id)
            return now is not None and now != before and me.held

        await until(retaken)  # on a new connection
        await engines.take_over(other, now_ms())
        await engines.take_over(me, now_ms())  # registers itself again
        assert await _registered(idle) == {me.id, other.id}
    finally:
        await admin.close()
        await engines.leave(me)
        await engines.leave(other)
