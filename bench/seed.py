"""Backlogs for the delivery, fan-out and memory scenarios, committed through tidings'
own group-commit ingest (the path ``POST .../messages`` takes) while no engine runs,
so seeding 100,000 messages takes seconds instead of minutes of HTTP."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from bench.api import ORDER, Api
from bench.procs import tidings
from tidings.domain.ids import new_id, now_ms
from tidings.domain.models import NewMessage, Publication
from tidings.storage.database import Connection
from tidings.storage.drivers import open_database
from tidings.storage.store import Store

_DATA = json.dumps(ORDER)
_IN_FLIGHT = 256


async def listening_queue(
    url: str, session: aiohttp.ClientSession, notify_base: str, name: str
) -> str:
    """A queue with one listener (on ``notify_base``) on a fresh database, made through
    an API-only server (no engine: nothing is sent before the scenario starts); its id."""
    async with tidings(url, "--no-engine") as api_only:
        api = Api(api_only.url, session)
        queue_id = await api.queue()
        await api.listener(queue_id, notify_base, name)
    return queue_id


async def seed_messages(database_url: str, queue_id: str, count: int) -> None:
    # The server under test created the schema; an A/B "before" server must not find
    # it upgraded to this tree's version.
    store = await Store.open(database_url, migrate=False)
    try:
        org_id = await _org_of(store, queue_id)
        left = iter(range(count))

        async def adder() -> None:
            for _ in left:
                message = NewMessage(new_id(), org_id, queue_id, "order-created", _DATA, now_ms())
                await store.ingest.add(Publication((message,)))

        await asyncio.gather(*(adder() for _ in range(_IN_FLIGHT)))
    finally:
        await store.close()


# Columns every schema version since 0005 has: an A/B "before" tree may lack later
# ones, and this tree's ingest (filters, delays) reads them.
_PLAIN_MESSAGE = (
    "INSERT INTO messages (id, org_id, queue_id, name, data, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $6)"
)
_PLAIN_FAN_OUT = (
    "INSERT INTO deliveries (message_id, listener_id, org_id, state, attempts, next_attempt_at)"
    " SELECT $1, l.id, l.org_id, 'pending', 0, $2 FROM listeners l WHERE l.queue_id = $3"
)


async def seed_plain(database_url: str, queue_id: str, count: int, batch: int = 500) -> None:
    """Messages and their deliveries in plain SQL of the oldest schema an A/B compares
    (bench.ab delivery): no events, no filters, no delays; commits of ``batch``."""
    db = await open_database(database_url)
    try:
        org_id = str(await db.fetchval("SELECT org_id FROM queues WHERE id = $1", queue_id))
        for start in range(0, count, batch):
            at = now_ms()
            ids = [new_id() for _ in range(min(batch, count - start))]

            async def body(tx: Connection, ids: list[str] = ids, at: int = at) -> None:
                await tx.executemany(
                    _PLAIN_MESSAGE, [(i, org_id, queue_id, "order-created", _DATA, at) for i in ids]
                )
                await tx.executemany(_PLAIN_FAN_OUT, [(i, at, queue_id) for i in ids])

            await db.run(body)
    finally:
        await db.close()


async def _org_of(store: Store, queue_id: str) -> str:
    org_id = await store.db.fetchval("SELECT org_id FROM queues WHERE id = $1", queue_id)
    return str(org_id)
