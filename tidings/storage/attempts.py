"""Owns the ``attempts`` table: the attempt log (SPEC §11).

Rows are written by the engine's record batch (storage/deliveries.py) on its
transaction, one statement per batch, never a round trip per attempt. They are read
page by page through a message or a listener, and purged by age in bounded batches
(:meth:`Attempts.purge_before`; a message's own with :meth:`Attempts.purge_messages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tidings.domain.ids import id_floor
from tidings.domain.models import Attempt, AttemptError, AttemptOutcome, Page
from tidings.storage.database import Connection, Database, Row, id_list
from tidings.storage.paging import total_of

_COLUMNS = (
    "id, org_id, queue_id, message_id, listener_id, attempt, started_at, duration_ms,"
    " outcome, status, error, response_body"
)
_INSERT = (
    f"INSERT INTO attempts ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)
# PostgreSQL: the whole batch in one statement, bound as column arrays.
_INSERT_POSTGRES = f"""
INSERT INTO attempts ({_COLUMNS})
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[],
    $8::int[], $9::text[], $10::int[], $11::text[], $12::text[]
)
"""
# Per listener, the oldest first along the primary key: the id bound (ids sort by
# the real time they were made) stops the scan where attempts are young; started_at
# decides. Listeners are found by hopping along the key's leading column.
_PURGE = """
DELETE FROM attempts WHERE listener_id = $1 AND id IN (
    SELECT id FROM attempts WHERE listener_id = $1 AND id < $2 AND started_at < $3
    ORDER BY id LIMIT $4
)
"""
_LISTENERS = """
WITH RECURSIVE o(listener_id) AS (
    SELECT min(listener_id) FROM attempts
    UNION ALL
    SELECT (SELECT min(listener_id) FROM attempts WHERE listener_id > o.listener_id) FROM o
    WHERE o.listener_id IS NOT NULL
)
SELECT listener_id FROM o WHERE listener_id IS NOT NULL
"""
# A minute of slack on the id bound: ids carry the wall clock, started_at the
# runtime's clock.
_ID_SLACK_MS = 60_000
_PURGE_MESSAGES = """
DELETE FROM attempts WHERE (listener_id, id) IN (
    SELECT listener_id, id FROM attempts WHERE message_id {ids} LIMIT $2
)
"""


@dataclass(slots=True)  # not frozen: one per attempt (storage/deliveries.py Claimed)
class NewAttempt:
    """One attempt to log, with the ids that place it."""

    id: str
    org_id: str
    queue_id: str
    message_id: str
    listener_id: str
    attempt: int
    started_at: int
    duration_ms: int
    outcome: AttemptOutcome
    status: int | None
    error: AttemptError | None
    response_body: str | None


def body_text(body: bytes | None) -> str | None:
    """The kept bytes as UTF-8 text, invalid bytes replaced; NUL too (PostgreSQL text
    cannot hold it, and both backends keep the same)."""
    if body is None:
        return None
    return body.decode("utf-8", "replace").replace("\x00", "\ufffd")


def _attempt(row: Row) -> Attempt:
    error = row["error"]
    return Attempt(
        id=row["id"],
        message_id=row["message_id"],
        listener_id=row["listener_id"],
        attempt=row["attempt"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        outcome=AttemptOutcome(row["outcome"]),
        status=row["status"],
        error=None if error is None else AttemptError(error),
        response_body=row["response_body"],
    )


# An enum's ``value`` is a property; the engine logs every attempt.
_SPELLED: dict[Any, str | None] = {
    None: None,
    **{o: o.value for o in AttemptOutcome},
    **{e: e.value for e in AttemptError},
}


def _values(a: NewAttempt) -> tuple[Any, ...]:
    return (
        a.id,
        a.org_id,
        a.queue_id,
        a.message_id,
        a.listener_id,
        a.attempt,
        a.started_at,
        a.duration_ms,
        _SPELLED[a.outcome],
        a.status,
        _SPELLED[a.error],
        a.response_body,
    )


class Attempts:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_many(self, tx: Connection, attempts: Sequence[NewAttempt]) -> None:
        """Log ``attempts`` inside ``tx`` (the engine's record batch): one statement."""
        if not attempts:
            return
        rows = [_values(a) for a in attempts]
        if self._db.dialect == "postgresql":
            await tx.execute(_INSERT_POSTGRES, *(list(c) for c in zip(*rows, strict=True)))
        else:
            await tx.executemany(_INSERT, rows)

    async def list_page(
        self,
        org_id: str,
        page: Page,
        *,
        message_id: str | None = None,
        listener_id: str | None = None,
    ) -> tuple[list[Attempt], int]:
        """One page of a message's or a listener's attempts, oldest first, and the total."""
        column, value = ("message_id", message_id) if message_id else ("listener_id", listener_id)
        where = f"{column} = $1 AND org_id = $2"
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM attempts WHERE {where} ORDER BY id LIMIT $3 OFFSET $4",
            value,
            org_id,
            page.per_page,
            page.offset,
        )
        count = f"SELECT count(*) FROM attempts WHERE {where}"
        total = await total_of(self._db, count, [value, org_id], page, len(rows))
        return [_attempt(r) for r in rows], total

    async def purge_before(self, before_ms: int, batch: int) -> int:
        """Delete up to ``batch`` attempts started before ``before_ms`` (retention),
        listener by listener, one short transaction each."""
        bound = id_floor(before_ms + _ID_SLACK_MS)
        deleted = 0
        for row in await self._db.fetch(_LISTENERS):
            args = (row["listener_id"], bound, before_ms, batch - deleted)

            async def body(tx: Connection, args: tuple[Any, ...] = args) -> int:
                return await tx.execute(_PURGE, *args)

            deleted += await self._db.run(body, durable=False)
            if deleted >= batch:
                break
        return deleted

    async def purge_messages(self, tx: Connection, message_ids: Sequence[str], batch: int) -> int:
        """Delete up to ``batch`` attempts of these messages inside ``tx`` (a message
        purge calls it until it answers less than ``batch``)."""
        if not message_ids:
            return 0
        ids, value = id_list(self._db, 1, message_ids)
        return await tx.execute(_PURGE_MESSAGES.format(ids=ids), value, batch)
