"""Owns the ``queues`` table."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from tidings.domain.clock import Clock
from tidings.domain.errors import Conflict, NotFound
from tidings.domain.events import EventType, NewEvent, Ref
from tidings.domain.ids import new_id
from tidings.domain.models import Page, Queue
from tidings.storage import channels, locks
from tidings.storage.cache import NotifiedCache
from tidings.storage.database import Connection, Database, Row, UniqueViolation, assignments
from tidings.storage.events import EventLog
from tidings.storage.paging import fetch_page

_COLUMNS = "id, org_id, name, schema, schema_id, created_at, updated_at, retention_seconds"
_WITH_LISTENERS = (
    f"SELECT {', '.join('q.' + c for c in _COLUMNS.split(', '))},"
    " l.id AS listener_id, l.name AS listener_name"
    " FROM queues q LEFT JOIN listeners l ON l.org_id = q.org_id AND l.queue_id = q.id"
    " WHERE q.org_id = $1 AND q.id = $2"
)  # no ORDER BY: SQLite sorted in a temp B-tree on every GET (get_with_listeners sorts)
# A backstop only (see storage.cache): what a stale entry could get wrong on ingest,
# the queue's schema, is checked again inside the message's own transaction; a `GET`
# of a queue answered from the cache shows a change made through another node once
# that commit's notification arrived (milliseconds; this long if it was lost).
RECENT_TTL_S = 2.0
# A queue and the (id, name) of its listeners; shared by the requests that read it.
QueueWithListeners = tuple[Queue, tuple[tuple[str, str], ...]]
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
        retention_seconds=row["retention_seconds"],
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


@dataclass(frozen=True, slots=True)
class QueueState:
    """What a message insert needs to know of its queue, as committed right now."""

    name: str
    schema_id: str | None


async def hold_for_insert(
    db: Database, conn: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], QueueState]:
    """Name and schema id of several queues keyed by ``(org_id, queue_id)``, locked
    ``FOR SHARE`` until the caller's transaction ends (one query, in id order).

    A queue missing from the answer is gone. The share lock makes a concurrent
    schema change (or delete) wait for the insert's commit, or the insert wait for
    the change's commit and then read the new schema id: a message is never
    committed against a schema that a committed change replaced (SPEC §4).
    """
    if not keys:
        return {}
    ids = sorted({queue_id for _, queue_id in keys})
    marks = ", ".join(f"${i}" for i in range(1, len(ids) + 1))
    rows = await conn.fetch(
        f"SELECT org_id, id, name, schema_id FROM queues WHERE id IN ({marks})"
        f" ORDER BY id{locks.clause(db, locks.SHARE)}",
        *ids,
    )
    # Keyed by organization too, so a queue is only ever used for its own tenant.
    return {(r["org_id"], r["id"]): QueueState(r["name"], r["schema_id"]) for r in rows}


class Queues:
    def __init__(self, db: Database, events: EventLog, clock: Clock) -> None:
        self._db = db
        self._events = events
        self._clock = clock
        # One cache for the ingest path and for `GET /queues/{id}`, which also shows
        # the listeners: they notify this channel when they come, go or are renamed.
        self._recent: NotifiedCache[tuple[str, str], QueueWithListeners] = NotifiedCache(
            db, channels.QUEUES, RECENT_TTL_S
        )

    async def listen(self) -> None:
        await self._recent.listen()

    async def get_recent(self, org_id: str, queue_id: str) -> Queue:
        """``get`` through this node's cache, for the message ingest path.

        Changes made on any node empty it when they commit (storage.cache); the
        schema a message was validated against is checked again when it is stored
        (``hold_for_insert``), and a deleted queue is found gone there too.
        """
        return (await self.get_with_listeners(org_id, queue_id))[0]

    async def create(
        self,
        org_id: str,
        name: str,
        schema: Any,
        schema_id: str | None,
        retention_seconds: int | None = None,
    ) -> Queue:
        now = self._clock.now_ms()
        queue = Queue(new_id(), org_id, name, schema, schema_id, now, now, retention_seconds)

        async def body(tx: Connection) -> None:
            await tx.execute(
                f"INSERT INTO queues ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
                queue.id,
                org_id,
                name,
                None if schema is None else json.dumps(schema, ensure_ascii=False),
                schema_id,
                now,
                retention_seconds,
            )
            await self._events.add(tx, _event(EventType.QUEUE_ADDED, org_id, queue.id, name))

        try:
            await self._db.run(body)
        except UniqueViolation as exc:
            raise _duplicate(name) from exc
        return queue

    async def get(self, org_id: str, queue_id: str) -> Queue:
        row = await self._db.point.fetchrow(
            f"SELECT {_COLUMNS} FROM queues WHERE org_id = $1 AND id = $2", org_id, queue_id
        )
        if row is None:
            raise NotFound("No queue with this id.")
        return _queue(row)

    async def get_with_listeners(self, org_id: str, queue_id: str) -> QueueWithListeners:
        """A queue and the ``(id, name)`` of its listeners, oldest first, through this
        node's cache: the one-row read was a sixth of the API worker's time per `GET`
        (docs/benchmarks.md). Changes through this process empty it before they are
        answered, so a client reads its own writes here."""
        return await self._recent.get(
            (org_id, queue_id), lambda: self._with_listeners(org_id, queue_id)
        )

    async def _with_listeners(self, org_id: str, queue_id: str) -> QueueWithListeners:
        # One statement (one snapshot), where `get` and `Listeners.summaries` are two.
        rows = await self._db.point.fetch(_WITH_LISTENERS, org_id, queue_id)
        if not rows:
            raise NotFound("No queue with this id.")
        # Sorted here (ids sort by creation as plain text): an ORDER BY made SQLite sort
        # the joined rows in a temp B-tree, ~0.6 of the statement's 5.7 us.
        listeners = sorted((r["listener_id"], r["listener_name"]) for r in rows if r["listener_id"])
        return _queue(rows[0]), tuple(listeners)

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
        retention_seconds: int | None = KEEP,
    ) -> Queue:
        """Change only the given fields, in one statement (concurrent updates of
        different fields both take effect)."""
        changes: dict[str, Any] = {}
        if name is not KEEP:
            changes["name"] = name
        if schema is not KEEP:
            changes["schema"] = None if schema is None else json.dumps(schema, ensure_ascii=False)
            changes["schema_id"] = schema_id
        if retention_seconds is not KEEP:
            changes["retention_seconds"] = retention_seconds
        changes["updated_at"] = self._clock.now_ms()
        sets, values = assignments(changes, 3)

        async def body(tx: Connection) -> Row | None:
            row = await tx.fetchrow(
                f"UPDATE queues SET {sets} WHERE org_id = $1 AND id = $2 RETURNING {_COLUMNS}",
                org_id,
                queue_id,
                *values,
            )
            if row is not None:
                event = _event(EventType.QUEUE_UPDATED, org_id, queue_id, row["name"])
                await self._events.add(tx, event)
                await self._db.notify(tx, channels.QUEUES)
            return row

        try:
            row = await self._db.run(body)
        except UniqueViolation as exc:
            raise _duplicate(name) from exc
        if row is None:
            raise NotFound("No queue with this id.")
        return _queue(row)

    async def with_retention(self) -> list[tuple[str, int]]:
        """``(queue id, retention in seconds)`` of every queue that does not keep its
        messages forever, of every organization (the purge's list)."""
        rows = await self._db.fetch(
            "SELECT id, retention_seconds FROM queues WHERE retention_seconds IS NOT NULL"
            " ORDER BY id"
        )
        return [(r["id"], r["retention_seconds"]) for r in rows]

    async def delete(self, org_id: str, queue_id: str) -> None:
        """Cascades to its listeners, messages and their deliveries (foreign keys)."""

        async def body(tx: Connection) -> str | None:
            await locks.queue_and_deliveries(self._db, tx, org_id, queue_id)
            # Only the queue's own event: what the cascade takes with it (listeners,
            # messages) is implied by it, and may be millions of rows.
            name: str | None = await tx.fetchval(
                "DELETE FROM queues WHERE org_id = $1 AND id = $2 RETURNING name",
                org_id,
                queue_id,
            )
            if name is not None:
                await self._events.add(tx, _event(EventType.QUEUE_DELETED, org_id, queue_id, name))
                await self._db.notify(tx, channels.QUEUES)
            return name

        name = await self._db.run(body)
        if name is None:
            raise NotFound("No queue with this id.")
