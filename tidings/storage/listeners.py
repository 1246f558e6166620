"""Owns the ``listeners`` table (delivery counters and liveness included)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from tidings.domain.clock import Clock
from tidings.domain.errors import NotFound
from tidings.domain.events import EventType, NewEvent, Ref
from tidings.domain.health import Change
from tidings.domain.ids import new_id
from tidings.domain.liveness import judge, record_probe
from tidings.domain.models import (
    DisabledReason,
    Health,
    HealthState,
    Listener,
    ListenerOptions,
    ListenerStatus,
    Liveness,
    LivenessState,
    Page,
)
from tidings.signing import KeyPair
from tidings.storage import alerts, channels, health, locks
from tidings.storage.database import (
    Connection,
    Database,
    ForeignKeyViolation,
    Row,
    assignments,
)
from tidings.storage.events import EventLog
from tidings.storage.messages import Messages
from tidings.storage.paging import fetch_page
from tidings.storage.queues import queue_name


class _Columns(NamedTuple):
    """A listener row's columns, in the order every statement here selects them: rows
    are mapped by position, as a name looked up in a ``sqlite3.Row`` is compared with
    every name before it (with Structs and enum members from dicts, mapping a row went
    from 12.7 to 2.5 us: docs/benchmarks.md, "Domain records as Structs")."""

    id: str
    org_id: str
    queue_id: str
    name: str
    notify_url: str
    liveness_url: str
    secret: str
    liveness_state: str
    success_count: int
    failure_count: int
    acknowledged_count: int
    created_at: int
    updated_at: int
    # listener options (SPEC §10)
    max_in_flight: int | None
    rate_limit: float | None
    ordered: int
    headers: str | None
    filter: str | None
    signature_scheme: str
    previous_secret_expires_at: int | None
    # health (SPEC §11; storage/health.py writes them)
    status: str
    disabled_reason: str | None
    health: str
    consecutive_failures: int
    last_success_at: int | None
    last_failure_at: int | None
    failing_since: int | None


_COLUMNS = ", ".join(_Columns._fields)
_WIDTH = len(_Columns._fields)

# The most missed message ids `GET` of one listener reads on the event loop's thread.
INLINE_MISSED = 64


def _missed_ids(dialect: str, limit: str) -> str:
    """A listener's missed message ids as a JSON array (unordered), from a correlated
    subquery: one statement for a listener or a page, one snapshot, and on SQLite one
    read on the loop's thread instead of two for a GET (each statement hands the GIL
    to the server's threads and back: docs/benchmarks.md)."""
    missed = (
        "SELECT d.message_id FROM deliveries d"
        f" WHERE d.listener_id = listeners.id AND d.state = 'missed'{limit}"
    )
    if dialect == "postgresql":
        return f"(SELECT COALESCE(json_agg(message_id), '[]') FROM ({missed}) AS m)::text"
    return f"(SELECT json_group_array(message_id) FROM ({missed}))"


def _with_missed(dialect: str, limit: str) -> str:
    return f"{_COLUMNS}, {_missed_ids(dialect, limit)} AS missed"


_DIALECTS = ("sqlite", "postgresql")
# Up to one more than INLINE_MISSED (a GET on the loop's thread: past that it reads
# them all where scans are read), or all of them (a page, on a reader thread).
_ALL_MISSED = {d: _with_missed(d, "") for d in _DIALECTS}
_ONE = " FROM listeners WHERE org_id = $1 AND queue_id = $2 AND id = $3"
_FIRST_MISSED = f" LIMIT {INLINE_MISSED + 1}"
# On SQLite the GET's row comes packed as one JSON array (the columns, then the missed
# ids): Python 3.11's sqlite3 lets the GIL go and takes it back around the type read
# of every column of every row, so 28 columns cost ~4 us more than one (8.4 against
# 4.2 us a read here), and under the server each of those is a chance for the
# server's threads to take the GIL from the loop (docs/benchmarks.md). ``json()``
# keeps the ids an array whatever the SQLite version does with a subquery's subtype;
# rate_limit comes again as a column of its own, since JSON text keeps 15 digits of a
# REAL (1/3 would read back as 0.333333333333333).
_GET_FIRST = {
    "sqlite": f"SELECT json_array({_COLUMNS}, json({_missed_ids('sqlite', _FIRST_MISSED)})),"
    f" rate_limit{_ONE}",
    "postgresql": f"SELECT {_with_missed('postgresql', _FIRST_MISSED)}{_ONE}",
}
_GET_ALL = {d: f"SELECT {_ALL_MISSED[d]}{_ONE}" for d in _DIALECTS}
_decode_ids = msgspec.json.Decoder(list[str]).decode
_decode_packed = msgspec.json.Decoder(list[Any]).decode
_RATE_LIMIT = _Columns._fields.index("rate_limit")


