"""PostgreSQL through asyncpg: a pool for reads and writes, LISTEN/NOTIFY for wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeVar, cast

import asyncpg

from tidings.storage.database import (
    Connection,
    DatabaseUnavailable,
    ForeignKeyViolation,
    HeldLock,
    LockState,
    LockTaken,
    Retryable,
    Row,
    StorageError,
    UniqueViolation,
    retrying,
)
from tidings.storage.gathering import Asked, PerTurn

T = TypeVar("T")
_POOL_SIZE = 10
# Connections for ``durable=False`` writes (the engine's claims and records): their
# sessions commit asynchronously, so such a write needs no ``SET LOCAL`` round trip.
# Only the engine uses them (claim loop, recorder, probe claims).
_ASYNC_POOL_SIZE = 3
_CONNECT_TIMEOUT_S = 5.0
_COMMAND_TIMEOUT_S = 30.0
# asyncpg prepares each statement once per connection and PostgreSQL then keeps one
# generic plan for it, made from the table sizes of that moment, until the table is
# analyzed. Made on a new database's empty tables, the claim's UPDATE by ctid scanned
# all of deliveries (85 ms a claim at 100,000 rows, `python -m bench.pgcost
# --listeners 100`), and autovacuum, when it is on at all, comes a minute or more
# later. Re-preparing every 30 s bounds how long any such plan lives (asyncpg's
# default: 300 s).
_STATEMENT_LIFETIME_S = 30.0
_RELISTEN_S = 0.5
# Every session, so a node that stalls (SIGSTOP, a partition, a frozen VM) cannot
# hold locks that block the others for long (SPEC §2):
# - a transaction left idle for 1 s is ended by the server, which releases its
#   locks. Our transactions never wait between statements for anything but the
#   next statement (no network calls, no user think time), so a healthy node only
#   meets this when its event loop starves for a second; the transaction never
#   reached COMMIT, so ``run`` runs it again on a fresh connection.
# - a statement waits at most 3 s for a row lock, then fails (and ``run`` tries
#   again): three times the idle cut-off, so a stalled idle holder is always gone
#   before it; a longer wait means a long statement holds the lock, and rolling
#   back releases what the waiter holds meanwhile.
SESSION_SETTINGS = {
    "idle_in_transaction_session_timeout": "1000",  # ms
    "lock_timeout": "3000",  # ms
}

# The transaction rolled back and running it again can succeed (SQLSTATE 40P01,
# 40001, 55P03; 25P03 when the server cut an idle transaction).
_RETRYABLE = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.LockNotAvailableError,
    asyncpg.IdleInTransactionSessionTimeoutError,
)
# The server cannot be reached or cannot serve: connection failures (08), too many
# connections / out of disk or memory (53), shutting down or cancelled (57), a
# read-only standby after a failover (25006), and the client side of the same.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.PostgresSystemError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)


def _translate(exc: BaseException) -> StorageError:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(str(exc))
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return ForeignKeyViolation(str(exc))
    if isinstance(exc, _RETRYABLE):
        return Retryable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
    # Anything else the server refused is a bug of ours (bad SQL, a value out of a
    # column's range): the API logs it and answers 500.
    return StorageError(f"{type(exc).__name__}: {exc}")


_DRIVER_ERRORS = (asyncpg.PostgresError, *_UNAVAILABLE)


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


def _gone(conn: Any) -> bool:
    """Whether ``conn`` lost its server session (asyncpg's pool detaches a pooled
    connection whose session ended, after which every call on it raises)."""
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True


def _lost_session(conn: Any, exc: BaseException) -> bool:
    """Whether ``exc`` (raised before COMMIT was sent) means the connection lost its
    session, so that the transaction cannot have committed."""
    cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable) else exc
    # asyncpg met the server's goodbye (e.g. the idle cut-off's FATAL) in the middle
    # of its protocol: the next command fails before anything is sent.
    if isinstance(cause, asyncpg.InternalClientError):
        return True
    return isinstance(cause, (asyncpg.InterfaceError, asyncpg.PostgresConnectionError)) and _gone(
        conn
    )


async def _abandon(conn: Any, tx: Any, exc: BaseException) -> None:
    """Roll back after ``exc`` ended a transaction body early; raise :class:`Retryable`
    instead when the connection was lost: the transaction never reached COMMIT (the
    server ends transactions left idle too long), so running it again is safe."""
    if _lost_session(conn, exc):
        raise Retryable(f"connection lost in a transaction: {exc!r}") from exc
    if _gone(conn):
        return
    with contextlib.suppress(*_DRIVER_ERRORS):  # the pool closes one it cannot reset
        await tx.rollback()


async def _keep_session(_conn: Any) -> None:
    """Release without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN,
    RESET ALL: a round trip per release, so a pooled read took two). Both pools only
    run plain statements and transactions, which leave no session state behind: locks
    are transaction-level (``pg_try_advisory_xact_lock``), settings ``SET LOCAL``,
    LISTEN and the engine's session lock have connections of their own, and asyncpg
    still rolls back a transaction left open before calling this."""


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


# A read's arguments, by type, as the array type that carries them in a gathered read.
_ARRAY_TYPES = {str: "text[]", int: "int8[]"}
_PARAMETER = re.compile(r"\$(\d+)\b")
_Statement = tuple[str, tuple[type, ...]]  # a gathered read's text and argument types
_ALONE: Any = object()  # a gathered read failed: each of its callers reads alone


@lru_cache(maxsize=256)
def _gathered_sql(sql: str, types: tuple[type, ...]) -> str:
    """``sql`` once per row of argument arrays ($2... in the types given, $1 each row's
    number), in one statement: each answer row ends with the number it answers."""
    arrays = ", ".join(f"${i + 2}::{_ARRAY_TYPES[t]}" for i, t in enumerate(types))
    names = ", ".join(f"a{i + 1}" for i in range(len(types)))
    inner = _PARAMETER.sub(lambda m: f"b.a{m.group(1)}", sql)
    return (
        f"SELECT q.*, b.n AS tidings_n FROM unnest($1::int4[], {arrays}) AS b(n, {names})"
        f" CROSS JOIN LATERAL ({inner}) AS q"
    )


class _PointReads(_Conn):
    """``db.point`` on PostgreSQL: the one-row reads by key of one turn of the event
    loop, gathered by statement, each group sent as one statement (the statement
    joined laterally to arrays of the callers' arguments) instead of one pooled round
    trip each: a pooled read cost ~90 us of the loop's CPU (the pool's acquire and
    release, asyncpg's protocol, the socket's wake-ups; ``python -m bench.inproc
    get-message --db postgres``) whichever its size (docs/benchmarks.md, "PostgreSQL
    point reads gathered").

    Only ``fetchrow`` with text and integer arguments is gathered (the point reads'
    ids, digests and times); anything else is a pooled read as before. Each row
    handed back carries one more column at its end, ``tidings_n``: rows are read by
    name, or by position from the start. One statement is one snapshot, taken after
    every read of the turn was asked for. If the gathered statement fails, each caller
    reads alone and gets its own answer or error; a cancelled caller's read is
    dropped from its group.
    """

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._turns: PerTurn[_Statement, tuple[Any, ...]] = PerTurn(self._send)
        self._running: set[asyncio.Task[Any]] = set()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        types = tuple(map(type, args))
        if not args or not all(t in _ARRAY_TYPES for t in types):
            return await super().fetchrow(sql, *args)
        row = await self._turns.ask((sql, types), args)
        if row is _ALONE:
            return await super().fetchrow(sql, *args)
        return cast("Row | None", row)

    def _send(self, statement: _Statement, waiting: Asked[tuple[Any, ...]]) -> None:
        if len(waiting) == 1:  # alone: the statement as it is
            waiting[0][1].set_result(_ALONE)
            return
        sql, types = statement
        columns = [list(range(len(waiting)))]
        columns += [[args[i] for args, _ in waiting] for i in range(len(types))]
        task = asyncio.ensure_future(self._conn.fetch(_gathered_sql(sql, types), *columns))
        self._running.add(task)
        task.add_done_callback(lambda done: self._answer(done, waiting))

    def _answer(self, task: asyncio.Task[Any], waiting: Asked[tuple[Any, ...]]) -> None:
        self._running.discard(task)
        rows: dict[int, Row] | None = None
        if not task.cancelled() and task.exception() is None:
            rows = {}
            for row in task.result():
                rows.setdefault(row["tidings_n"], row)
        for n, (_, future) in enumerate(waiting):
            if not future.done():
                future.set_result(_ALONE if rows is None else rows.get(n))


class _Tx(_Conn):
    """A transaction's connection, which also remembers the channels it notified."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        self.notified: set[str] = set()


class PostgresDatabase(_Conn):
    dialect = "postgresql"

    def __init__(self, url: str, pool: Any, async_pool: Any) -> None:
        super().__init__(pool)
        self.point: Connection = _PointReads(pool)
        self._url = url
        self._pool = pool
        self._async_pool = async_pool
        self._listener: Any = None
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False
        self._callbacks: dict[str, list[Callable[[], None]]] = {}
        # The payload of this object's notifications: its own commits reach its
        # callbacks at once (as on SQLite), so their echo through LISTEN is skipped.
        self._token = secrets.token_hex(8)
        # Subscribers come from everywhere (engine, prober, the first cached read of
        # each cache): one of them opens the LISTEN connection, the others wait.
        self._subscribing = asyncio.Lock()

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        def pool(size: int, **server_settings: str) -> Any:
            return asyncpg.create_pool(
                url,
                min_size=1,
                max_size=size,
                timeout=_CONNECT_TIMEOUT_S,
                command_timeout=_COMMAND_TIMEOUT_S,
                max_cached_statement_lifetime=_STATEMENT_LIFETIME_S,
                reset=_keep_session,
                server_settings={**SESSION_SETTINGS, **server_settings},
            )

        durable = await _guard(pool(_POOL_SIZE))
        try:
            # "off" on PostgreSQL: COMMIT returns before its WAL record is flushed (the
            # WAL writer flushes it within 3 x wal_writer_delay, 600 ms by default). A
            # crash of PostgreSQL or the machine in that window may undo the commit;
            # it stays atomic and ordered, and any later durable commit flushes it.
            lazy = await _guard(pool(_ASYNC_POOL_SIZE, synchronous_commit="off"))
        except StorageError:
            await durable.close()
            raise
        return cls(url, durable, lazy)

    async def run(self, body: Callable[[Connection], Awaitable[T]], *, durable: bool = True) -> T:
        pool = self._pool if durable else self._async_pool
        return await retrying(lambda: self._once(pool, body), "a transaction")

    async def _once(self, pool: Any, body: Callable[[Connection], Awaitable[T]]) -> T:
        try:
            async with pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                notifying = _Tx(conn)
                try:
                    result = await body(notifying)
                except BaseException as exc:
                    await _abandon(conn, tx, exc)
                    raise
                if _gone(conn):  # cut while idle: COMMIT would not even be sent
                    raise Retryable("connection lost in a transaction before COMMIT")
                try:
                    await tx.commit()
                except asyncpg.InternalClientError as exc:  # refused before sending
                    raise Retryable(f"connection lost in a transaction: {exc!r}") from exc
                finally:
                    # Committed, or unknown: a wake-up too many is harmless, a missed
                    # one leaves a cache stale, so this process hears it either way.
                    for channel in notifying.notified:
                        self._deliver(channel)
                # A connection lost during COMMIT leaves the outcome unknown: that one
                # is not retried (it is translated to DatabaseUnavailable below).
                return result
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    async def write(self, sql: str, *args: Any, durable: bool = True) -> list[Row]:
        pool = self._pool if durable else self._async_pool
        # One statement on its own: a deadlock or lock timeout rolled it back whole.
        return await retrying(lambda: self._fetch(pool, sql, args), "a statement")

    @staticmethod
    async def _fetch(pool: Any, sql: str, args: tuple[Any, ...]) -> list[Row]:
        return list(await _guard(pool.fetch(sql, *args)))

    async def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        async with self._subscribing:
            if self._listener is None:
                await self._listen([*self._callbacks, channel])
            elif channel not in self._callbacks and not self._listener.is_closed():
                await _guard(self._listener.add_listener(channel, self._dispatch))
            # (a closed listener is being replaced by _reconnect, on every channel)
            self._callbacks.setdefault(channel, []).append(callback)

    async def _listen(self, channels: list[str]) -> None:
        conn = await _guard(asyncpg.connect(self._url, timeout=_CONNECT_TIMEOUT_S))
        try:
            for name in channels:
                await _guard(conn.add_listener(name, self._dispatch))
        except StorageError:
            conn.terminate()
            raise
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
            if await _until_done(self._listen_again, lambda: self._closing):
                # Notifications sent while we were away are gone: wake everyone once.
                for channel in self._callbacks:
                    self._deliver(channel)
        finally:
            self._relisten = None

    async def _listen_again(self) -> None:
        async with self._subscribing:
            await self._listen(list(self._callbacks))

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        if payload != self._token:  # our own commits' callbacks ran at the COMMIT
            self._deliver(channel)

    def _deliver(self, channel: str) -> None:
        for callback in self._callbacks.get(channel, ()):
            callback()

    async def notify(self, conn: Connection, channel: str) -> None:
        # Other processes: delivered by PostgreSQL when (and only if) the transaction
        # commits. This one: by `_once` right after the COMMIT, before `run` returns.
        cast(_Tx, conn).notified.add(channel)
        await conn.execute("SELECT pg_notify($1, $2)", channel, self._token)

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

    def hears(self, channel: str) -> bool:
        listening = self._listener is not None and not self._listener.is_closed()
        return listening and channel in self._callbacks

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
