"""The driver seam: one small async interface over sqlite3 and asyncpg.

SQL is written once, PostgreSQL style (``$1`` placeholders); the SQLite driver
rewrites them to ``?1``. Driver exceptions are translated here, so nothing above
storage ever sees one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = Mapping[str, Any]


class StorageError(Exception):
    """Root of the storage-level errors the repositories translate into domain errors."""


class UniqueViolation(StorageError):
    pass


class ForeignKeyViolation(StorageError):
    pass


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or refused the operation; the API answers 503."""


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
    """Reads run on their own; writes go through :meth:`transaction`."""

    dialect: str  # "sqlite" | "postgresql"

    def transaction(self, *, durable: bool = True) -> AbstractAsyncContextManager[Connection]:
        """A write transaction. ``durable=False`` skips the flush to disk at commit:
        a power loss may undo it (never a crash of the process alone), and any later
        durable commit makes it durable too. Only for writes that at-least-once
        delivery can lose safely (claim leases, attempt outcomes: a lost one means
        one more attempt)."""
        ...

    async def write(self, sql: str, *args: Any, durable: bool = True) -> list[Row]:
        """Run one statement as a transaction of its own and answer the rows it
        returns (``RETURNING``); ``durable`` as for :meth:`transaction`. On PostgreSQL
        one round trip, where a transaction takes three (BEGIN, statement, COMMIT)."""
        ...

    async def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a transaction that called :meth:`notify` commits.

        PostgreSQL: LISTEN/NOTIFY, so wake-ups cross processes; SQLite: in-process.
        """
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


def id_list(
    db: Database, param: int, ids: Sequence[str] | Sequence[int], of: str = "text"
) -> tuple[str, Any]:
    """``(sql, value)`` testing a column against a list of ids bound as one parameter.

    Used as ``f"column {sql}"``: PostgreSQL binds an array of ``of``, SQLite a JSON array.
    """
    if db.dialect == "postgresql":
        return f"= ANY(${param}::{of}[])", list(ids)
    return f"IN (SELECT value FROM json_each(${param}))", json.dumps(list(ids))
