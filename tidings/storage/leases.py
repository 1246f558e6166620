"""Owns the ``lease_counts`` table: how many deliveries of each listener each engine
holds leased, so a claim counts the other engines' leases (SPEC §10:
``max_in_flight`` holds across engines) without an index on the deliveries' lease
columns. Without one, a lease and its outcome are HOT updates on PostgreSQL (no
index entry written): its CPU per message 0.89x, WAL 0.885x (docs/benchmarks.md).

A count is kept per (listener, engine, bucket): the bucket is when the counted
leases end at the latest, rounded up to a quarter of the lease (``bucket``). The
claim adds what it leased in its own transaction, in a row of its own; the record
of the outcomes takes them off in its own transaction and in another row
(``recorded``), so an engine's claim never waits for the row lock of its record's
commit (it did: a lease statement waited ~0.9 ms for it, docs/benchmarks.md). A count stops counting
when its bucket ends, no later than a quarter of a lease after the leases in it,
like the expired leases it stands for. So whatever makes a count drift (a leased
delivery deleted with its message, an attempt dropped because it waited past its
lease, a record written again after a commit whose answer was lost) lasts no longer
than the leases it counted, and a count below zero counts as zero. Claims of one
listener are serialised (storage/claims.py), so each reads the others' counts as of
their last commit, as it read their leases before.

Row locks: after the transaction's deliveries, before its listeners, each
transaction's rows in key order (storage/locks.py). No foreign key: a listener's
delete would lock these rows after its own (a deadlock with the recorder); a
deleted listener's counts end with their buckets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from tidings.storage.database import Connection, Database, id_list

# A scalar subquery: the other engines' leases of one listener still counting,
# each engine's bucket at least zero.
OTHERS = (
    "(SELECT CAST(coalesce(sum(CASE WHEN n > 0 THEN n ELSE 0 END), 0) AS INTEGER)"
    " FROM (SELECT sum(leased) AS n FROM lease_counts"
    " WHERE listener_id = {listener} AND engine_id <> {by} AND bucket_end > {now}"
    " GROUP BY engine_id, bucket_end) AS c)"
)
_UPSERT = (
    " ON CONFLICT (listener_id, engine_id, bucket_end, recorded)"
    " DO UPDATE SET leased = lease_counts.leased + excluded.leased"
)
# What a PostgreSQL lease statement leased (its CTE ``leased``), added in the same
# statement: $-numbered parameters ``by`` and ``bucket``.
ADD_LEASED_POSTGRES = (
    "INSERT INTO lease_counts (listener_id, engine_id, bucket_end, recorded, leased)"
    " SELECT listener_id, {by}, {bucket}, false, count(*) FROM leased"
    " GROUP BY listener_id ORDER BY listener_id" + _UPSERT
)
# $4: false for what a claim leased (n > 0), true for what a record ended (n < 0).
_ADD = (
    "INSERT INTO lease_counts (listener_id, engine_id, bucket_end, recorded, leased)"
    " VALUES ($1, $2, $3, $4, $5)" + _UPSERT
)
_ENDED = "DELETE FROM lease_counts WHERE bucket_end <= $1"

# Which engine holds a lease and which bucket counts it.
Counted = tuple[int, int]


def bucket(now: int, lease_until: int) -> int:
    """The bucket of a lease from ``now`` to ``lease_until`` (ms): its end rounded up
    to a quarter of the lease, so a claim adds to the same row as the claims of the
    last quarter of a lease, and a count outlives its leases by that at most."""
    step = max(1, (lease_until - now) // 4)
    return -(-lease_until // step) * step


async def add(tx: Connection, leased: Counter[str], counted: Counted) -> None:
    """Count what a claim leased, per listener (SQLite: its lease answers rows)."""
    if leased:
        by, end = counted
        rows = [(lid, by, end, False, n) for lid, n in sorted(leased.items())]
        await tx.executemany(_ADD, rows)


async def take(tx: Connection, ended: Counter[tuple[str, Counted]]) -> None:
    """Take off the leases whose outcomes this transaction records: (listener,
    where it is counted) -> how many."""
    if ended:
        rows = [(lid, by, end, True, -n) for (lid, (by, end)), n in sorted(ended.items())]
        await tx.executemany(_ADD, rows)


async def forget(db: Database, tx: Connection, engines: Sequence[int]) -> None:
    """Drop the counts of engines that left or died (their leases were released)."""
    in_engines, value = id_list(db, 1, engines, of="bigint")
    await tx.execute(f"DELETE FROM lease_counts WHERE engine_id {in_engines}", value)


async def drop_ended(db: Database, now: int) -> None:
    """Drop counts whose bucket has ended (they count nothing any more)."""
    await db.write(_ENDED, now, durable=False)
