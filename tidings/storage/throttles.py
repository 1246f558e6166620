"""Owns ``rate_counters``, ``auth_failures`` and ``lockouts``: the counters every node shares.

Nothing here is tenant data: counters are keyed by API key id or client address and
no endpoint reads them back.
"""

from __future__ import annotations

from tidings.domain.ids import new_id
from tidings.storage.database import Connection, Database


class RateCounters:
    """Requests per (API key, window), summed over every node."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # On PostgreSQL the row is locked while its share is worked out; SQLite's write
        # transaction holds the whole file already.
        self._locked = " FOR UPDATE" if db.dialect == "postgresql" else ""

    async def take(self, key_id: str, window_start: int, want: int, limit: int) -> tuple[int, int]:
        """Reserve up to ``want`` of the window's ``limit`` for one node; answer how many
        it got (fewer once the limit is reached) and the window's count with them."""

        async def body(tx: Connection) -> tuple[int, int]:
            # The row first, so that two nodes taking the first share lock the same row.
            await tx.execute(
                "INSERT INTO rate_counters (key_id, window_start, hits) VALUES ($1, $2, 0)"
                " ON CONFLICT (key_id, window_start) DO NOTHING",
                key_id,
                window_start,
            )
            hits = int(
                await tx.fetchval(
                    "SELECT hits FROM rate_counters WHERE key_id = $1 AND window_start = $2"
                    + self._locked,
                    key_id,
                    window_start,
                )
            )
            got = max(0, min(want, limit - hits))
            if got:
                await tx.execute(
                    "UPDATE rate_counters SET hits = hits + $3"
                    " WHERE key_id = $1 AND window_start = $2",
                    key_id,
                    window_start,
                    got,
                )
            return got, hits + got

        return await self._db.run(body)

    async def prune(self, before_window: int) -> None:
        await self._db.run(
            lambda tx: tx.execute(
                "DELETE FROM rate_counters WHERE window_start < $1", before_window
            )
        )


class Lockouts:
    """Failed authentications per client address and the lockouts they caused."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_failure(
        self, address: str, now_ms: int, window_ms: int, threshold: int, lock_ms: int
    ) -> int | None:
        """Count one failure; answer the lock's end (ms) when the address is locked.

        Reaching ``threshold`` failures within the window locks the address and clears
        its failures, so after the cool-down it starts again from zero. Two nodes that
        record at the same instant may each miss the other's uncommitted failure, which
        can delay a lockout by one failure per racing node; never more.
        """

        async def body(tx: Connection) -> int | None:
            until = await tx.fetchval(
                "SELECT locked_until FROM lockouts WHERE address = $1 AND locked_until > $2",
                address,
                now_ms,
            )
            if until is not None:  # locked meanwhile by another node
                return int(until)
            await tx.execute(
                "INSERT INTO auth_failures (id, address, failed_at) VALUES ($1, $2, $3)",
                new_id(),
                address,
                now_ms,
            )
            failures = await tx.fetchval(
                "SELECT count(*) FROM auth_failures WHERE address = $1 AND failed_at > $2",
                address,
                now_ms - window_ms,
            )
            if int(failures) < threshold:
                return None
            until = now_ms + lock_ms
            await tx.execute(
                "INSERT INTO lockouts (address, locked_until) VALUES ($1, $2)"
                " ON CONFLICT (address) DO UPDATE SET locked_until = $2",
                address,
                until,
            )
            await tx.execute("DELETE FROM auth_failures WHERE address = $1", address)
            return int(until)

        return await self._db.run(body)

    async def active(self, now_ms: int) -> dict[str, int]:
        """Every address locked at ``now_ms`` with the lock's end."""
        rows = await self._db.fetch(
            "SELECT address, locked_until FROM lockouts WHERE locked_until > $1", now_ms
        )
        return {r["address"]: int(r["locked_until"]) for r in rows}

    async def prune(self, now_ms: int, window_ms: int) -> None:

        async def body(tx: Connection) -> None:
            await tx.execute("DELETE FROM lockouts WHERE locked_until <= $1", now_ms)
            await tx.execute("DELETE FROM auth_failures WHERE failed_at <= $1", now_ms - window_ms)

        await self._db.run(body)