def _unpacked(dialect: str, row: Row) -> list[Any]:
    """A ``_GET_FIRST`` row as its columns' values with the missed ids (a list) last."""
    # Both drivers' rows iterate over their values, in the order selected.
    if dialect == "sqlite":
        packed, rate_limit = tuple(row)[:2]
        values: list[Any] = _decode_packed(packed)
        values[_RATE_LIMIT] = rate_limit
        return values
    values = list(tuple(row)[: _WIDTH + 1])
    values[_WIDTH] = _decode_ids(values[_WIDTH])
    return values


_EDITABLE = frozenset({"name", "notify_url", "liveness_url"})
# Options a PUT may change (SPEC §10); headers and filter are stored as JSON text.
OPTIONS = frozenset({"max_in_flight", "rate_limit", "ordered", "headers", "filter"})


def _options(c: _Columns) -> ListenerOptions:
    return ListenerOptions(
        max_in_flight=c.max_in_flight,
        rate_limit=c.rate_limit,
        ordered=bool(c.ordered),
        headers=json.loads(c.headers) if c.headers else {},
        filter=None if c.filter is None else json.loads(c.filter),
        signature_scheme=c.signature_scheme,
        previous_secret_expires_at=c.previous_secret_expires_at,
    )


def _option_columns(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Options as columns: JSON text for the structured ones, ``ordered`` as a bool."""
    columns = dict(changes)
    if "headers" in columns:
        columns["headers"] = json.dumps(columns["headers"]) if columns["headers"] else None
    if "filter" in columns:
        columns["filter"] = None if columns["filter"] is None else json.dumps(columns["filter"])
    if "rate_limit" in columns:
        columns["rate_next_at"] = 0.0  # a new rate applies at once, not after the old one's slots
    return columns


# Enum members by value: a dict look-up, where calling the enum costs ten times more.
_LIVENESS = {s.value: s for s in LivenessState}
_STATUS = {s.value: s for s in ListenerStatus}
_HEALTH = {s.value: s for s in HealthState}
_REASON = {r.value: r for r in DisabledReason}


def _health(c: _Columns, status: ListenerStatus) -> Health:
    state = HealthState.DISABLED if status is ListenerStatus.DISABLED else _HEALTH[c.health]
    reason = c.disabled_reason
    return Health(
        state=state,
        consecutive_failures=c.consecutive_failures,
        last_success_at=c.last_success_at,
        last_failure_at=c.last_failure_at,
        failing_since=c.failing_since,
        disabled_reason=None if reason is None else _REASON[reason],
    )


def _listener(row: Row | Sequence[Any], missed: tuple[str, ...] = ()) -> Listener:
    """A listener from a row (or a list of values) whose first columns are ``_COLUMNS``
    (both drivers' rows iterate over their values, in the order selected)."""
    c = _Columns._make(tuple(row)[:_WIDTH])
    status = _STATUS[c.status]
    return Listener(
        id=c.id,
        org_id=c.org_id,
        queue_id=c.queue_id,
        name=c.name,
        notify_url=c.notify_url,
        liveness_url=c.liveness_url,
        secret=c.secret,
        liveness=Liveness(_LIVENESS[c.liveness_state], c.success_count, c.failure_count),
        acknowledged_count=c.acknowledged_count,
        missed_count=len(missed),
        created_at=c.created_at,
        updated_at=c.updated_at,
        missed=missed,
        status=status,
        health=_health(c, status),
        options=_options(c),
    )


def _listener_with_missed(row: Row) -> Listener:
    """A listener from a _with_missed row, its missed ids in order."""
    return _listener(row, tuple(sorted(_decode_ids(row["missed"]))))


def _not_found() -> NotFound:
    return NotFound("No listener with this id in this queue.")


async def _record(events: EventLog, tx: Connection, kind: EventType, org_id: str, row: Row) -> None:
    """Record ``kind`` for the listener in ``row``, naming its queue as it is now."""
    queue = Ref(row["queue_id"], await queue_name(tx, org_id, row["queue_id"]))
    await events.add(tx, NewEvent(org_id, kind, queue=queue, listener=Ref(row["id"], row["name"])))


class Listeners:
    def __init__(
        self, db: Database, events: EventLog, clock: Clock, alerts_to: Messages | None = None
    ) -> None:
        self._db = db
        self._events = events
        self._clock = clock
        self._alerts_to = alerts_to

    async def create(
        self,
        org_id: str,
        queue_id: str,
        name: str,
        notify_url: str,
        liveness_url: str,
        keys: KeyPair,
        options: Mapping[str, Any] | None = None,
    ) -> Listener:
        """``options``: the SPEC §10 options given (the rest keep their defaults)."""
        now = self._clock.now_ms()
        listener_id = new_id()
        extra = _option_columns(options or {})
        extra.pop("rate_next_at", None)
        extra.update(signature_scheme=keys.scheme)
        if keys.signing != keys.shown:
            extra["signing_key"] = keys.signing
        names = "".join(f", {c}" for c in extra)
        values = "".join(f", ${9 + i}" for i in range(len(extra)))

        async def body(tx: Connection) -> Row | None:
            # Selecting from queues both checks the tenant and makes the probe due now.
            row = await tx.fetchrow(
                "INSERT INTO listeners (id, org_id, queue_id, name, notify_url,"
                f" liveness_url, secret, next_probe_at, created_at, updated_at{names})"
                f" SELECT $1, org_id, id, $4, $5, $6, $7, $8, $8, $8{values} FROM queues"
                f" WHERE org_id = $2 AND id = $3 RETURNING {_COLUMNS}",
                listener_id,
                org_id,
                queue_id,
                name,
                notify_url,
                liveness_url,
                keys.shown,
                now,
                *extra.values(),
            )
            if row is not None:
                await _record(self._events, tx, EventType.LISTENER_ADDED, org_id, row)
                await self._db.notify(tx, channels.PROBES)
                await self._db.notify(tx, channels.QUEUES)  # the queue's listeners
            return row

        try:
            row = await self._db.run(body)
        except ForeignKeyViolation as exc:  # the queue was deleted meanwhile
            raise NotFound("No queue with this id.") from exc
        if row is None:
            raise NotFound("No queue with this id.")
        return _listener(row)

    async def get(self, org_id: str, queue_id: str, listener_id: str) -> Listener:
        args = (org_id, queue_id, listener_id)
        row = await self._db.point.fetchrow(_GET_FIRST[self._db.dialect], *args)
        if row is None:
            raise _not_found()
        values = _unpacked(self._db.dialect, row)
        if len(values[_WIDTH]) > INLINE_MISSED:
            row = await self._db.fetchrow(_GET_ALL[self._db.dialect], *args)
            if row is None:  # deleted in between
                raise _not_found()
            return _listener_with_missed(row)
        return _listener(values, tuple(sorted(values[_WIDTH])))

    async def list_page(
        self,
        org_id: str,
        queue_id: str | None,
        page: Page,
        within: Sequence[str] | None = None,
    ) -> tuple[list[Listener], int]:
        """One page, of one queue or all; ``within`` keeps items whose id or queue is there."""
        rows, total = await fetch_page(
            self._db,
            "listeners",
            _ALL_MISSED[self._db.dialect],
            org_id,
            page,
            queue_id=queue_id,
            within=within,
            within_queues=True,
        )
        return [_listener_with_missed(r) for r in rows], total

    async def summaries(self, org_id: str, queue_id: str) -> list[tuple[str, str]]:
        """``(id, name)`` of every listener of a queue, oldest first."""
        rows = await self._db.point.fetch(
            "SELECT id, name FROM listeners WHERE org_id = $1 AND queue_id = $2 ORDER BY id",
            org_id,
            queue_id,
        )
        return [(r["id"], r["name"]) for r in rows]

    async def update(
        self, org_id: str, queue_id: str, listener_id: str, changes: dict[str, Any]
    ) -> Listener:
        """Change only the given fields (``name``, ``notify_url``, ``liveness_url``, the
        options and ``status``), in one statement: concurrent updates of different fields
        both take effect. Every update bumps ``options_version`` (the filter cache's
        key). A ``status`` that changes it resets or stops the listener's health
        (storage/health.py) and records ``listener_enabled`` or ``listener_disabled``."""
        if not changes.keys() <= _EDITABLE | OPTIONS | {"status"}:
            raise ValueError(f"not editable: {sorted(changes.keys() - _EDITABLE - OPTIONS)}")
        now = self._clock.now_ms()
        status = changes.get("status")
        changes = {k: v for k, v in changes.items() if k != "status"}

        async def body(tx: Connection) -> Row | None:
            fields = {**_option_columns(changes), "updated_at": now}
            change = None
            if status is not None:
                change, health_fields = await health.set_status(
                    self._db, tx, org_id, queue_id, listener_id, ListenerStatus(status), now
                )
                fields.update(health_fields)
            sets, values = assignments(fields, 4)
            sets += ", options_version = options_version + 1"
            row = await tx.fetchrow(
                f"UPDATE listeners SET {sets} WHERE org_id = $1 AND queue_id = $2 AND id = $3"
                f" RETURNING {_COLUMNS}",
                org_id,
                queue_id,
                listener_id,
                *values,
            )
            if row is not None:
                await _record(self._events, tx, EventType.LISTENER_UPDATED, org_id, row)
                if "name" in changes:  # the queue shows its listeners' names
                    await self._db.notify(tx, channels.QUEUES)
                if change is not None:
                    await self._health_event(tx, org_id, row, change)
            return row

        if await self._db.run(body) is None:
            raise _not_found()
        return await self.get(org_id, queue_id, listener_id)

    async def rotate(
        self, org_id: str, queue_id: str, listener_id: str, keys: KeyPair, grace_ms: int
    ) -> Listener:
        """A new signing key; the one it replaces keeps signing beside it for
        ``grace_ms`` (0: not at all). A key older than that is dropped. In one
        statement, so it cannot race another rotation or an update."""
        now = self._clock.now_ms()
        keep = grace_ms > 0
        previous = (
            "previous_scheme = signature_scheme,"
            " previous_signing_key = COALESCE(signing_key, secret),"
            " previous_secret_expires_at = $8"
            if keep
            else "previous_scheme = NULL, previous_signing_key = NULL,"
            " previous_secret_expires_at = NULL"
        )
        values: list[Any] = [
            keys.shown,
            keys.signing if keys.signing != keys.shown else None,
            keys.scheme,
            now,
            *([now + grace_ms] if keep else []),
        ]

        async def body(tx: Connection) -> Row | None:
            row = await tx.fetchrow(
                f"UPDATE listeners SET {previous}, secret = $4, signing_key = $5,"
                " signature_scheme = $6, updated_at = $7, options_version = options_version + 1"
                f" WHERE org_id = $1 AND queue_id = $2 AND id = $3 RETURNING {_COLUMNS}",
                org_id,
                queue_id,
                listener_id,
                *values,
            )
            if row is not None:
                await _record(self._events, tx, EventType.LISTENER_UPDATED, org_id, row)
            return row

        if await self._db.run(body) is None:
            raise _not_found()
        return await self.get(org_id, queue_id, listener_id)

    async def _health_event(self, tx: Connection, org_id: str, row: Row, change: Change) -> None:
        queue = Ref(row["queue_id"], await queue_name(tx, org_id, row["queue_id"]))
        kind = EventType.LISTENER_ENABLED
        reason = None
        if change is Change.DISABLED:
            kind, reason = EventType.LISTENER_DISABLED, row["disabled_reason"]
        event = NewEvent(
            org_id, kind, queue=queue, listener=Ref(row["id"], row["name"]), reason=reason
        )
        stored = await self._events.add_many(tx, [event])
        if self._alerts_to is not None:
            await alerts.post(self._db, tx, self._alerts_to, stored, self._clock.now_ms())

    async def delete(self, org_id: str, queue_id: str, listener_id: str) -> None:
        """Its deliveries go with it (foreign key cascade): pending ones are dropped."""

        async def body(tx: Connection) -> Row | None:
            # No engine claims its deliveries from here on, then what the cascade
            # deletes, first and in order (storage.locks says why).
            await locks.listener_claims(self._db, tx, listener_id)
            await locks.deliveries(
                self._db,
                tx,
                "org_id = $1 AND listener_id = $2",
                org_id,
                listener_id,
                mode=locks.UPDATE,
            )
            row = await tx.fetchrow(
                "DELETE FROM listeners WHERE org_id = $1 AND queue_id = $2 AND id = $3"
                " RETURNING id, queue_id, name",
                org_id,
                queue_id,
                listener_id,
            )
            if row is not None:
                await _record(self._events, tx, EventType.LISTENER_DELETED, org_id, row)
                await self._db.notify(tx, channels.QUEUES)  # the queue's listeners
            return row

        if await self._db.run(body) is None:
            raise _not_found()


@dataclass(frozen=True, slots=True)
class DueProbe:
    listener_id: str
    liveness_url: str


class Probes:
    """The liveness side of ``listeners``: which probes are due, and their outcomes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, now: int, lease_until: int, next_probe_at: int, limit: int
    ) -> list[DueProbe]:
        """Lease the probes that are due, in one statement (its own transaction, so a
        process paused mid-claim holds no lock). ``FOR NO KEY UPDATE``, not ``FOR
        UPDATE``: the stronger lock conflicts with the ``FOR KEY SHARE`` that every
        ``INSERT INTO deliveries`` takes on its listener for the foreign key, which let
        a stalled prober on one node hold up ingest on the others."""
        lock = " FOR NO KEY UPDATE SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        # Not durable: a lost probe lease only means the probe is made again.
        rows = await self._db.write(
            "UPDATE listeners SET probe_lease_until = $2, next_probe_at = $3"
            " WHERE id IN (SELECT id FROM listeners"
            " WHERE next_probe_at <= $1 AND probe_lease_until <= $1 AND status = 'enabled'"
            f" ORDER BY next_probe_at LIMIT $4{lock}) RETURNING id, liveness_url",
            now,
            lease_until,
            next_probe_at,
            limit,
            durable=False,
        )
        return [DueProbe(r["id"], r["liveness_url"]) for r in rows]

    async def record(self, listener_id: str, ok: bool) -> tuple[LivenessState, LivenessState]:
        """Store one probe outcome; answer the state before and after it."""
        lock = locks.clause(self._db, locks.NO_KEY_UPDATE)

        async def body(tx: Connection) -> tuple[LivenessState, LivenessState]:
            # Locked while read: two outcomes of one listener never overwrite each other.
            row = await tx.fetchrow(
                f"SELECT recent_probes, liveness_state FROM listeners WHERE id = $1{lock}",
                listener_id,
            )
            if row is None:  # deleted meanwhile
                return LivenessState.UNKNOWN, LivenessState.UNKNOWN
            recent = record_probe(row["recent_probes"], ok)
            before, after = LivenessState(row["liveness_state"]), judge(recent)
            await tx.execute(
                "UPDATE listeners SET recent_probes = $2, liveness_state = $3,"
                " success_count = success_count + $4, failure_count = failure_count + $5,"
                " probe_lease_until = 0 WHERE id = $1",
                listener_id,
                recent,
                after.value,
                int(ok),
                int(not ok),
            )
            return before, after

        return await self._db.run(body)

    async def state(self, listener_id: str) -> LivenessState | None:
        value = await self._db.fetchval(
            "SELECT liveness_state FROM listeners WHERE id = $1", listener_id
        )
        return None if value is None else LivenessState(value)
