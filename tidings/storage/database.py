"""The driver seam: one small async interface over sqlite3 and asyncpg.

SQL is written once, PostgreSQL style (``$1`` placeholders); the SQLite driver
rewrites them to ``?1``. Driver exceptions are translated here, so nothing above
storage ever sees one:

* :class:`UniqueViolation`, :class:`ForeignKeyViolation`: the repositories turn
  them into domain errors;
* :class:`Retryable` (deadlock, serialization failure, lock timeout, a connection
  lost before COMMIT): :meth:`Database.run` runs the transaction again, a few times,
  and raises :class:`Contention` if it still fails;
* :class:`DatabaseUnavailable`: the database cannot be reached (refused, timed out,
  shutting down, out of disk);
* any other :class:`StorageError` is a bug (bad SQL, a value the schema refuses).

Row locks are taken in one order, documented in ``storage.locks``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

Row = Mapping[str, Any]
T = TypeVar("T")
log = logging.getLogger("tidings.storage")

# A transaction that meets a transient conflict runs again after a short random
# pause (so two that collided do not collide again in step): at most this many runs.
RUNS = 5
_BACKOFF_S = 0.005  # doubled per run: 5, 10, 20, 40 ms on average


class StorageError(Exception):
    """Root of the storage-level errors; a bare one is a bug (logged, answered 500)."""


class UniqueViolation(StorageError):
    pass


class ForeignKeyViolation(StorageError):
    pass


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or cannot serve right now; the API answers 503."""


class Contention(StorageError):
    """Concurrent transactions kept conflicting (deadlocks, lock timeouts) even after
    :data:`RUNS` runs, or SQLite's file lock stayed taken past its busy timeout."""


class Retryable(Contention):
    """A conflict that running the same transaction again resolves: it rolled back
    (deadlock victim, serialization failure, lock timeout) or never reached COMMIT
    (its connection was cut). Only :meth:`Database.run` sees these."""


async def retrying(attempt: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``attempt`` until it does not raise :class:`Retryable`, at most RUNS times."""
    for run in range(1, RUNS + 1):
        try:
            return await attempt()
        except Retryable as exc:
            if run == RUNS:
                raise Contention(f"{what} still conflicting after {RUNS} runs: {exc}") from exc
            log.info("%s conflicted (run %d of %d), running it again: %s", what, run, RUNS, exc)
            await asyncio.sleep(random.uniform(0, 2 * _BACKOFF_S * 2 ** (run - 1)))
    raise AssertionError("unreachable")


class LockTaken(StorageError):
    """Another session holds the liveness lock asked for."""


class LockState:
    """``held`` and ``wait_held`` over an event, for locks that can be lost and retaken."""

    def __init__(self) -> None:
        self._held = asyncio.Event()

    @property
    def held(self) -> bool:
        return self._held.is_set()

    async def wait_held(self) -> None:
        await self._held.wait()


class HeldLock(Protocol):
    """A liveness lock held for as long as its process lives (see storage/engines.py)."""

    @property
    def held(self) -> bool:
        """False while the lock is lost and being taken again (PostgreSQL reconnecting)."""
        ...

    async def wait_held(self) -> None: ...

    async def release(self) -> None: ...


class Connection(Protocol):
    """A connection inside a transaction (or a read-only session)."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; answer the number of rows it changed."""
        ...

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None: ...


class Database(Connection, Protocol):
    """Reads run on their own; writes go through :meth:`run` or :meth:`write`."""

    dialect: str  # "sqlite" | "postgresql"
    # Reads of a few rows by key (an API key, one resource), gathered per turn of the
    # event loop: on SQLite they run on the loop's thread without a hop to a reader
    # thread. On both, a turn's ``fetchrow``s of one statement run as one statement,
    # their rows ending with one more column (``tidings_n``): read rows by name, or by
    # position from the start. Never for scans, lists, counts or writes.
    point: Connection

    async def run(self, body: Callable[[Connection], Awaitable[T]], *, durable: bool = True) -> T:
        """Run ``body`` in a write transaction and commit; answer what it answers.

        A transient conflict (see :class:`Retryable`) rolls back and runs ``body``
        again, so ``body`` must do nothing but database work on its connection (and
        pure computation): whatever it changes outside the database would happen
        once per run. On SQLite it runs on the writer thread and may await nothing
        but its connection (a body that waits for anything else raises).
        ``durable=False`` skips the flush to disk at commit: a power loss may undo it
        (never a crash of the process alone), and any later durable commit makes it
        durable too. Only for writes that at-least-once delivery can
        lose safely (claim leases, attempt outcomes: a lost one means one more
        attempt)."""
        ...

    async def write(self, sql: str, *args: Any, durable: bool = True) -> list[Row]:
        """Run one statement as a transaction of its own and answer the rows it
        returns (``RETURNING``); retried and ``durable`` as for :meth:`run`. On
        PostgreSQL one round trip, where a transaction takes three (BEGIN, statement,
        COMMIT)."""
        ...

    async def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a transaction that called :meth:`notify` commits.

        A commit of this database object reaches its own callbacks right after the
        COMMIT, before :meth:`run` returns, so a cache it empties never shows this
        process an older state than the one it just wrote. Other processes: PostgreSQL
        LISTEN/NOTIFY (this object skips the echo of its own commits); SQLite, on
        Linux, a wake-up socket per process (see ``storage.wakeups``). Also called
        once after notifications may have been lost (the LISTEN connection came back).
        """
        ...

    def hears(self, channel: str) -> bool:
        """Whether every commit that notifies ``channel``, from any process, reaches
        this process's callbacks right now: the LISTEN connection is up (PostgreSQL),
        or this process receives the channel's wake-ups (SQLite). A cache that
        notifications invalidate is trusted only while this holds."""
        ...

    async def notify(self, conn: Connection, channel: str) -> None: ...

    async def hold_lock(self, key: int) -> HeldLock:
        """Take the liveness lock ``key`` for this process's lifetime, or raise
        :class:`LockTaken`. The lock goes the moment the process dies (PostgreSQL: a
        session-level advisory lock on a connection of its own; SQLite: ``flock`` on
        a file beside the database)."""
        ...

    async def free_locks(self, keys: Sequence[int]) -> list[int]:
        """Which of these liveness locks nobody holds: their processes are gone."""
        ...

    async def close(self) -> None: ...


def assignments(changes: Mapping[str, Any], first: int) -> tuple[str, list[Any]]:
    """``("a = $3, b = $4", [va, vb])`` setting only the columns in ``changes``,
    placeholders numbered from ``first``: a partial update in one statement, so two
    concurrent ones that change different columns both take effect. Column names
    come from code, never from a client."""
    sets = [f"{column} = ${first + i}" for i, column in enumerate(changes)]
    return ", ".join(sets), list(changes.values())


def id_list(
    db: Database, param: int, ids: Sequence[str] | Sequence[int], of: str = "text"
) -> tuple[str, Any]:
    """``(sql, value)`` testing a column against a list of ids bound as one parameter.

    Used as ``f"column {sql}"``: PostgreSQL binds an array of ``of``, SQLite a JSON array.
    """
    if db.dialect == "postgresql":
        return f"= ANY(${param}::{of}[])", list(ids)
    return f"IN (SELECT value FROM json_each(${param}))", json.dumps(list(ids))
