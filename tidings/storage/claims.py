"""The engine's claim: lease due deliveries under each listener's flow control
(SPEC §10: ``max_in_flight``, ``rate_limit`` and ``ordered`` across every engine that
shares the database). The rules are pure (domain/flow.py); this module reads what
they need and writes what they decide, in one transaction:

1. **candidates**: listeners with due, unleased deliveries that may be attempted
   (not ``down``, not busy here, under their rate horizon; enabled and not failing,
   storage/health.py), in round-robin order.
   On PostgreSQL each is taken under a transaction-level advisory lock of its own
   (``pg_try_advisory_xact_lock``; one that is taken is skipped): two engines never
   claim for one listener at the same time, and what follows (leases, rate state) is
   read in a snapshot taken after the lock, so each sees the other's committed
   leases and rate state. Not a row lock: the recorder's UPDATE of the listener's
   health and counters holds its row for its whole commit, and a claim that skipped
   locked rows found nothing for a busy listener every other time (PostgreSQL
   delivery: docs/benchmarks.md).
2. **flow**: the other engines' leased deliveries per candidate (their counts,
   storage/leases.py; this engine's own come from the engine), and for ordered ones
   their oldest pending delivery (store order = message id order).
3. **lease** as many due rows per listener as its allowance says, and count them
   (storage/leases.py). On PostgreSQL,
   when no candidate is ordered or rate-limited and ``limit`` does not bind, 2 and 3
   are one statement (``by_count``).
4. **rate state**: each rate-limited listener's next allowed start moves on.

SQLite has one writer, so its transaction is exclusive anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tidings.domain.flow import RATE_LOOKAHEAD_MS, Flow, allowance, start_times
from tidings.storage import health, leases, locks
from tidings.storage.database import Connection, Database, Row, id_list

_CANDIDATES = """
SELECT l.id, l.max_in_flight, l.rate_limit, l.rate_next_at, l.ordered{counts}
FROM listeners l
WHERE l.liveness_state <> 'down' AND NOT (l.id {busy})
  AND (l.rate_limit IS NULL OR l.rate_next_at <= $2)
  AND {claimable} AND {has_due}
ORDER BY l.id <= $4, l.id
LIMIT $5
"""
# Locked after LIMIT (a subquery with LIMIT is never flattened, so the lock is tried
# only for the rows kept); the two-key form: a key space apart from engine locks.
_CANDIDATES_POSTGRES = (
    "SELECT c.* FROM (" + _CANDIDATES + ") c"
    f" WHERE pg_try_advisory_xact_lock({locks.CLAIMS_SPACE}, hashtext(c.id))"
    " ORDER BY c.id <= $4, c.id"
)
# Rate state as committed before the lock (the candidates' snapshot may be older).
_RATES = "SELECT id, rate_next_at FROM listeners WHERE id {ids}"
# SQLite's claim transaction is exclusive: the counts can come with the candidates
# (one hop to the writer instead of two). Evaluated only for the rows LIMIT keeps.
# (This engine's own leases are not read: ``held`` says which still count.)
_COUNTS_SQLITE = ", " + leases.OTHERS.format(listener="l.id", by="$6", now="$1") + " AS others"
# PostgreSQL only; one key range per listener whatever the plan.
_LEASED = (
    "SELECT a.id AS listener_id, "
    + leases.OTHERS.format(listener="a.id", by="$3", now="$2")
    + " AS n FROM unnest($1::text[]) AS a(id)"
)
# min() per listener: one index probe each (ix_deliveries_listener_state).
_HEADS = """
SELECT d.listener_id, d.message_id, d.next_attempt_at, d.lease_until
FROM (
    SELECT l.id, (
        SELECT min(message_id) FROM deliveries
        WHERE listener_id = l.id AND state = 'pending'
    ) AS head
    FROM listeners l WHERE l.id {ids}
) h
JOIN deliveries d ON d.listener_id = h.id AND d.message_id = h.head
"""
_RATE = "UPDATE listeners SET rate_next_at = $2 WHERE id = $1"


def _flows(
    candidates: list[Row],
    leased: dict[tuple[str, bool], int],
    heads: dict[str, str],
    default_cap: int,
    prefetch: Callable[[str], int] | None,
) -> list[Flow]:
    return [
        Flow(
            listener_id=c["id"],
            max_in_flight=c["max_in_flight"] or default_cap,
            rate_limit=c["rate_limit"],
            rate_next_at=float(c["rate_next_at"]),
            ordered=bool(c["ordered"]),
            leased=leased.get((c["id"], False), 0),
            head=heads.get(c["id"]),
            mine=leased.get((c["id"], True), 0),
            prefetch=0 if prefetch is None else prefetch(c["id"]),
        )
        for c in candidates
    ]


def candidates_sql(dialect: str, busy: str) -> str:
    """The candidates statement of ``dialect``; ``busy``: the listeners this engine is
    busy with, as ``id_list`` spells their parameter $3."""
    postgres = dialect == "postgresql"
    return (_CANDIDATES_POSTGRES if postgres else _CANDIDATES).format(
        busy=busy,
        claimable=health.CLAIMABLE,
        counts="" if postgres else _COUNTS_SQLITE,
        has_due=health.HAS_DUE[dialect],
    )


class Claim:
    """One claim's reads and writes on a transaction; the statements that pick and
    lease rows differ by dialect (``lease``)."""

    def __init__(self, db: Database, tx: Connection, now: int, by: int) -> None:
        self._db = db
        self._tx = tx
        self._now = now
        self._by = by

    async def flows(
        self,
        busy: Sequence[str],
        after: str,
        limit: int,
        default_cap: int,
        held: Mapping[str, int],
        prefetch: Callable[[str], int] | None,
    ) -> list[Flow]:
        """``held``: per listener, the deliveries this engine holds and has not
        finished (its own leases of finished attempts whose outcome is still being
        written do not count against its window); ``prefetch``: how many of a
        listener's may wait in it (domain/flow.py ``window``), asked per candidate."""
        postgres = self._db.dialect == "postgresql"
        in_busy, excluded = id_list(self._db, 3, busy)
        sql = candidates_sql(self._db.dialect, in_busy)
        args = [self._now, self._now + RATE_LOOKAHEAD_MS, excluded, after, limit]
        candidates = await self._tx.fetch(sql, *args, *([] if postgres else [self._by]))
        if not candidates:
            return []
        leased: dict[tuple[str, bool], int] = {}
        if postgres:
            # Other engines' leases are read by leased() or by the lease statement.
            rated = [c["id"] for c in candidates if c["rate_limit"] is not None]
            if rated:
                in_rated, value = id_list(self._db, 1, rated)
                found = await self._tx.fetch(_RATES.format(ids=in_rated), value)
                rates = {r["id"]: r["rate_next_at"] for r in found}
                candidates = [
                    {**c, "rate_next_at": rates[c["id"]]} if c["id"] in rates else c
                    for c in candidates
                ]
        else:
            for c in candidates:
                leased[c["id"], False] = c["others"]
        heads: dict[str, str] = {}
        ordered = [c["id"] for c in candidates if c["ordered"]]
        if ordered:
            in_ordered, value = id_list(self._db, 1, ordered)
            for r in await self._tx.fetch(_HEADS.format(ids=in_ordered), value):
                # The head may go only once it is due and nobody holds it.
                if r["next_attempt_at"] <= self._now and r["lease_until"] <= self._now:
                    heads[r["listener_id"]] = r["message_id"]
        for c in candidates:
            leased[c["id"], True] = held.get(c["id"], 0)
        return _flows(candidates, leased, heads, default_cap, prefetch)

    async def leased(self, flows: list[Flow]) -> list[Flow]:
        """PostgreSQL: ``flows`` with the other engines' leases of each listener, read
        after the lock (a snapshot that holds every lease committed before)."""
        ids = [f.listener_id for f in flows]
        others = {
            r["listener_id"]: r["n"]
            for r in await self._tx.fetch(_LEASED, ids, self._now, self._by)
        }
        return [replace(f, leased=others.get(f.listener_id, 0)) for f in flows]

    async def advance_rates(self, moved: list[tuple[str, float]]) -> None:
        if moved:
            await self._tx.executemany(_RATE, moved)


