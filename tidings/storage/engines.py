"""Owns the ``engines`` table: which delivery engines live, and taking over the
claims of dead ones, so a crash is detected instead of waited out (SPEC §5).

An engine joins under a random id and holds a liveness lock under that id for as
long as it lives (``Database.hold_lock``: a PostgreSQL session-level advisory lock,
or ``flock`` on a file beside a SQLite database). Its claims carry the id
(``deliveries.claimed_by``). The lock goes when the process dies, so any other
engine can tell a dead one from a slow one at once: an engine registered here
whose lock is free is dead; its leased deliveries are released (due at once) and
its registration is forgotten. Leases stay as the last resort for an engine that is
alive but stalled.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from tidings.storage import channels, leases, locks
from tidings.storage.database import Connection, Database, HeldLock, LockTaken, id_list

_REGISTER = "INSERT INTO engines (id, started_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"
# Not indexed on ``claimed_by`` or ``lease_until`` (that would cost every lease its
# HOT update on PostgreSQL): a takeover, which only follows a crash, scans the
# pending deliveries.
_CLAIMS_OF = "claimed_by {dead} AND state = 'pending' AND lease_until > 0"
_RELEASE = "UPDATE deliveries SET lease_until = 0 WHERE " + _CLAIMS_OF


@dataclass(frozen=True, slots=True)
class Membership:
    """An engine's id and the liveness lock it holds under it."""

    id: int
    lock: HeldLock

    @property
    def held(self) -> bool:
        return self.lock.held

    async def wait_held(self) -> None:
        await self.lock.wait_held()


class Engines:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def join(self, now: int) -> Membership:
        """Take the liveness lock of a new id, then register it (in that order: an
        engine found registered always holds its lock, or is dead)."""
        while True:
            engine_id = secrets.randbits(63)
            try:
                lock = await self._db.hold_lock(engine_id)
            except LockTaken:  # another program's advisory lock: pick another id
                continue
            await self._register(engine_id, now)
            return Membership(engine_id, lock)

    async def _register(self, engine_id: int, now: int) -> None:
        await self._db.write(_REGISTER, engine_id, now, durable=False)

    async def take_over(self, me: Membership, now: int) -> int:
        """Release the claims of every dead engine; answer how many were released.

        Registers ``me`` again first: after a lost PostgreSQL connection another
        engine may have taken us for dead and forgotten us meanwhile. Drops the
        lease counts that ended (storage/leases.py) on the way."""
        if me.held:
            await self._register(me.id, now)
        await leases.drop_ended(self._db, now)
        rows = await self._db.fetch("SELECT id FROM engines WHERE id <> $1", me.id)
        dead = await self._db.free_locks([r["id"] for r in rows]) if rows else []
        if not dead:
            return 0
        in_dead, value = id_list(self._db, 1, dead, of="bigint")

        async def body(tx: Connection) -> int:
            # In order, like every writer of several deliveries (storage.locks).
            await locks.deliveries(self._db, tx, _CLAIMS_OF.format(dead=in_dead), value)
            released = await tx.execute(_RELEASE.format(dead=in_dead), value)
            await leases.forget(self._db, tx, dead)
            await tx.execute(f"DELETE FROM engines WHERE id {in_dead}", value)
            if released:
                await self._db.notify(tx, channels.DELIVERIES)
            return released

        return await self._db.run(body, durable=False)

    async def leave(self, me: Membership) -> None:
        """Forget a stopping engine (its claims were released already) and unlock."""

        async def body(tx: Connection) -> None:
            await leases.forget(self._db, tx, [me.id])
            await tx.execute("DELETE FROM engines WHERE id = $1", me.id)

        try:
            await self._db.run(body, durable=False)
        finally:
            await me.lock.release()
