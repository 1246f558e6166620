"""Owns the health columns of ``listeners`` (SPEC §11): status, circuit breaker and
automatic disable. listeners.py owns the rest of the table and reads these.

The rules are pure (domain/health.py); this module reads a batch's listeners under
lock, applies them and writes the rows back, inside the transaction of the engine's
record batch (two statements per batch, none per attempt). Health events are
returned to that batch, which records them with its own events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidings.domain.health import (
    BreakerPolicy,
    BreakerState,
    Change,
    HealthRow,
    Outcome,
    apply,
    disabled,
    enabled,
)
from tidings.domain.models import DisabledReason, ListenerStatus
from tidings.storage import locks
from tidings.storage.database import Connection, Database, Row, id_list

_HEALTH = (
    "status, disabled_reason, health, consecutive_failures, last_success_at,"
    " last_failure_at, failing_since, breaker_open_until, breaker_cooldown_ms"
)
_WRITTEN = (
    "status",
    "disabled_reason",
    "health",
    "consecutive_failures",
    "last_success_at",
    "last_failure_at",
    "failing_since",
    "breaker_open_until",
    "breaker_cooldown_ms",
)
_WRITE = (
    "UPDATE listeners SET status = $2, disabled_reason = $3, health = $4,"
    " consecutive_failures = $5, last_success_at = $6, last_failure_at = $7,"
    " failing_since = $8, breaker_open_until = $9, breaker_cooldown_ms = $10,"
    " acknowledged_count = acknowledged_count + $11 WHERE id = $1"
)
# What a claim requires of a listener beyond liveness (storage/deliveries.py): enabled,
# and not failing (a failing one gets only its trials, through take_trials).
CLAIMABLE = "l.status = 'enabled' AND l.health = 'healthy'"
# A failing listener whose cool-down is over and that has a delivery due: its trial is
# leased by moving breaker_open_until to the lease's end, so across every engine one
# trial at a time is made (the row is locked while it is picked; SQLite: one writer).
_DUE_TRIALS = """
    SELECT l.id FROM listeners l
    WHERE l.health = 'failing' AND l.status = 'enabled' AND l.breaker_open_until <= $1
      AND l.liveness_state <> 'down' AND {has_due}
    ORDER BY l.breaker_open_until LIMIT $3
