"""Owns the ``messages`` table and the fan-out insert of their ``deliveries`` rows."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from tidings.domain.clock import Clock
from tidings.domain.errors import BadRequest, NotFound
from tidings.domain.events import EventType, NewEvent, Ref
from tidings.domain.filters import Filter, compile_filter, parse_data
from tidings.domain.models import Delivery, DeliveryState, Message, NewMessage, Page, Publication
from tidings.storage import channels, locks
from tidings.storage.database import (
    Connection,
    Database,
    ForeignKeyViolation,
    Retryable,
    Row,
    id_list,
)
from tidings.storage.events import EventLog
from tidings.storage.idempotency import KeyTaken, remember
from tidings.storage.paging import fetch_page
from tidings.storage.queues import QueueState, hold_for_insert

_COLUMNS = "id, org_id, queue_id, name, data, created_at, updated_at, deliver_at"
_INSERT_MESSAGE = f"INSERT INTO messages ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)"
# One delivery per listener the queue has at commit time (SPEC §5 "Who"), for a
# whole batch of just-inserted messages in one statement. Listeners with a filter
# (SPEC §10) are left to the filtered fan-out below, in the same transaction.
# When a new delivery is first due (a delayed message's at its deliver_at, SPEC §9):
# one expression for both fan-outs.
_FIRST_DUE = "COALESCE(m.deliver_at, m.created_at)"
_FAN_OUT = (
    "INSERT INTO deliveries (message_id, listener_id, org_id, state, attempts, next_attempt_at)"
    f" SELECT m.id, l.id, l.org_id, 'pending', 0, {_FIRST_DUE}"
    " FROM messages m JOIN listeners l ON l.queue_id = m.queue_id"
    " WHERE m.id {ids} AND l.filter IS NULL"
)
# On PostgreSQL both fan-outs take the messages' ids, queues and due times from the
# batch instead of reading back the rows just inserted: asyncpg's prepared statement
# keeps PostgreSQL's generic plan until the table is analyzed, and planned on an
# empty messages table (a new database) that plan read the batch's messages through
# ix_messages_queue_created, every message of the queue per commit (9-13 ms a commit
# at 10,000 messages, growing with the queue), or scanned the whole table (the
# filtered fan-out). SQLite plans these by its fixed rules: the primary key.
_FAN_OUT_POSTGRES = (
    "INSERT INTO deliveries (message_id, listener_id, org_id, state, attempts, next_attempt_at)"
    " SELECT m.id, l.id, l.org_id, 'pending', 0, m.due"
    " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS m(id, queue_id, due)"
    " JOIN listeners l ON l.queue_id = m.queue_id WHERE l.filter IS NULL"
)
_FILTERED_LISTENERS = (
    "SELECT id, org_id, queue_id, filter, options_version FROM listeners"
    " WHERE queue_id {ids} AND filter IS NOT NULL"
)
# The matched (message, listener) pairs of a whole batch in one statement.
_INSERT_MATCHED_POSTGRES = (
    "INSERT INTO deliveries (message_id, listener_id, org_id, state, attempts, next_attempt_at)"
    " SELECT p.message_id, p.listener_id, p.org_id, 'pending', 0, p.due FROM"
    " unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS p(message_id, listener_id,"
    " org_id, due)"
)
_INSERT_MATCHED_SQLITE = (
    "INSERT INTO deliveries (message_id, listener_id, org_id, state, attempts, next_attempt_at)"
    f" SELECT m.id, json_extract(p.value, '$[1]'), m.org_id, 'pending', 0, {_FIRST_DUE}"
    " FROM json_each($1) p JOIN messages m ON m.id = json_extract(p.value, '$[0]')"
)
# Retention (SPEC §9): a message past its queue's retention goes once none of its
# deliveries is still owed. Owed means pending for an enabled listener: a disabled
# listener's pending deliveries do not hold a message back. (A new condition on what
# holds a message back is one more predicate here.)
# It is a scalar subquery, one primary-key probe per candidate, on purpose: as NOT
# EXISTS, PostgreSQL planned an anti-join against every pending delivery (1.1 s per
# batch at 5,000 pending) or against the whole table (64 s per batch at 1,000,000
# expired messages); this way a batch of 500 takes ~2 ms. "Not delivered, not missed"
# rather than "= 'pending'", as in storage.deliveries, keeps the partial indexes out.
_NOT_OWED = (
    "(SELECT 1 FROM deliveries d JOIN listeners l ON l.id = d.listener_id"
    " WHERE d.message_id = m.id AND d.state NOT IN ('delivered', 'missed')"
    " AND l.status = 'enabled' LIMIT 1) IS NULL"
)
# The oldest expired messages of one queue first (ix_messages_queue_created).
_EXPIRED = (
    "SELECT m.id FROM messages m WHERE m.queue_id = $1 AND m.created_at < $2"
    f" AND {_NOT_OWED} ORDER BY m.created_at LIMIT $3"
)
# Rows of other tables that go with purged messages, deleted inside the purge's
# transaction: (tx, message ids). Deliveries go by cascade; the attempt log registers.
PurgeChildren = Callable[[Connection, Sequence[str]], Awaitable[None]]
# A message's columns with its deliveries, for a read of one or of a page in one
# statement: one snapshot (two reads could straddle a commit) and, on SQLite, one read
# on the loop's thread where each statement hands the GIL to the server's threads and
# back (docs/benchmarks.md). The deliveries come as a JSON array of arrays, in the
# order of _DELIVERY_FIELDS, from a correlated subquery on their primary key.
_DELIVERY_FIELDS = "listener_id, state, attempts, last_status, last_attempt_at, next_attempt_at"
_WITH_DELIVERIES = {
    "sqlite": f"{_COLUMNS}, (SELECT json_group_array(json_array({_DELIVERY_FIELDS}))"
    " FROM deliveries d WHERE d.message_id = messages.id) AS deliveries",
    "postgresql": f"{_COLUMNS}, (SELECT COALESCE(json_agg(json_build_array({_DELIVERY_FIELDS})),"
    " '[]') FROM deliveries d WHERE d.message_id = messages.id)::text AS deliveries",
}
_GET = {
    dialect: f"SELECT {columns} FROM messages WHERE org_id = $1 AND queue_id = $2 AND id = $3"
    for dialect, columns in _WITH_DELIVERIES.items()
}
_decode_deliveries = msgspec.json.Decoder(
    list[tuple[str, str, int, int | None, int | None, int | None]]
).decode


_STATES = {s.value: s for s in DeliveryState}  # a dict look-up, not an enum call


def _deliveries(message_id: str, text: str) -> tuple[Delivery, ...]:
    """The deliveries of a _WITH_DELIVERIES row, by listener id."""
    found = []
    for listener_id, name, attempts, status, attempted_at, next_at in sorted(
        _decode_deliveries(text)
    ):
        state = _STATES[name]
        next_at = next_at if state is DeliveryState.PENDING else None
        found.append(
            Delivery(message_id, listener_id, state, attempts, status, attempted_at, next_at)
        )
    return tuple(found)


_WIDTH = len(_COLUMNS.split(", ")) + 1  # and the deliveries


def _message(row: Row) -> Message:
    """A message from a _WITH_DELIVERIES row, whose first columns are read by position
    (both drivers' rows iterate over their values in the order selected): sqlite3.Row
    finds a name by comparing it with each column before it, ~7,600 machine
    instructions for the nine of a GET of one message (docs/benchmarks.md)."""
    values: tuple[Any, ...] = tuple(row)[:_WIDTH]
    id_, org_id, queue_id, name, data, created_at, updated_at, deliver_at, deliveries = values
    return Message(
        id=id_,
        org_id=org_id,
        queue_id=queue_id,
        name=name,
        data=data,
        created_at=created_at,
        updated_at=updated_at,
        deliveries=_deliveries(id_, deliveries),
        deliver_at=deliver_at,
    )


def _refusal(
    publication: Publication, queues: dict[tuple[str, str], QueueState]
) -> BaseException | None:
    """Why ``publication`` cannot be stored as checked, or None when it can."""
    for m in publication.messages:
        queue = queues.get((m.org_id, m.queue_id))
        if queue is None:
            return NotFound("No queue with this id.")
        if queue.schema_id != m.schema_id:
            return StaleSchema()
    return None


def _first_due(m: NewMessage) -> int:
    """When a new message's deliveries are first due: _FIRST_DUE, for PostgreSQL's
    fan-outs, which take it from the batch."""
    return m.created_at if m.deliver_at is None else m.deliver_at


def _not_found() -> NotFound:
    return NotFound("No message with this id in this queue.")


class StaleSchema(Exception):
    """The queue's schema is no longer the one the message was checked against (it
    changed after the check): check the message again against the queue as it is."""


MAX_CACHED_FILTERS = 10_000


class _ParsedOnce:
    """A message's ``data`` parsed as JSON on first use, shared by all its filters."""

    __slots__ = ("_data", "_parsed")

    def __init__(self, data: str) -> None:
        self._data = data
        self._parsed: Any = _UNSET

    def __call__(self) -> Any:
        if self._parsed is _UNSET:
            self._parsed = parse_data(self._data)
        return self._parsed


