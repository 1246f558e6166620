"""Owns the ``queues`` table."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from typing import Any

from tidings.domain.clock import Clock
from tidings.domain.errors import Conflict, NotFound
from tidings.domain.events import EventType, NewEvent, Ref
from tidings.domain.ids import new_id
from tidings.domain.models import Page, Queue
from tidings.storage.database import Connection, Database, Row, UniqueViolation
from tidings.storage.events import EventLog
from tidings.storage.paging import fetch_page

_COLUMNS = "id, org_id, name, schema, schema_id, created_at, updated_at"
RECENT_TTL_S = 2.0
RECENT_MAX = 10_000
# Sentinel for "leave this column as it is" in updates.
KEEP: Any = object()


def _queue(row: Row) -> Queue:
    raw = row["schema"]
    return Queue(
        id=row["id"],
        org_id=row["org_id"],
        name=row["name"],
        schema=None if raw is None else json.loads(raw),
        schema_id=row["schema_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _duplicate(name: str) -> Conflict:
    return Conflict(f"A queue named {name!r} already exists in this organization.")


def _event(kind: EventType, org_id: str, queue_id: str, name: str) -> NewEvent:
    return NewEvent(org_id, kind, queue=Ref(queue_id, name))


async def queue_name(conn: Connection, org_id: str, queue_id: str) -> str | None:
    """The queue's current name, read inside the caller's transaction (event refs)."""
    name: str | None = await conn.fetchval(
        "SELECT name FROM queues WHERE org_id = $1 AND id = $2", org_id, queue_id
    )
    return name


async def queue_names(
    conn: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Names of several queues keyed by ``(org_id, queue_id)``, in one query."""
    if not keys:
        return {}
    ids = sorted({queue_id for _, queue_id in keys})
    marks = ", ".join(f"${i}" for i in range(1, len(ids) + 1))
    rows = await conn.fetch(f"SELECT org_id, id, name FROM queues WHERE id IN ({marks})", *ids)
    # Keyed by organization too, so a name is only ever used for its own tenant.
    return {(r["org_id"], r["id"]): r["name"] for r in rows}


class Queues:
    def __init__(self, db: Database, events: EventLog, clock: Clock) -> None:
        self._db = db
        self._events = events
        self._clock = clock
        self._recent: dict[tuple[str, str], tuple[float, Queue]] = {}

    async def get_recent(self, org_id: str, queue_id: str) -> Queue:
        """``get`` through a short cache, for the message ingest path.

        Changes made on this node are seen at once; changes made on another node
        within ``RECENT_TTL_S`` (a deleted queue is still caught by the foreign key
        when the message is stored).
        """
        key = (org_id, queue_id)
        hit = self._recent.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        queue = await self.get(org_id, queue_id)
        if len(self._recent) > RECENT_MAX:
            self._recent.clear()
        self._recent[key] = (time.monotonic() + RECENT_TTL_S, queue)
        return queue

    async def create(self, org_id: str, name: str, schema: Any, schema_id: str | None) -> Queue:
        now = self._clock.now_ms()
        queue = Queue(new_id(), org_id, name, schema, schema_id, now, now)
        try:
            async with self._db.transaction() as tx:
                await tx.execute(
                    f"INSERT INTO queues ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    queue.id,
                    org_id,
                    name,
                    None if schema is None else json.dumps(schema, ensure_ascii=False),
                    schema_id,
                    now,
                )
                await self._events.add(tx, _event(EventType.QUEUE_ADDED, org_id, queue.id, name))
        except UniqueViolation as exc:
            raise _duplicate(name) from exc
        return queue

    async def get(self, org_id: str, queue_id: str) -> Queue:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM queues WHERE org_id = $1 AND id = $2", org_id, queue_id
        )
        if row is None:
            raise NotFound("No queue with this id.")
        return _queue(row)

    async def list_page(
        self, org_id: str, page: Page, within: Sequence[str] | None = None
    ) -> tuple[list[Queue], int]:
        """One page of the organization's queues; ``within`` keeps only those ids."""
        rows, total = await fetch_page(self._db, "queues", _COLUMNS, org_id, page, within=within)
        return [_queue(r) for r in rows], total

    async def update(
        self,
        org_id: str,
        queue_id: str,
        name: str = KEEP,
        schema: Any = KEEP,
        schema_id: str | None = KEEP,
    ) -> Queue:
        current = await self.get(org_id, queue_id)
        new_name = current.name if name is KEEP else name
        new_schema = current.schema if schema is KEEP else schema
        new_schema_id = current.schema_id if schema is KEEP else schema_id
        try:
            async with self._db.transaction() as tx:
                row = await tx.fetchrow(
                    "UPDATE queues SET name = $3, schema = $4, schema_id = $5, updated_at = $6"
                    f" WHERE org_id = $1 AND id = $2 RETURNING {_COLUMNS}",
                    org_id,
                    queue_id,
                    new_name,
                    None if new_schema is None else json.dumps(new_schema, ensure_ascii=False),
                    new_schema_id,
                    self._clock.now_ms(),
                )
                if row is not None:
                    event = _event(EventType.QUEUE_UPDATED, org_id, queue_id, row["name"])
                    await self._events.add(tx, event)
        except UniqueViolation as exc:
            raise _duplicate(new_name) from exc
        if row is None:
            raise NotFound("No queue with this id.")
        self._recent.pop((org_id, queue_id), None)
        return _queue(row)

    async def delete(self, org_id: str, queue_id: str) -> None:
        """Cascades to its listeners, messages and their deliveries (foreign keys)."""
        async with self._db.transaction() as tx:
            # Only the queue's own event: what the cascade takes with it (listeners,
            # messages) is implied by it, and may be millions of rows.
            name = await tx.fetchval(
                "DELETE FROM queues WHERE org_id = $1 AND id = $2 RETURNING name",
                org_id,
                queue_id,
            )
            if name is not None:
                await self._events.add(tx, _event(EventType.QUEUE_DELETED, org_id, queue_id, name))
        self._recent.pop((org_id, queue_id), None)
        if name is None:
            raise NotFound("No queue with this id.")
