"""Owns the engine's side of the ``deliveries`` table: claim, record, release, redeliver.

Claims are leases: a claimed row carries ``lease_until`` and the id of the engine
that claimed it (``claimed_by``). When an engine dies, another releases its claims
at once (storage/engines.py); the lease running out is the last resort, for an
engine that lives but is stalled. PostgreSQL claims with ``FOR NO KEY UPDATE SKIP
LOCKED`` so several workers never take the same row at once; SQLite has a single
writer, so its claim statement is exclusive anyway.
Claims are per listener (at most ``per_listener`` rows each, listeners marked
``down`` or already busy skipped) so one backlog never starves other listeners.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tidings.config import Settings
from tidings.domain.clock import Clock
from tidings.domain.events import EventType, NewEvent, Ref
from tidings.domain.flow import RATE_LOOKAHEAD_MS, Flow, allowances
from tidings.domain.health import BreakerPolicy, Change, Outcome
from tidings.domain.models import AttemptError, AttemptOutcome, DeliveryState
from tidings.storage import alerts, channels, health, leases, locks
from tidings.storage.attempts import Attempts, NewAttempt
from tidings.storage.claims import (
    Claim,
    by_count,
    json_ids,
    schedule,
    trim_sqlite,
)
from tidings.storage.database import Connection, Database, Row, id_list
from tidings.storage.events import EventLog
from tidings.storage.messages import Messages

# Each row's own columns first: sqlite3.Row finds a column by name by comparing it
# with the names before it, and a claim reads the listener's and queue's columns
# (the rest) only once per listener (``_listener_part``).
_CLAIMED = (
    "d.message_id, d.listener_id, d.attempts, m.name AS message_name, m.data, m.created_at,"
    " l.org_id, l.name AS listener_name, l.notify_url, l.secret,"
    " q.id AS queue_id, q.name AS queue_name"
    # listener options (SPEC §10): what the request carries and how it is signed
    ", l.headers, l.signature_scheme, l.signing_key, l.previous_scheme,"
    " l.previous_signing_key, l.previous_secret_expires_at"
)
# PostgreSQL leases in one statement, after storage/claims.py read each candidate's
# flow (its transaction holds the candidates' listener rows): pick and lock up to each
# listener's allowance (``a.allow``; for an ordered one only its head), lease them,
# answer them. Each joined row is looked up by its key in every plan (OFFSET 0 keeps a
# LATERAL subquery from being flattened into a join the planner may hash over a whole
# table; the row comparison gives the due index no usable bound, so only the
# listener's due index can serve the pick): asyncpg keeps one generic plan per
# statement, and one made while the tables were nearly empty (a new database) walked
# every listener's due deliveries and hashed all messages per claim (a test:
# tests/integration/test_delivery_plans.py). The lease finds the locked rows by ctid:
# a TID scan, except in a plan made while deliveries was under ~40 pages (about 2,000
# rows; the planner prices 10 TIDs at random_page_cost), which scans it whole until an
# ANALYZE or the statement's re-preparation (storage/postgres.py, 30 s) replaces the
# plan: no statement form avoids that. Only rows the lease really updated are
# answered (a row whose newer version was locked is not visible to this statement's
# UPDATE: it stays unleased and is not sent), and counted in the same statement
# (storage/leases.py). Rows come back in the round-robin order. FOR NO KEY UPDATE:
# the weakest lock that keeps other engines off the row.
_LEASE_SHAPE = """
WITH a AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[]{top}) AS a(id, allow, head{top_as})
), picked AS MATERIALIZED (
    SELECT {claimed}, d.row_id, d.next_attempt_at, l.id <= $5 AS wrapped{others}
    FROM a
    CROSS JOIN LATERAL (SELECT * FROM listeners WHERE id = a.id OFFSET 0) l{count}
    CROSS JOIN LATERAL (
        SELECT ctid AS row_id, message_id, listener_id, attempts, next_attempt_at
        FROM deliveries
        WHERE listener_id = l.id AND state = 'pending'
          AND (listener_id, next_attempt_at) <= (l.id, $4) AND lease_until <= $4
          AND (a.head IS NULL OR message_id = a.head)
        ORDER BY next_attempt_at LIMIT {allow}
        FOR NO KEY UPDATE SKIP LOCKED
    ) d
    CROSS JOIN LATERAL (
        SELECT name, data, created_at FROM messages WHERE id = d.message_id OFFSET 0
    ) m
    CROSS JOIN LATERAL (SELECT id, name FROM queues WHERE id = l.queue_id OFFSET 0) q
), leased AS (
    UPDATE deliveries SET lease_until = $6, claimed_by = $7
    WHERE ctid = ANY(ARRAY(SELECT row_id FROM picked))
    RETURNING message_id, listener_id
), counted AS ({counted})
SELECT p.* FROM picked p JOIN leased USING (message_id, listener_id)
ORDER BY p.wrapped, p.listener_id, p.next_attempt_at, p.message_id
"""
_LEASE_POSTGRES = _LEASE_SHAPE.format(
    top="",
    top_as="",
    claimed=_CLAIMED,
    others="",
    count="",
    allow="a.allow",
    counted=leases.ADD_LEASED_POSTGRES.format(by="$7::bigint", bucket="$8::bigint"),
)
# The same that also counts the other engines' leases of each listener (this
# statement's snapshot is taken after the lock, like a statement of their own) and
# looks its allowance up for that count (storage/claims.py ``by_count``): $2 is where
# each listener's row starts in the flat table $8 (1-based), $9 its last offset; $10
# the bucket that counts the leases.
_LEASE_COUNTING_POSTGRES = _LEASE_SHAPE.format(
    top=", $9::int[]",
    top_as=", top",
    claimed=_CLAIMED,
    others=", o.n AS others",
    count="\n    CROSS JOIN LATERAL (SELECT "
    + leases.OTHERS.format(listener="l.id", by="$7", now="$4")
    + " AS n) o",
    allow="($8::int[])[a.allow + least(o.n, a.top)]",
    counted=leases.ADD_LEASED_POSTGRES.format(by="$7::bigint", bucket="$10::bigint"),
)
# SQLite cannot LIMIT by a column: one UPDATE leases up to the largest allowance of
# each candidate (for an ordered one only its head), and what a listener got beyond
# its own allowance is given back at once (rare: most claims have one allowance for
# all). What to send is read after the commit, on a reader (RETURNING can only name
# the leased table).
_LEASE_SQLITE = """
UPDATE deliveries SET lease_until = $4, claimed_by = $5
WHERE rowid IN (
    SELECT d.rowid
    FROM (
        SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS head
        FROM json_each($1)
    ) a
    JOIN deliveries d ON d.rowid IN (
        SELECT rowid FROM deliveries
        WHERE listener_id = a.id AND state = 'pending'
          AND next_attempt_at <= $2 AND lease_until <= $2
          AND (a.head IS NULL OR message_id = a.head)
        ORDER BY next_attempt_at LIMIT $3
    )
)
RETURNING rowid AS row_id, listener_id, next_attempt_at, message_id
"""
_UNLEASE_SQLITE = (
    "UPDATE deliveries SET lease_until = 0 WHERE rowid IN (SELECT value FROM json_each($1))"
)
# A breaker's trial: the listener's earliest due delivery, leased (storage/health.py
# leased the trial itself). Then read like any claim, by key.
# (PostgreSQL: the row is picked in a MATERIALIZED CTE and leased by ctid. Picked in
# a subquery of the UPDATE, it was re-run per row and, skipping the row the statement
# had just leased, leased one more each time.)
# Under the claims' lock of the listener, as every claim (storage.locks).
_CLAIM_TRIAL_POSTGRES = f"""
WITH gate AS MATERIALIZED (
    SELECT pg_try_advisory_xact_lock({locks.CLAIMS_SPACE}, hashtext($1)) AS open
), picked AS MATERIALIZED (
    SELECT ctid AS row_id FROM deliveries WHERE (SELECT open FROM gate)
      AND listener_id = $1 AND state = 'pending'
      AND next_attempt_at <= $2 AND lease_until <= $2
    ORDER BY next_attempt_at LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE deliveries SET lease_until = $3, claimed_by = $4
WHERE ctid = ANY(ARRAY(SELECT row_id FROM picked))
RETURNING message_id
"""
_CLAIM_TRIAL_SQLITE = """
UPDATE deliveries SET lease_until = $3, claimed_by = $4
WHERE rowid = (
    SELECT rowid FROM deliveries WHERE listener_id = $1 AND state = 'pending'
      AND next_attempt_at <= $2 AND lease_until <= $2
    ORDER BY next_attempt_at LIMIT 1
)
RETURNING message_id
"""
# One row by its key, still pending: an exact look-up in whichever index the plan
# takes, whatever PostgreSQL knows of the table. The state comes from a subquery,
# which no plan reads as a constant: a literal "= 'pending'" matches the predicate of
# the partial listener indexes, which a plan made without statistics (a backlog that
# grew faster than autovacuum analyzes) takes for tiny and then filters the listener's
# whole backlog for every row (10 ms a row at 20,000 pending); "state NOT IN
# ('delivered', 'missed')" let ix_deliveries_listener_state (listener_id, state,
# message_id) match the listener alone, which the generic plan asyncpg's prepared
# statement keeps (made on an empty table: a new database) took, ~1 ms a row at 10,000
# deliveries and delivery after a burst at 640/s (docs/benchmarks.md). This way the
# primary key and that index both match the whole key.
_KEY_PENDING = "message_id = $1 AND listener_id = $2 AND state = (SELECT 'pending')"
# A breaker trial's row (one per failing listener and cool-down), looked up the same
# way: the key's columns are the deliveries' own, no other table here has them.
_CLAIMED_ONE = f"""
SELECT {_CLAIMED}
FROM deliveries d
JOIN listeners l ON l.id = d.listener_id
JOIN messages m ON m.id = d.message_id
JOIN queues q ON q.id = l.queue_id
WHERE {_KEY_PENDING}
"""
_CLAIMED_SQLITE = f"""
SELECT d.rowid AS row_id, {_CLAIMED}
FROM deliveries d
JOIN listeners l ON l.id = d.listener_id
JOIN messages m ON m.id = d.message_id
JOIN queues q ON q.id = l.queue_id
WHERE d.rowid IN (SELECT value FROM json_each($1))
"""
_RELEASE = f"UPDATE deliveries SET lease_until = 0 WHERE {_KEY_PENDING}"
_RECORD = (
    "UPDATE deliveries SET state = $3, attempts = $4, last_status = $5, last_attempt_at = $6,"
    f" next_attempt_at = $7, lease_until = 0 WHERE {_KEY_PENDING}"
)


# Not frozen, like the other records built per delivery (AttemptResult, NewAttempt,
# sender.Response, health.Outcome, NewEvent, Ref): a frozen dataclass's __init__ sets
# each field through object.__setattr__, ~0.1 us a field, and a delivery builds about
# 70 fields' worth of them (docs/benchmarks.md, engine CPU, third pass). Never mutated.
@dataclass(slots=True)
class Claimed:
    message_id: str
    listener_id: str
    attempts: int  # attempts made before this one
    org_id: str
    listener_name: str
    notify_url: str
    secret: str
    message_name: str | None
    data: str
    created_at: int
    queue_id: str
    queue_name: str
    headers: str | None = None  # JSON object of the listener's static headers
    signing: SigningKeys | None = None  # None: v1 with ``secret``
    start_at: float = 0  # rate_limit: not started before this (ms)
    max_in_flight: int = 16  # the listener's cap (SPEC §10), across engines
    send_cap: int = 16  # of which this engine may use now (domain/flow.py)
    ordered: bool = False
    rate_limit: float | None = None
    # A circuit breaker's single trial (SPEC §11): it never makes its message missed.
    trial: bool = False
    # Where its lease is counted (storage/leases.py); None: not counted (a trial).
    counted: leases.Counted | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.message_id, self.listener_id


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """The key that signs a claimed delivery and, during a rotation's grace period,
    the previous one. Never logged (the repr leaves the keys out)."""

    scheme: str
    key: str = field(repr=False)
    previous_scheme: str | None = None
    previous_key: str | None = field(default=None, repr=False)
    previous_until: int | None = None  # ms


def _signing(row: Row) -> SigningKeys | None:
    scheme, key = row["signature_scheme"], row["signing_key"] or row["secret"]
    previous = row["previous_signing_key"]
    if scheme == "v1" and previous is None and key == row["secret"]:
        return None
    return SigningKeys(
        scheme, key, row["previous_scheme"], previous, row["previous_secret_expires_at"]
    )


# Per listener, how many of its deliveries may wait in the claiming engine beyond its
# send slots (domain/flow.py ``window``); asked only for a claim's candidates.
Prefetch = Callable[[str], int]


class Batch(list[Claimed]):
    """What a claim leased. ``cut``: the claim's limit was shared out before every
    listener with due rows had its allowance (each got a share whether or not it had
    that many due), so more may be due now: the engine claims again at once."""

    cut: bool = False


@dataclass(slots=True)  # not frozen: see Claimed
class AttemptResult:
    claimed: Claimed
    status: int | None  # HTTP status, None when no response came
    state: DeliveryState
    attempts: int  # including this one
    attempted_at: int
    next_attempt_at: int | None
    # For the attempt log (SPEC §11); no ``attempt_id``: not logged (tests, benchmarks).
    attempt_id: str | None = None
    started_at: int = 0
    duration_ms: int = 0
    failure: AttemptError | None = None
    response_body: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.state is DeliveryState.DELIVERED


def _logged(r: AttemptResult, ok: bool) -> NewAttempt:
    c = r.claimed
    assert r.attempt_id is not None
    return NewAttempt(
        id=r.attempt_id,
        org_id=c.org_id,
        queue_id=c.queue_id,
        message_id=c.message_id,
        listener_id=c.listener_id,
        attempt=c.attempts + 1,
        started_at=r.started_at,
        duration_ms=r.duration_ms,
        outcome=_ACKNOWLEDGED if ok else _FAILED,
        status=r.status,
        error=r.failure,
        response_body=r.response_body,
    )


def _listener_part(row: Row) -> dict[str, Any]:
    """The columns of a claimed row that are its listener's and its queue's."""
    return {
        "org_id": row["org_id"],
        "listener_name": row["listener_name"],
        "notify_url": row["notify_url"],
        "secret": row["secret"],
        "queue_id": row["queue_id"],
        "queue_name": row["queue_name"],
        "headers": row["headers"],
        "signing": _signing(row),
    }


def _claimed(
    row: Row,
    flow: Flow | None = None,
    start_at: float = 0.0,
    trial: bool = False,
    listener: dict[str, Any] | None = None,  # _listener_part(row), when already read
    counted: leases.Counted | None = None,
) -> Claimed:
    return Claimed(
        message_id=row["message_id"],
        listener_id=row["listener_id"],
        attempts=row["attempts"],
        message_name=row["message_name"],
        data=row["data"],
        created_at=row["created_at"],
        **(_listener_part(row) if listener is None else listener),
        start_at=start_at,
        max_in_flight=16 if flow is None else flow.max_in_flight,
        send_cap=16 if flow is None else flow.send_cap,
        ordered=flow is not None and flow.ordered,
        rate_limit=None if flow is None else flow.rate_limit,
        trial=trial,
        counted=counted,
    )


_CHANGE_EVENTS = {
    Change.FAILING: EventType.LISTENER_FAILING,
    Change.RECOVERED: EventType.LISTENER_RECOVERED,
    Change.DISABLED: EventType.LISTENER_DISABLED,
    Change.ENABLED: EventType.LISTENER_ENABLED,
}


def health_event(change: health.HealthChange, listener: Ref, queue: Ref) -> NewEvent:
    return NewEvent(
        change.org_id,
        _CHANGE_EVENTS[change.change],
        queue=queue,
        listener=listener,
        reason=None if change.reason is None else change.reason.value,
    )


# Looked up once: an enum member is a class attribute lookup through the enum's
# metaclass, and a record batch reads these for every attempt.
_DELIVERED = DeliveryState.DELIVERED
_STATES = {s: s.value for s in DeliveryState}
_ACKNOWLEDGED, _FAILED = AttemptOutcome.ACKNOWLEDGED, AttemptOutcome.FAILED
# One event per attempt: ``ok`` when it was acknowledged, else ``not_ok``.
_PUBLISHED = {True: EventType.MESSAGE_PUBLISHED_OK, False: EventType.MESSAGE_PUBLISHED_NOT_OK}


DEFAULT_POLICY = Settings().breaker_policy


async def _lease_counting(
    tx: Connection,
    tables: dict[str, list[int]],
    now: int,
    after: str,
    lease_until: int,
    counted: leases.Counted,
) -> list[Row]:
    """Lease for listeners whose allowance depends only on the other engines' leases,
    which the statement counts (storage/claims.py ``by_count``)."""
    ids = list(tables)
    firsts: list[int] = []
    flat: list[int] = []
    for i in ids:
        firsts.append(len(flat) + 1)
        flat += tables[i]
    tops = [len(tables[i]) - 1 for i in ids]
    heads = [None] * len(ids)
    by, bucket = counted
    return await tx.fetch(
        _LEASE_COUNTING_POSTGRES,
        *(ids, firsts, heads, now, after, lease_until, by, flat, tops, bucket),
    )


class Deliveries:
    def __init__(
        self,
        db: Database,
        events: EventLog,
        clock: Clock,
        attempts: Attempts | None = None,
        alerts_to: Messages | None = None,
    ) -> None:
        self._db = db
        self._events = events
        self._clock = clock
        self._attempts = attempts or Attempts(db)
        self._alerts_to = alerts_to

    async def claim(
        self,
        by: int,
        now: int,
        lease_until: int,
        limit: int,
        per_listener: int,
        busy: Sequence[str],
        after: str = "",
        default_cap: int = 16,
        held: Mapping[str, int] | None = None,
        prefetch: Prefetch | None = None,
    ) -> Batch:
        """Lease up to ``limit`` due deliveries to engine ``by``, listener by listener
        in id order starting after listener ``after`` and wrapping around (the engine
        rotates it, so with more busy listeners than slots each gets its turn instead
        of the first ones in the table), each at most ``per_listener`` and what its
        flow control allows (storage/claims.py; ``default_cap``: ``max_in_flight`` of
        listeners that set none).
        """
        # Rate-limited deliveries may wait up to the look-ahead before they start.
        lease_until += int(RATE_LOOKAHEAD_MS)
        counted = (by, leases.bucket(now, lease_until))

        cut = False

        async def body(tx: Connection) -> tuple[list[Row], dict[str, Flow], dict[str, list[float]]]:
            nonlocal cut
            claim = Claim(self._db, tx, now, by)
            flows = await claim.flows(busy, after, limit, default_cap, held or {}, prefetch)
            postgres = self._db.dialect == "postgresql"
            tables = by_count(flows, per_listener, limit, now) if postgres else None
            if tables is not None:
                if not tables:
                    return [], {}, {}
                rows = await _lease_counting(tx, tables, now, after, lease_until, counted)
                others = {r["listener_id"]: r["others"] for r in rows}
                flows = [
                    replace(f, leased=others[f.listener_id])
                    for f in flows
                    if f.listener_id in others
                ]
                return rows, {f.listener_id: f for f in flows}, {lid: [] for lid in others}
            if postgres:
                flows = await claim.leased(flows)
            room = allowances(flows, per_listener, limit, now)
            if not room:
                return [], {}, {}
            cut = sum(room.values()) >= limit
            heads = {f.listener_id: f.head for f in flows if f.ordered}
            if postgres:
                ids = list(room)
                rows = await tx.fetch(
                    _LEASE_POSTGRES,
                    ids,
                    [room[i] for i in ids],
                    [heads.get(i) for i in ids],
                    now,
                    after,
                    lease_until,
                    by,
                    counted[1],
                )
                taken = Counter(r["listener_id"] for r in rows)  # and counted them
            else:
                wanted = json_ids([[i, heads.get(i)] for i in room])
                leased = await tx.fetch(
                    _LEASE_SQLITE, wanted, now, max(room.values()), lease_until, by
                )
                rows, extra = trim_sqlite(leased, room)
                if extra:
                    await tx.execute(_UNLEASE_SQLITE, json_ids(extra))
                taken = Counter(r["listener_id"] for r in rows)
                await leases.add(tx, taken, counted)
            starts, moved = schedule(flows, taken, now)
            await claim.advance_rates(moved)
            return rows, {f.listener_id: f for f in flows}, starts

        # A lost lease only makes the row claimable sooner: no flush needed.
        rows, flows, starts = await self._db.run(body, durable=False)
        claimed = Batch()
        if not rows:
            return claimed
        if self._db.dialect != "postgresql":
            rows = await self._read_sqlite(rows, after)
        parts: dict[str, dict[str, Any]] = {}  # per listener, read from its first row
        for r in rows:
            lid = r["listener_id"]
            flow = flows[lid]
            start = starts[lid].pop(0) if flow.rate_limit is not None else 0.0
            part = parts.get(lid)
            if part is None:
                part = parts[lid] = _listener_part(r)
            claimed.append(_claimed(r, flow, start, listener=part, counted=counted))
        claimed.cut = cut
        return claimed

    async def _read_sqlite(self, leased: list[Row], after: str) -> list[Row]:
        # A row deleted since (its message or listener went) is simply not sent. Read
        # on the loop's own thread (``point``): rows by rowid and their keys' rows,
        # where a hop to a reader thread and back cost more (docs/benchmarks.md).
        found = {
            r["row_id"]: r
            for r in await self._db.point.fetch(
                _CLAIMED_SQLITE, json.dumps([r["row_id"] for r in leased])
            )
        }
        order = sorted(
            leased,
            key=lambda r: (
                r["listener_id"] <= after,
                r["listener_id"],
                r["next_attempt_at"],
                r["message_id"],
            ),
        )
        return [found[r["row_id"]] for r in order if r["row_id"] in found]

    async def claim_trials(self, by: int, now: int, lease_until: int, limit: int) -> list[Claimed]:
        """The circuit breaker's trials that are due (SPEC §11): for each failing
        listener whose cool-down is over, its earliest due delivery, leased to ``by``.
        One trial per listener at a time across every engine (storage/health.py)."""
        trials: list[Claimed] = []
        sql = _CLAIM_TRIAL_POSTGRES if self._db.dialect == "postgresql" else _CLAIM_TRIAL_SQLITE
        for listener_id in await health.take_trials(self._db, now, lease_until, limit):
            leased = await self._db.write(sql, listener_id, now, lease_until, by, durable=False)
            row = None
            if leased:
                row = await self._db.fetchrow(_CLAIMED_ONE, leased[0]["message_id"], listener_id)
            if row is None:
                await health.give_back_trial(self._db, listener_id, now)
                continue
            trials.append(_claimed(row, trial=True))
        return trials

    async def held(self, listener_id: str) -> bool:
        """Whether the listener's deliveries wait unspent (down, failing, disabled)."""
        return await health.held(self._db, listener_id)

    async def record(
        self, results: Sequence[AttemptResult], policy: BreakerPolicy | None = None
    ) -> list[health.HealthChange]:
        """Write a batch of attempt outcomes, the attempt log, listener health and
        counters and events in one commit; answers the health transitions.

        Not flushed: a power loss that undoes it means those deliveries are attempted
        again, which at-least-once delivery allows (receivers dedupe on webhook-id)."""
        # In the lock order (storage.locks): deliveries sorted, then their listeners.
        ordered = sorted(results, key=lambda r: (r.claimed.listener_id, r.claimed.message_id))
        outcomes = [
            (
                r.claimed.message_id,
                r.claimed.listener_id,
                _STATES[r.state],
                r.attempts,
                r.status,
                r.attempted_at,
                r.next_attempt_at,
            )
            for r in ordered
        ]
        acked: Counter[str] = Counter()
        ended: Counter[tuple[str, leases.Counted]] = Counter()  # leases to take off
        events: list[NewEvent] = []
        logged: list[NewAttempt] = []
        seen: dict[str, Claimed] = {}
        refs: dict[str, tuple[Ref, Ref]] = {}  # per listener: its queue and itself
        outcomes_of: list[tuple[str, Outcome]] = []
        for r in results:  # one pass, the listener's parts built once per batch
            c = r.claimed
            lid = c.listener_id
            ok = r.state is _DELIVERED
            if ok:
                acked[lid] += 1
            seen[lid] = c
            pair = refs.get(lid)
            if pair is None:
                pair = refs[lid] = (Ref(c.queue_id, c.queue_name), Ref(lid, c.listener_name))
            message = Ref(c.message_id, c.message_name)
            events.append(NewEvent(c.org_id, _PUBLISHED[ok], None, *pair, message))
            if r.attempt_id is not None:
                logged.append(_logged(r, ok))
            outcomes_of.append((lid, Outcome(r.attempted_at, ok, r.status, c.trial)))
            if c.counted is not None:
                ended[lid, c.counted] += 1
        by_listener = health.outcomes_by_listener(outcomes_of)
        orgs = {lid: c.org_id for lid, c in seen.items()}
        policy = policy or DEFAULT_POLICY
        now = self._clock.now_ms()

        async def body(tx: Connection) -> list[health.HealthChange]:
            await tx.executemany(_RECORD, outcomes)
            await leases.take(tx, ended)  # after the deliveries, before the listeners
            await self._attempts.add_many(tx, logged)  # new rows: no lock order
            # Listeners in id order, after their deliveries (storage.locks): health and
            # the acknowledged counts in one UPDATE each (storage/health.py says why).
            changes = await health.record(self._db, tx, by_listener, orgs, policy, now, acked)
            happened = [
                health_event(
                    ch,
                    Ref(ch.listener_id, seen[ch.listener_id].listener_name),
                    Ref(seen[ch.listener_id].queue_id, seen[ch.listener_id].queue_name),
                )
                for ch in changes
            ]
            stored = await self._events.add_many(tx, events + happened)
            if happened and self._alerts_to is not None:
                await alerts.post(self._db, tx, self._alerts_to, stored[len(events) :], now)
            if any(ch.change is Change.RECOVERED for ch in changes):
                # What waited while it was failing is due: engines claim it at once.
                await self._db.notify(tx, channels.DELIVERIES)
            return changes

        return await self._db.run(body, durable=False)

    async def release(self, keys: Sequence[tuple[str, str]]) -> None:
        """Give claimed rows back at once (shutdown), instead of waiting for the lease."""
        if keys:  # in the lock order (storage.locks)
            ordered = sorted(keys, key=lambda key: (key[1], key[0]))
            await self._db.run(lambda tx: tx.executemany(_RELEASE, ordered))

    async def redeliver(
        self, org_id: str, listener_id: str, message_ids: Sequence[str] | None
    ) -> list[str]:
        """Give missed deliveries a fresh schedule, due now; ids that are not missed are
        ignored."""
        now = self._clock.now_ms()
        where = "org_id = $1 AND listener_id = $2 AND state = 'missed'"
        args: list[Any] = [org_id, listener_id]
        if message_ids is not None:
            in_ids, value = id_list(self._db, 3, sorted(set(message_ids)))
            where += f" AND message_id {in_ids}"
            args.append(value)
        at = f"${len(args) + 1}"

        async def body(tx: Connection) -> list[Row]:
            await locks.deliveries(self._db, tx, where, *args)
            rows = await tx.fetch(
                f"UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = {at},"
                f" lease_until = 0 WHERE {where} RETURNING message_id",
                *args,
                now,
            )
            if rows:
                await self._db.notify(tx, channels.DELIVERIES)
            return rows

        return sorted(r["message_id"] for r in await self._db.run(body))

    async def next_due(self, now: int) -> int | None:
        """When the earliest pending delivery due after ``now`` is due (delayed
        messages, retries): one step down the due-time index, however many wait."""
        at: int | None = await self._db.fetchval(
            "SELECT next_attempt_at FROM deliveries WHERE state = 'pending'"
            " AND next_attempt_at > $1 ORDER BY next_attempt_at LIMIT 1",
            now,
        )
        return at

    async def wake_listener(self, listener_id: str, now: int) -> int:
        """A listener came back: its waiting retries are due at once. Deliveries not
        attempted yet keep their time: a delayed message waits for its ``deliver_at``."""

        waiting = "listener_id = $1 AND state = 'pending' AND next_attempt_at > $2 AND attempts > 0"

        async def body(tx: Connection) -> int:
            await locks.deliveries(self._db, tx, waiting, listener_id, now)
            count = await tx.execute(
                f"UPDATE deliveries SET next_attempt_at = $2 WHERE {waiting}", listener_id, now
            )
            await self._db.notify(tx, channels.DELIVERIES)
            return count

        return await self._db.run(body)
