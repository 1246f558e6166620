"""Owns the ``events`` and ``event_counts`` tables: the usage event log (SPEC §6).

Events are written by the repositories that make the changes, through
:meth:`EventLog.add_many` on *their* transaction connection, so a change and its
event commit or roll back together. The same call bumps the per-minute counters
that ``GET /stats/messages`` sums, so stats never count events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tidings.domain.clock import Clock
from tidings.domain.events import (
    MINUTE_MS,
    MINUTES_PER_HOUR,
    STATS_WINDOWS,
    Cursor,
    Event,
    EventType,
    NewEvent,
    Ref,
    Stats,
    covering_buckets,
    kind_of,
    window_starts,
)
from tidings.domain.ids import new_id
from tidings.storage.database import Connection, Database, Row, id_list

_REFS = ("api_key", "queue", "listener", "message")
_REF_COLUMNS = ", ".join(f"{r}_id, {r}_name" for r in _REFS)
_COLUMNS = f"org_id, stored_at, id, type, {_REF_COLUMNS}, reason"
_INSERT = (
    f"INSERT INTO events ({_COLUMNS}, kind)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
)
# Counters are added to, never overwritten: concurrent transactions of other nodes
# may bump the same (organization, minute, type) row.
_BUMPED = (
    " ON CONFLICT (org_id, span_minutes, bucket_minute, type)"
    " DO UPDATE SET total = event_counts.total + excluded.total"
)
_BUMP = (
    "INSERT INTO event_counts (org_id, span_minutes, bucket_minute, type, total)"
    " VALUES ($1, $2, $3, $4, $5)" + _BUMPED
)
# PostgreSQL writes a whole batch in one statement (one round trip, one bind of
# arrays instead of a bind per row): the events from column arrays ($2-$14; one
# stored_at, $1), then the counter bumps ($15-$19) in the order given (the sorted
# order that keeps concurrent bumps free of deadlocks).
_ADD_MANY_POSTGRES = f"""
WITH logged AS (
    INSERT INTO events ({_COLUMNS}, kind)
    SELECT e.org_id, $1, e.id, e.type, {_REF_COLUMNS}, e.reason, e.kind
    FROM unnest(
        $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
        $14::text[]
    ) AS e(org_id, id, type, {_REF_COLUMNS}, reason, kind)
)
INSERT INTO event_counts (org_id, span_minutes, bucket_minute, type, total)
SELECT b.org_id, b.span_minutes, b.bucket_minute, b.type, b.total
FROM unnest($15::text[], $16::int[], $17::bigint[], $18::text[], $19::bigint[])
    WITH ORDINALITY AS b(org_id, span_minutes, bucket_minute, type, total, n)
