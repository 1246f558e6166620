"""Backlogs for the delivery, fan-out and memory scenarios, committed through tidings'
own group-commit ingest (the path ``POST .../messages`` takes) while no engine runs,
so seeding 100,000 messages takes seconds instead of minutes of HTTP."""

from __future__ import annotations

import asyncio
import json

from bench.api import ORDER
from tidings.domain.ids import new_id, now_ms
from tidings.domain.models import NewMessage, Publication
from tidings.storage.store import Store

_DATA = json.dumps(ORDER)
_IN_FLIGHT = 256


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


async def _org_of(store: Store, queue_id: str) -> str:
    org_id = await store.db.fetchval("SELECT org_id FROM queues WHERE id = $1", queue_id)
    return str(org_id)
