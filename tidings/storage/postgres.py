"""PostgreSQL through asyncpg: a pool for reads and writes, LISTEN/NOTIFY for wake-ups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from tidings.storage.database import (
    Connection,
    DatabaseUnavailable,
    ForeignKeyViolation,
    HeldLock,
    LockState,
    LockTaken,
    Row,
    StorageError,
    UniqueViolation,
)

T = TypeVar("T")
_POOL_SIZE = 10
# Connections for ``durable=False`` writes (the engine's claims and records): their
# sessions commit asynchronously, so such a write needs no ``SET LOCAL`` round trip.
# Only the engine uses them (claim loop, recorder, probe claims).
_ASYNC_POOL_SIZE = 3
_CONNECT_TIMEOUT_S = 5.0
_COMMAND_TIMEOUT_S = 30.0
_RELISTEN_S = 0.5
_ENGINE_LOCK_TIMEOUT = "5s"


def _translate(exc: BaseException) -> StorageError:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(str(exc))
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return ForeignKeyViolation(str(exc))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return StorageError(str(exc))
    return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")


# Everything that means "the database is not there right now" as well as SQL errors.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


def _rowcount(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def _guard(call: Awaitable[T]) -> T:
    try:
        return await call
    except _DRIVER_ERRORS as exc:
        raise _translate(exc) from exc


async def _until_done(attempt: Callable[[], Awaitable[None]], stopped: Callable[[], bool]) -> bool:
    """Retry ``attempt`` every ``_RELISTEN_S`` until it succeeds (True) or ``stopped()``."""
    while not stopped():
        try:
            await attempt()
            return True
        except StorageError:
            await asyncio.sleep(_RELISTEN_S)
    return False


async def _keep_session(_conn: Any) -> None:
    """Release without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN,
    RESET ALL: a round trip per release). The asynchronous-commit pool only runs the
    engine's plain statements and transactions, which leave no session state behind;
    asyncpg still rolls back a transaction left open before calling this."""


class _Conn:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await _guard(self._conn.fetch(sql, *args)))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await _guard(self._conn.fetchrow(sql, *args))
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await _guard(self._conn.fetchval(sql, *args))

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await _guard(self._conn.execute(sql, *args)))

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await _guard(self._conn.executemany(sql, list(args)))


class PostgresDatabase(_Conn):
    dialect = "postgresql"

    def __init__(self, url: str, pool: Any, async_pool: Any) -> None:
        super().__init__(pool)
        self._url = url
        self._pool = pool
        self._async_pool = async_pool
        self._listener: Any = None
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False
        self._callbacks: dict[str, list[Callable[[], None]]] = {}

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        def pool(size: int, reset: Any = None, **server_settings: str) -> Any:
            return asyncpg.create_pool(
                url,
                min_size=1,
                max_size=size,
                timeout=_CONNECT_TIMEOUT_S,
                command_timeout=_COMMAND_TIMEOUT_S,
                reset=reset,
                server_settings=server_settings,
            )

        durable = await _guard(pool(_POOL_SIZE))
        try:
            # "off" on PostgreSQL: COMMIT returns before its WAL record is flushed (the
            # WAL writer flushes it within 3 x wal_writer_delay, 600 ms by default). A
            # crash of PostgreSQL or the machine in that window may undo the commit;
            # it stays atomic and ordered, and any later durable commit flushes it.
            # The engine never waits long for a row another session holds (a paused
            # node, a long delete): the write fails, and the claim loop or the
            # recorder tries again later instead of stalling behind it.
            lazy = await _guard(
                pool(
                    _ASYNC_POOL_SIZE,
                    reset=_keep_session,
                    synchronous_commit="off",
                    lock_timeout=_ENGINE_LOCK_TIMEOUT,
                )
            )
        except StorageError:
            await durable.close()
            raise
        return cls(url, durable, lazy)

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Connection]:
        pool = self._pool if durable else self._async_pool
        try:
            async with pool.acquire() as conn, conn.transaction():
                yield _Conn(conn)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    async def write(self, sql: str, *args: Any, durable: bool = True) -> list[Row]:
        pool = self._pool if durable else self._async_pool
        return list(await _guard(pool.fetch(sql, *args)))

    async def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        self._callbacks.setdefault(channel, []).append(callback)
        if self._listener is None or self._listener.is_closed():
            await self._listen()
        elif len(self._callbacks[channel]) == 1:
            await _guard(self._listener.add_listener(channel, self._dispatch))

    async def _listen(self) -> None:
        conn = await _guard(asyncpg.connect(self._url, timeout=_CONNECT_TIMEOUT_S))
        for name in self._callbacks:
            await _guard(conn.add_listener(name, self._dispatch))
        conn.add_termination_listener(self._lost)
        self._listener = conn

    def _lost(self, _conn: Any) -> None:
        """The LISTEN connection died (PostgreSQL restarted, network cut): reconnect.

        Until it is back the engine's poll still finds due work, only later; the
        pool needs no help, as asyncpg replaces broken connections on acquire.
        """
        if not self._closing and self._relisten is None:
            self._relisten = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            if await _until_done(self._listen, lambda: self._closing):
                # Notifications sent while we were away are gone: wake everyone once.
                for callbacks in self._callbacks.values():
                    for callback in callbacks:
                        callback()
        finally:
            self._relisten = None

    def _dispatch(self, _conn: Any, _pid: int, channel: str, _payload: str) -> None:
        for callback in self._callbacks.get(channel, ()):
            callback()

    async def notify(self, conn: Connection, channel: str) -> None:
        # Delivered by PostgreSQL when (and only if) the transaction commits.
        await conn.execute("SELECT pg_notify($1, '')", channel)

    async def hold_lock(self, key: int) -> HeldLock:
        lock = _SessionLock(self._url, key)
        await lock.take()
        return lock

    async def free_locks(self, keys: Sequence[int]) -> list[int]:
        # Taking a free lock for the length of this statement proves nobody holds it.
        rows = await self.fetch(
            "SELECT k FROM unnest($1::bigint[]) AS k WHERE pg_try_advisory_xact_lock(k)",
            list(keys),
        )
        return [r["k"] for r in rows]

    async def close(self) -> None:
        self._closing = True
        if self._relisten is not None:
            self._relisten.cancel()
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        for pool in (self._pool, self._async_pool):
            if not pool.is_closing():
                await pool.close()


class _SessionLock(LockState):
    """A session-level advisory lock on a connection of its own. PostgreSQL drops it
    when the session ends, so when this process dies. If the connection drops while
    the process lives (PostgreSQL restarted, network cut), the lock is lost: ``held``
    turns false until a new connection has taken it again."""

    def __init__(self, url: str, key: int) -> None:
        self._url = url
        self._key = key
        super().__init__()
        self._conn: Any = None
        self._retake: asyncio.Task[None] | None = None
        self._closing = False

    async def take(self) -> None:
        conn = await _guard(asyncpg.connect(self._url, timeout=_CONNECT_TIMEOUT_S))
        try:
            taken = await _guard(conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key))
        except StorageError:
            await conn.close()
            raise
        if not taken:
            await conn.close()
            raise LockTaken(f"advisory lock {self._key}")
        conn.add_termination_listener(self._lost)
        self._conn = conn
        self._held.set()

    def _lost(self, _conn: Any) -> None:
        self._held.clear()
        if not self._closing and self._retake is None:
            self._retake = asyncio.get_running_loop().create_task(self._take_again())

    async def _take_again(self) -> None:
        try:  # fails while unreachable, or while another engine checks us
            await _until_done(self.take, lambda: self._closing)
        finally:
            self._retake = None

    async def release(self) -> None:
        self._closing = True
        if self._retake is not None:
            self._retake.cancel()
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