ORDER BY b.n
{_BUMPED}
"""
_SUM_BUCKETS = (
    "SELECT {part} AS part, type, sum(total) AS total FROM event_counts"
    " WHERE org_id = $1 AND span_minutes = ${span} AND bucket_minute >= ${start}"
    " AND bucket_minute < ${end} GROUP BY type"
)
# Distinct organizations by hopping along the leading column of the primary key
# (a loose index scan), so the purge never reads the whole table to find them.
_ORGS = """
WITH RECURSIVE o(org_id) AS (
    SELECT min(org_id) FROM {table}
    UNION ALL
    SELECT (SELECT min(org_id) FROM {table} WHERE org_id > o.org_id) FROM o
    WHERE o.org_id IS NOT NULL
)
SELECT org_id FROM o WHERE org_id IS NOT NULL
"""
_PURGE_EVENTS = """
DELETE FROM events WHERE org_id = $1 AND (stored_at, id) IN (
    SELECT stored_at, id FROM events WHERE org_id = $1 AND stored_at < $2
    ORDER BY stored_at, id LIMIT $3
)
"""
_PURGE_COUNTS = """
DELETE FROM event_counts WHERE org_id = $1 AND (span_minutes, bucket_minute, type) IN (
    SELECT span_minutes, bucket_minute, type FROM event_counts
    WHERE org_id = $1 AND span_minutes IN (1, 60) AND bucket_minute < $2 LIMIT $3
)
"""


# A page may hold 1000 rows: a dict lookup is much cheaper than calling EventType(v).
_TYPES = {t.value: t for t in EventType}


def _ref(ref_id: str | None, name: str | None) -> Ref | None:
    return None if ref_id is None else Ref(ref_id, name)


def _event(row: Row) -> Event:
    return Event(
        row["id"],
        row["org_id"],
        _TYPES[row["type"]],
        row["stored_at"],
        _ref(row["api_key_id"], row["api_key_name"]),
        _ref(row["queue_id"], row["queue_name"]),
        _ref(row["listener_id"], row["listener_name"]),
        _ref(row["message_id"], row["message_name"]),
        row["reason"],
    )


StoredRow = tuple[Any, ...]  # an events row as add_many wrote it


def stored_event(row: StoredRow) -> Event:
    """The event an :meth:`EventLog.add_many` row stored (as ``GET /events`` reads it)."""
    org_id, stored_at, event_id, kind, *refs, reason, _kind = row
    api_key, queue, listener, message = (_ref(refs[i], refs[i + 1]) for i in range(0, 8, 2))
    return Event(
        event_id, org_id, _TYPES[kind], stored_at, api_key, queue, listener, message, reason
    )


# Per type, its value and kind: an enum's ``value`` is a property, and the engine
# writes an event per attempt.
_SPELLED = {t: (t.value, kind_of(t)) for t in EventType}


def _ref_columns(ref: Ref | None) -> tuple[str | None, str | None]:
    return (None, None) if ref is None else (ref.id, ref.name)


def _row(event: NewEvent, stored_at: int) -> StoredRow:
    value, kind = _SPELLED[event.type]
    return (
        event.org_id,
        stored_at,
        new_id(),
        value,
        *_ref_columns(event.api_key),
        *_ref_columns(event.queue),
        *_ref_columns(event.listener),
        *_ref_columns(event.message),
        event.reason,
        kind,
    )


class EventLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add(self, tx: Connection, event: NewEvent) -> None:
        await self.add_many(tx, (event,))

    async def add_many(self, tx: Connection, events: Sequence[NewEvent]) -> list[StoredRow]:
        """Record ``events`` inside ``tx`` (the transaction of the change they report).

        One ``stored_at`` for the whole batch; ids keep the batch's order within it.
        Answers the rows stored, in order (:func:`stored_event` reads one).
        """
        if not events:
            return []
        stored_at = self._clock.now_ms()
        rows = [_row(e, stored_at) for e in events]
        minute = stored_at // MINUTE_MS
        hour = minute - minute % MINUTES_PER_HOUR
        counts = Counter((row[0], row[3]) for row in rows)
        # Sorted, so two transactions bumping the same rows lock them in one order
        # (no deadlock on PostgreSQL); and callers record events last, so a hot
        # counter row stays locked only for the commit.
        bumps = sorted(
            (org, span, bucket, kind, n)
            for (org, kind), n in counts.items()
            for span, bucket in ((1, minute), (MINUTES_PER_HOUR, hour))
        )
        if self._db.dialect == "postgresql":
            # Columns of the rows, stored_at (the same for all) passed once.
            events_by_column = list(zip(*rows, strict=True))
            del events_by_column[1]
            await tx.execute(
                _ADD_MANY_POSTGRES,
                stored_at,
                *events_by_column,
                *zip(*bumps, strict=True),
            )
            return rows
        await tx.executemany(_INSERT, rows)
        await tx.executemany(_BUMP, bumps)
        return rows

    async def read(
        self,
        org_id: str,
        kind: str | None,
        after: Cursor | None,
        since_ms: int,
        limit: int,
        within: Sequence[str] | None = None,
    ) -> list[Event]:
        """Events ordered by (``stored_at``, ``id``), none stored before ``since_ms``.

        ``within`` keeps the events that name one of those ids (of a queue, listener,
        message or API key): what a key limited to them may see.
        """
        where: list[str] = ["org_id = $1"]
        args: list[Any] = [org_id]
        if kind is not None:
            args.append(kind)
            where.append(f"kind = ${len(args)}")
        if within is not None:
            ids, value = id_list(self._db, len(args) + 1, within)
            args.append(value)
            where.append("(" + " OR ".join(f"{r}_id {ids}" for r in _REFS) + ")")
        # Exactly one lower bound, so the planner starts the index range there: given
        # both, SQLite may range on the older one and filter its way to the cursor.
        if after is not None and after.stored_at >= since_ms:
            args += [after.stored_at, after.id]
            where.append(f"(stored_at, id) > (${len(args) - 1}, ${len(args)})")
        else:
            args.append(since_ms)
            where.append(f"stored_at >= ${len(args)}")
        args.append(limit)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)}"
            f" ORDER BY stored_at, id LIMIT ${len(args)}",
            *args,
        )
        return [_event(r) for r in rows]

    async def stats(self, org_id: str) -> Stats:
        """Counts per window and type; every type present, zeros included."""
        now = self._clock.now_ms()
        windows = {
            name: covering_buckets(first, now // MINUTE_MS)
            for name, first in window_starts(now).items()
        }
        parts = sorted({b for buckets in windows.values() for b in buckets})
        # One round trip: a range scan of the primary key per part, labelled.
        selects: list[str] = []
        args: list[Any] = [org_id]
        for i, part in enumerate(parts):
            n = len(args)
            selects.append(_SUM_BUCKETS.format(part=i, span=n + 1, start=n + 2, end=n + 3))
            args += [part.span_minutes, part.start, part.end]
        sums: dict[int, dict[str, int]] = {i: {} for i in range(len(parts))}
        for row in await self._db.fetch(" UNION ALL ".join(selects), *args):
            sums[row["part"]][row["type"]] = int(row["total"])
        stats: Stats = {}
        for name in STATS_WINDOWS:
            counts = {t.value: 0 for t in EventType}
            for part in windows[name]:
                for kind, n in sums[parts.index(part)].items():
                    if kind in counts:  # ignore types this version does not know
                        counts[kind] += n
            stats[name] = counts
        return stats

    async def series(self, org_id: str, hours: int) -> tuple[int, int, dict[str, list[int]]]:
        """``(start ms, step ms, counts per type)`` of the last ``hours`` hours: per
        minute for one hour, per hour beyond (read from the counters of that size);
        the last step is the one holding now. Every type present, zeros included."""
        now_minute = self._clock.now_ms() // MINUTE_MS
        span = 1 if hours == 1 else MINUTES_PER_HOUR
        steps = hours * MINUTES_PER_HOUR // span
        last = now_minute - now_minute % span
        first = last - (steps - 1) * span
        rows = await self._db.fetch(
            "SELECT bucket_minute, type, total FROM event_counts WHERE org_id = $1"
            " AND span_minutes = $2 AND bucket_minute >= $3 AND bucket_minute <= $4",
            org_id,
            span,
            first,
            last,
        )
        counts = {t.value: [0] * steps for t in EventType}
        for row in rows:
            kind = counts.get(row["type"])
            if kind is not None:  # a type this version does not know is left out
                kind[(row["bucket_minute"] - first) // span] += int(row["total"])
        return first * MINUTE_MS, span * MINUTE_MS, counts

    # --- retention ------------------------------------------------------------

    async def organizations(self) -> list[str]:
        """Every organization that has events or counters (maintenance only)."""
        found: set[str] = set()
        for table in ("events", "event_counts"):
            rows = await self._db.fetch(_ORGS.format(table=table))
            found.update(r["org_id"] for r in rows)
        return sorted(found)

    async def purge_events(self, org_id: str, before_ms: int, batch: int) -> int:
        """Delete up to ``batch`` of the organization's events stored before ``before_ms``."""
        return await self._db.run(lambda tx: tx.execute(_PURGE_EVENTS, org_id, before_ms, batch))

    async def purge_counts(self, org_id: str, before_ms: int, batch: int) -> int:
        """Delete up to ``batch`` counter rows of minutes that ended before ``before_ms``."""
        before = before_ms // MINUTE_MS
        return await self._db.run(lambda tx: tx.execute(_PURGE_COUNTS, org_id, before, batch))