"""
# Listener ``l`` has a delivery to attempt at $1 (due, not leased): the claim's
# candidates and the trials. On PostgreSQL one probe of the listener's due index per
# listener in any plan: one made while the tables were nearly empty (asyncpg keeps one
# per statement) joined the EXISTS as a semi-join walking every due delivery per
# listener (72 ms a claim with 100 listeners). OFFSET 0 keeps the EXISTS a subplan run
# per listener; the row comparison leaves the due index (next_attempt_at alone) no
# bound to descend by.
HAS_DUE = {
    dialect: "EXISTS (SELECT 1 FROM deliveries d WHERE d.listener_id = l.id"
    f" AND d.state = 'pending' AND {due} AND d.lease_until <= $1{fence})"
    for dialect, due, fence in [
        ("sqlite", "d.next_attempt_at <= $1", ""),
        ("postgresql", "(d.listener_id, d.next_attempt_at) <= (l.id, $1)", " OFFSET 0"),
    ]
}
# PostgreSQL picks in a MATERIALIZED CTE (a subquery of the UPDATE may be run again
# per row, and with SKIP LOCKED pick more than the limit).
_TAKE_TRIALS_POSTGRES = f"""
WITH due AS MATERIALIZED (
    {_DUE_TRIALS.format(has_due=HAS_DUE["postgresql"])} FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE listeners SET breaker_open_until = $2 WHERE id IN (SELECT id FROM due)
RETURNING id
"""
_TAKE_TRIALS_SQLITE = f"""
UPDATE listeners SET breaker_open_until = $2
WHERE id IN ({_DUE_TRIALS.format(has_due=HAS_DUE["sqlite"])})
RETURNING id
"""


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A transition of one listener, for its health event (and its alert)."""

    org_id: str
    listener_id: str
    change: Change
    reason: DisabledReason | None = None


def row_of(row: Row) -> HealthRow:
    reason = row["disabled_reason"]
    return HealthRow(
        status=ListenerStatus(row["status"]),
        disabled_reason=None if reason is None else DisabledReason(reason),
        state=BreakerState(row["health"]),
        consecutive_failures=row["consecutive_failures"],
        last_success_at=row["last_success_at"],
        last_failure_at=row["last_failure_at"],
        failing_since=row["failing_since"],
        open_until=row["breaker_open_until"],
        cooldown_ms=row["breaker_cooldown_ms"],
    )


def _values(listener_id: str, h: HealthRow) -> tuple[Any, ...]:
    return (
        listener_id,
        h.status.value,
        None if h.disabled_reason is None else h.disabled_reason.value,
        h.state.value,
        h.consecutive_failures,
        h.last_success_at,
        h.last_failure_at,
        h.failing_since,
        h.open_until,
        h.cooldown_ms,
    )


async def read(db: Database, tx: Connection, listener_ids: Sequence[str]) -> dict[str, HealthRow]:
    """The health of these listeners, locked in id order (storage.locks) until ``tx`` ends."""
    ids, value = id_list(db, 1, sorted(listener_ids))
    lock = locks.clause(db, locks.NO_KEY_UPDATE)
    rows = await tx.fetch(
        f"SELECT id, {_HEALTH} FROM listeners WHERE id {ids} ORDER BY id{lock}", value
    )
    return {r["id"]: row_of(r) for r in rows}


async def write(
    tx: Connection, rows: dict[str, HealthRow], acked: Mapping[str, int] | None = None
) -> None:
    """Write health rows back, bumping ``acknowledged_count`` in the same statement:
    on PostgreSQL a second UPDATE of a row this transaction already changed re-checks
    its foreign key (a KEY SHARE lock on its queue), which deadlocked with a queue's
    delete. One UPDATE per listener per batch, in id order."""
    acked = acked or {}
    if rows:
        await tx.executemany(
            _WRITE, [(*_values(lid, h), acked.get(lid, 0)) for lid, h in sorted(rows.items())]
        )


# SQLite: a listener whose attempts in a batch all succeeded and none was a trial
# cannot change state, so it is written without a read (a read inside the
# transaction costs SQLite a second hop to the writer thread). Failures in a row end
# while it is healthy; a failing one is closed by its trial only.
_SUCCEEDED = (
    "UPDATE listeners SET last_success_at = $2, acknowledged_count = acknowledged_count + $3,"
    " consecutive_failures = CASE WHEN health = 'healthy' THEN 0"
    " ELSE consecutive_failures END WHERE id = $1"
)


# PostgreSQL: the same for a batch whose listeners all settled, in one statement
# that locks them in id order first (storage.locks; every row it changes was locked
# by the MATERIALIZED CTE before, whatever the join order): no read, one round trip.
_SUCCEEDED_POSTGRES = """
WITH s AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS s(id, at, acked)
), locked AS MATERIALIZED (
    SELECT s.* FROM s JOIN listeners l ON l.id = s.id ORDER BY l.id FOR NO KEY UPDATE OF l
)
UPDATE listeners l SET last_success_at = k.at, acknowledged_count = acknowledged_count + k.acked,
    consecutive_failures = CASE WHEN health = 'healthy' THEN 0 ELSE consecutive_failures END
FROM locked k WHERE l.id = k.id
"""


async def record(
    db: Database,
    tx: Connection,
    outcomes: dict[str, list[Outcome]],
    orgs: dict[str, str],
    policy: BreakerPolicy,
    now: int,
    acked: Mapping[str, int],
) -> list[HealthChange]:
    """Apply a batch's outcomes (per listener, in the order they happened) inside the
    record batch ``tx``, with the listeners' acknowledged counts; answers the
    transitions. ``orgs``: each listener's org id."""
    if not outcomes:
        return []
    settled = {
        lid: outs for lid, outs in outcomes.items() if not any(o.trial or not o.ok for o in outs)
    }
    if db.dialect == "postgresql":
        if len(settled) == len(outcomes):  # the common case: one statement
            done = sorted(settled.items())
            await tx.execute(
                _SUCCEEDED_POSTGRES,
                [lid for lid, _ in done],
                [outs[-1].at for _, outs in done],
                [acked.get(lid, 0) for lid, _ in done],
            )
            return []
        # Every listener of the batch is locked by one read, in id order: two groups
        # each in order could still cross between two engines' batches.
        settled = {}
    hard = {lid: outs for lid, outs in outcomes.items() if lid not in settled}
    # In id order (storage.locks), one UPDATE per listener either way.
    if settled:
        await tx.executemany(
            _SUCCEEDED,
            [(lid, outs[-1].at, acked.get(lid, 0)) for lid, outs in sorted(settled.items())],
        )
    if not hard:
        return []
    before = await read(db, tx, list(hard))
    after: dict[str, HealthRow] = {}
    changes: list[HealthChange] = []
    for lid, row in before.items():
        new, happened = apply(row, hard[lid], policy, now)
        after[lid] = new
        changes += [HealthChange(orgs[lid], lid, c, reason) for c, reason in happened]
    await write(tx, after, acked)
    return changes


async def set_status(
    db: Database,
    tx: Connection,
    org_id: str,
    queue_id: str,
    listener_id: str,
    status: ListenerStatus,
    now: int,
) -> tuple[Change | None, dict[str, Any]]:
    """For a ``PUT`` of ``status``: the transition (None: already so) and the columns to
    set with it. Enabling resets health and makes the listener due for a probe now."""
    lock = locks.clause(db, locks.NO_KEY_UPDATE)
    row = await tx.fetchrow(
        f"SELECT {_HEALTH} FROM listeners WHERE org_id = $1 AND queue_id = $2 AND id = $3{lock}",
        org_id,
        queue_id,
        listener_id,
    )
    if row is None or ListenerStatus(row["status"]) is status:
        return None, {}
    if status is ListenerStatus.ENABLED:
        new, change = enabled(row_of(row)), Change.ENABLED
    else:
        new, change = disabled(row_of(row)), Change.DISABLED
    columns = dict(zip(_WRITTEN, _values(listener_id, new)[1:], strict=True))
    if status is ListenerStatus.ENABLED:
        columns["next_probe_at"] = now
    return change, columns


async def take_trials(db: Database, now: int, lease_until: int, limit: int) -> list[str]:
    """Lease the trials that are due: ids of failing listeners, each now held until
    ``lease_until`` (when its trial's outcome is recorded, the breaker moves on)."""
    sql = _TAKE_TRIALS_POSTGRES if db.dialect == "postgresql" else _TAKE_TRIALS_SQLITE
    rows = await db.write(sql, now, lease_until, limit, durable=False)
    return [r["id"] for r in rows]


async def give_back_trial(db: Database, listener_id: str, now: int) -> None:
    """A leased trial found no delivery to send after all: due again at once."""
    await db.write(
        "UPDATE listeners SET breaker_open_until = $2"
        " WHERE id = $1 AND health = 'failing' AND breaker_open_until > $2",
        listener_id,
        now,
        durable=False,
    )


async def held(db: Database, listener_id: str) -> bool:
    """Whether the listener's deliveries wait without spending attempts: it is down,
    failing or disabled (or gone)."""
    row = await db.fetchrow(
        "SELECT liveness_state, status, health FROM listeners WHERE id = $1", listener_id
    )
    if row is None:
        return True
    return bool(
        row["liveness_state"] == "down"
        or row["status"] != ListenerStatus.ENABLED.value
        or row["health"] != BreakerState.HEALTHY.value
    )


def outcomes_by_listener(
    results: Sequence[tuple[str, Outcome]],
) -> dict[str, list[Outcome]]:
    grouped: defaultdict[str, list[Outcome]] = defaultdict(list)
    for lid, outcome in sorted(results, key=lambda r: (r[0], r[1].at)):
        grouped[lid].append(outcome)
    return dict(grouped)
