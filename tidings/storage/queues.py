"""Owns the ``queues`` table."""

from __future__ import annotations

import json
import time
from typing import Any

from tidings.domain.errors import Conflict, NotFound
from tidings.domain.ids import new_id, now_ms
from tidings.domain.models import Page, Queue
from tidings.storage.database import Database, Row, UniqueViolation

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


class Queues:
    def __init__(self, db: Database) -> None:
        self._db = db
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
        now = now_ms()
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

    async def list_page(self, org_id: str, page: Page) -> tuple[list[Queue], int]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM queues WHERE org_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
            org_id,
            page.per_page,
            page.offset,
        )
        total = await self._db.fetchval("SELECT count(*) FROM queues WHERE org_id = $1", org_id)
        return [_queue(r) for r in rows], int(total)

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
                    now_ms(),
                )
        except UniqueViolation as exc:
            raise _duplicate(new_name) from exc
        if row is None:
            raise NotFound("No queue with this id.")
        self._recent.pop((org_id, queue_id), None)
        return _queue(row)

    async def delete(self, org_id: str, queue_id: str) -> None:
        """Cascades to its listeners, messages and their deliveries (foreign keys)."""
        async with self._db.transaction() as tx:
            deleted = await tx.execute(
                "DELETE FROM queues WHERE org_id = $1 AND id = $2", org_id, queue_id
            )
        self._recent.pop((org_id, queue_id), None)
        if not deleted:
            raise NotFound("No queue with this id.")