def by_count(flows: list[Flow], take: int, limit: int, now: int) -> dict[str, list[int]] | None:
    """PostgreSQL leases unordered listeners without a rate limit in the statement
    that counts the other engines' leases (one round trip less): per listener, its
    allowance (domain/flow.py) for each count of others' leases from 0 to its
    ``max_in_flight``, which the statement looks up. None when that does not apply
    (an ordered or rate-limited candidate, or allowances that would share ``limit``,
    so each depends on the others'); then ``Claim.leased`` reads the counts first."""
    if any(f.ordered or f.rate_limit is not None for f in flows):
        return None
    tables = {
        f.listener_id: [
            allowance(replace(f, leased=n), take, now) for n in range(f.max_in_flight + 1)
        ]
        for f in flows
    }
    # The most each can get is with no other leases (fewer slots never mean more).
    if sum(t[0] for t in tables.values()) > limit:
        return None
    return {lid: t for lid, t in tables.items() if t[0] > 0}


def schedule(
    flows: list[Flow], taken: dict[str, int], now: int
) -> tuple[dict[str, list[float]], list[tuple[str, float]]]:
    """Start times per listener for what was taken, and the rate states to write."""
    starts: dict[str, list[float]] = {}
    moved: list[tuple[str, float]] = []
    for flow in flows:
        count = taken.get(flow.listener_id, 0)
        if count == 0:
            continue
        times, next_at = start_times(flow, count, now)
        starts[flow.listener_id] = times
        if flow.rate_limit is not None:
            moved.append((flow.listener_id, next_at))
    return starts, moved


def trim_sqlite(rows: list[Row], room: dict[str, int]) -> tuple[list[Row], list[int]]:
    """SQLite leased up to the largest allowance per listener: keep each listener's
    first ``room`` rows (by due time), answer the rowids to give back."""
    kept: list[Row] = []
    extra: list[int] = []
    counts: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: (r["next_attempt_at"], r["message_id"])):
        lid = r["listener_id"]
        if counts.get(lid, 0) < room.get(lid, 0):
            counts[lid] = counts.get(lid, 0) + 1
            kept.append(r)
        else:
            extra.append(r["row_id"])
    return kept, extra


def json_ids(values: Sequence[Any]) -> str:
    return json.dumps(list(values))
