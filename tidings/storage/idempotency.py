"""Owns the ``idempotency_keys`` table: answers remembered under an Idempotency-Key.

A key's row is written by the group commit that stores the messages it answers for
(``Messages.insert_batch`` calls :func:`remember`), so a crash can never leave the
messages without the key, or the key without the messages. Requests without a key
cost nothing here.

Within one node a key is also held in memory while its request is in progress, so a
repeat that arrives meanwhile is told to come back (SPEC §9: 409). Across nodes the
table's primary key decides: the later commit finds the key taken and answers the
first one's replay instead of storing again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from tidings.domain.clock import Clock
from tidings.domain.errors import InProgress
from tidings.domain.models import RememberedAnswer
from tidings.storage.database import Connection, Database

_COLUMNS = "org_id, key, fingerprint, status, body, created_at, expires_at"
# A row past its time is as good as absent: a new answer takes its place.
_ON_CONFLICT = (
    " ON CONFLICT (org_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
    " status = excluded.status, body = excluded.body, created_at = excluded.created_at,"
    " expires_at = excluded.expires_at WHERE idempotency_keys.expires_at <= $2"
    " RETURNING org_id, key"
)
# Many answers in one statement whatever their number: arrays on PostgreSQL, a JSON
# array on SQLite (its WHERE keeps the parser from reading ON CONFLICT as a join's).
_REMEMBER_POSTGRES = (
    f"INSERT INTO idempotency_keys ({_COLUMNS})"
    " SELECT * FROM unnest($1::text[], $3::text[], $4::text[], $5::int[], $6::text[],"
    " $7::bigint[], $8::bigint[])" + _ON_CONFLICT
)
_REMEMBER_SQLITE = (
    f"INSERT INTO idempotency_keys ({_COLUMNS})"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
    " json_extract(value, '$[5]'), json_extract(value, '$[6]')"
    " FROM json_each($1) WHERE true" + _ON_CONFLICT
)


class KeyTaken(Exception):
    """Another request committed an answer under this key first: replay that one."""


async def remember(
    db: Database, tx: Connection, answers: Sequence[RememberedAnswer], now: int
) -> set[tuple[str, str]]:
    """Write ``answers`` inside the caller's transaction; answer the ``(org_id, key)``
    pairs that were taken already (by a live answer), whose requests must store nothing.
    """
    if not answers:
        return set()
    rows = [
        (a.org_id, a.key, a.fingerprint, a.status, a.body, a.created_at, a.expires_at)
        for a in answers
    ]
    if db.dialect == "postgresql":
        columns = [list(column) for column in zip(*rows, strict=True)]
        written = await tx.fetch(_REMEMBER_POSTGRES, columns[0], now, *columns[1:])
    else:
        written = await tx.fetch(_REMEMBER_SQLITE, json.dumps(rows), now)
    return {(a.org_id, a.key) for a in answers} - {(r["org_id"], r["key"]) for r in written}


class IdempotencyKeys:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._in_progress: set[tuple[str, str]] = set()

    @contextmanager
    def hold(self, org_id: str, key: str) -> Iterator[None]:
        """Mark the key in progress on this node; raises :class:`InProgress` if it is."""
        held = (org_id, key)
        if held in self._in_progress:
            raise InProgress("A request with this Idempotency-Key is still in progress.")
        self._in_progress.add(held)
        try:
            yield
        finally:
            self._in_progress.discard(held)

    async def find(self, org_id: str, key: str) -> RememberedAnswer | None:
        """The live answer remembered under ``key``, if any."""
        row = await self._db.point.fetchrow(
            f"SELECT {_COLUMNS} FROM idempotency_keys"
            " WHERE org_id = $1 AND key = $2 AND expires_at > $3",
            org_id,
            key,
            self._clock.now_ms(),
        )
        if row is None:
            return None
        return RememberedAnswer(
            row["org_id"],
            row["key"],
            row["fingerprint"],
            row["status"],
            row["body"],
            row["created_at"],
            row["expires_at"],
        )

    async def purge(self, before_ms: int, batch_rows: int) -> int:
        """Delete up to ``batch_rows`` answers that expired before ``before_ms``."""
        rows = await self._db.write(
            "DELETE FROM idempotency_keys WHERE (org_id, key) IN ("
            " SELECT org_id, key FROM idempotency_keys WHERE expires_at <= $1"
            " ORDER BY expires_at LIMIT $2) RETURNING 1",
            before_ms,
            batch_rows,
        )
        return len(rows)