_UNSET = object()


class FilterCache:
    """Compiled filters keyed by (listener id, options version): a filter is compiled
    once per version of its listener, not once per message."""

    def __init__(self, max_entries: int = MAX_CACHED_FILTERS) -> None:
        self._max_entries = max_entries
        self._compiled: dict[tuple[str, int], Filter] = {}
        self.compilations = 0  # how many filters were compiled (tests, metrics)

    def get(self, row: Row) -> Filter:
        key = (row["id"], row["options_version"])
        compiled = self._compiled.get(key)
        if compiled is None:
            # Stored filters were checked when set; a version that fails now (a
            # stricter release) matches nothing rather than failing every commit.
            try:
                compiled = compile_filter(json.loads(row["filter"])) or _EVERYTHING
            except BadRequest:
                compiled = _NOTHING
            if len(self._compiled) >= self._max_entries:
                self._compiled.clear()  # stale versions go too; live ones recompile once
            self._compiled[key] = compiled
            self.compilations += 1
        return compiled


_EVERYTHING = Filter(None, None)
_NOTHING = Filter(lambda _name: False, None)


class Messages:
    def __init__(self, db: Database, events: EventLog, clock: Clock) -> None:
        self._db = db
        self._events = events
        self._clock = clock
        self._filters = FilterCache()

    async def insert_batch(self, batch: Sequence[Publication]) -> list[BaseException | None]:
        """Store publications (their messages, deliveries and remembered answers); one
        durable commit for the whole batch.

        Answers one outcome per publication: ``None`` (committed), :class:`NotFound`
        (a queue is gone), :class:`StaleSchema` or :class:`KeyTaken`; a publication is
        stored whole or not at all, and only the committed ones are stored.
        """

        async def body(tx: Connection) -> list[BaseException | None]:
            keys = {(m.org_id, m.queue_id) for p in batch for m in p.messages}
            queues = await hold_for_insert(self._db, tx, keys)
            outcomes = [_refusal(p, queues) for p in batch]
            if any(p.answer is not None for p in batch):
                await self._remember(tx, batch, outcomes)
            accepted = [
                m
                for p, outcome in zip(batch, outcomes, strict=True)
                if outcome is None
                for m in p.messages
            ]
            if accepted:
                try:
                    await self._insert(tx, accepted, queues)
                except ForeignKeyViolation as exc:
                    # A listener was deleted while the fan-out ran: run it again (the
                    # listener is gone from the join then).
                    raise Retryable(f"a listener was deleted meanwhile: {exc}") from exc
            return outcomes

        return await self._db.run(body)

    async def insert_in(self, tx: Connection, batch: Sequence[NewMessage]) -> None:
        """Store messages inside the caller's transaction (the alerts of storage/alerts.py):
        their deliveries and ``message_added`` events as for any message. A message whose
        queue is gone (or is not its organization's) is left out. Its queue is not
        share-locked nor its schema checked: these are the broker's own messages."""
        if not batch:
            return
        in_ids, value = id_list(self._db, 1, sorted({m.queue_id for m in batch}))
        rows = await tx.fetch(
            f"SELECT org_id, id, name, schema_id FROM queues WHERE id {in_ids}", value
        )
        queues = {(r["org_id"], r["id"]): QueueState(r["name"], r["schema_id"]) for r in rows}
        kept = [m for m in batch if (m.org_id, m.queue_id) in queues]
        if kept:
            await self._insert(tx, kept, queues)

    async def _remember(
        self, tx: Connection, batch: Sequence[Publication], outcomes: list[BaseException | None]
    ) -> None:
        """Write the answers to remember; a publication whose key is taken (by a live
        answer, or earlier in this batch) is refused with :class:`KeyTaken`."""
        first: dict[tuple[str, str], int] = {}
        for i, (p, outcome) in enumerate(zip(batch, outcomes, strict=True)):
            if outcome is None and p.answer is not None:
                key = (p.answer.org_id, p.answer.key)
                if key in first:
                    outcomes[i] = KeyTaken()
                else:
                    first[key] = i
        answers = [a for i in first.values() if (a := batch[i].answer) is not None]
        for key in await remember(self._db, tx, answers, self._clock.now_ms()):
            outcomes[first[key]] = KeyTaken()

    async def _insert(
        self,
        tx: Connection,
        batch: Sequence[NewMessage],
        queues: dict[tuple[str, str], QueueState],
    ) -> None:
        await tx.executemany(
            _INSERT_MESSAGE,
            [
                (m.id, m.org_id, m.queue_id, m.name, m.data, m.created_at, m.deliver_at)
                for m in batch
            ],
        )
        if self._db.dialect == "postgresql":
            await tx.execute(
                _FAN_OUT_POSTGRES,
                [m.id for m in batch],
                [m.queue_id for m in batch],
                [_first_due(m) for m in batch],
            )
        else:
            ids, value = id_list(self._db, 1, [m.id for m in batch])
            # executemany of one row: nothing to answer, so SQLite queues it with the rest.
            await tx.executemany(_FAN_OUT.format(ids=ids), [(value,)])
        await self._fan_out_filtered(tx, batch)
        # The events go in as one more executemany of the same group commit.
        await self._events.add_many(
            tx,
            [
                NewEvent(
                    m.org_id,
                    EventType.MESSAGE_ADDED,
                    queue=Ref(m.queue_id, queues[(m.org_id, m.queue_id)].name),
                    message=Ref(m.id, m.name),
                )
                for m in batch
            ],
        )
        await self._db.notify(tx, channels.DELIVERIES)
        if any(m.deliver_at is not None and m.deliver_at > m.created_at for m in batch):
            await self._db.notify(tx, channels.DELAYED)

    async def _fan_out_filtered(self, tx: Connection, batch: Sequence[NewMessage]) -> None:
        """Deliveries for the listeners with a filter: the filter in force at this
        commit decides, evaluated once per message and listener, each message's data
        parsed at most once whatever the number of listeners."""
        queue_ids = sorted({m.queue_id for m in batch})
        in_queues, value = id_list(self._db, 1, queue_ids)
        rows = await tx.fetch(_FILTERED_LISTENERS.format(ids=in_queues), value)
        if not rows:
            return
        by_queue: dict[str, list[tuple[Row, Filter]]] = {}
        for row in rows:
            by_queue.setdefault(row["queue_id"], []).append((row, self._filters.get(row)))
        matched = []
        for m in batch:
            parsed = _ParsedOnce(m.data)
            for row, compiled in by_queue.get(m.queue_id, ()):
                if row["org_id"] == m.org_id and compiled.matches(m.name, parsed):
                    matched.append((m, row["id"]))
        if not matched:
            return
        if self._db.dialect == "postgresql":
            await tx.execute(
                _INSERT_MATCHED_POSTGRES,
                [m.id for m, _ in matched],
                [listener_id for _, listener_id in matched],
                [m.org_id for m, _ in matched],
                [_first_due(m) for m, _ in matched],
            )
        else:
            # executemany of one row: nothing to answer, so SQLite queues it with the rest.
            pairs = [(m.id, listener_id) for m, listener_id in matched]
            await tx.executemany(_INSERT_MATCHED_SQLITE, [(json.dumps(pairs),)])

    async def purge_expired(
        self,
        queue_id: str,
        before_ms: int,
        batch_rows: int,
        children: Sequence[PurgeChildren] = (),
    ) -> int:
        """Delete up to ``batch_rows`` messages of the queue created before
        ``before_ms`` that nobody is owed any more, with their deliveries and
        ``children``, in one short transaction; answers how many went."""

        async def body(tx: Connection) -> int:
            if self._db.dialect == "postgresql":
                # The per-candidate probes add up to a plan cost past jit_above_cost:
                # compiling it took 160-320 ms of each 2 ms batch.
                await tx.execute("SET LOCAL jit = off")
            found = [r["id"] for r in await tx.fetch(_EXPIRED, queue_id, before_ms, batch_rows)]
            if not found:
                return 0
            in_ids, value = id_list(self._db, 1, found)
            # In the lock order (storage.locks): the cascade's deliveries first. Checked
            # again under the locks: a redelivery may have made one owed meanwhile.
            await locks.deliveries(self._db, tx, f"message_id {in_ids}", value, mode=locks.UPDATE)
            rows = await tx.fetch(
                f"DELETE FROM messages AS m WHERE m.id {in_ids} AND {_NOT_OWED} RETURNING id",
                value,
            )
            gone = [r["id"] for r in rows]
            for child in children:
                await child(tx, gone)
            return len(gone)

        return await self._db.run(body)

    async def get(self, org_id: str, queue_id: str, message_id: str) -> Message:
        row = await self._db.point.fetchrow(_GET[self._db.dialect], org_id, queue_id, message_id)
        if row is None:
            raise _not_found()
        return _message(row)

    async def list_page(
        self,
        org_id: str,
        queue_id: str | None,
        page: Page,
        within: Sequence[str] | None = None,
    ) -> tuple[list[Message], int]:
        """One page, of one queue or all; ``within`` keeps items whose id or queue is there."""
        rows, total = await fetch_page(
            self._db,
            "messages",
            _WITH_DELIVERIES[self._db.dialect],
            org_id,
            page,
            queue_id=queue_id,
            within=within,
            within_queues=True,
        )
        return [_message(r) for r in rows], total

    async def rename(self, org_id: str, queue_id: str, message_id: str, name: str) -> Message:
        rows = await self._db.write(
            "UPDATE messages SET name = $4, updated_at = $5"
            " WHERE org_id = $1 AND queue_id = $2 AND id = $3 RETURNING id",
            org_id,
            queue_id,
            message_id,
            name,
            self._clock.now_ms(),
        )
        if not rows:
            raise _not_found()
        return await self.get(org_id, queue_id, message_id)

    async def delete(self, org_id: str, queue_id: str, message_id: str) -> None:
        """Its deliveries go with it (cascade), which cancels the pending ones."""

        async def body(tx: Connection) -> int:
            await locks.deliveries(
                self._db,
                tx,
                "org_id = $1 AND message_id = $2",
                org_id,
                message_id,
                mode=locks.UPDATE,
            )
            return await tx.execute(
                "DELETE FROM messages WHERE org_id = $1 AND queue_id = $2 AND id = $3",
                org_id,
                queue_id,
                message_id,
            )

        if not await self._db.run(body):
            raise _not_found()
