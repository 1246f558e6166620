"""SQLite through the stdlib driver: one writer thread, a few reader threads.

WAL lets readers run beside the single writer. ``synchronous=FULL`` makes every
commit durable; concurrent writers share commits because the ingest path batches
messages (see ``storage.ingest``) and every write runs on the one writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from functools import lru_cache, partial
from typing import Any, TypeVar, cast

from tidings.config import sqlite_path
from tidings.storage.database import (
    Connection,
    Contention,
    DatabaseUnavailable,
    ForeignKeyViolation,
    HeldLock,
    Row,
    StorageError,
    UniqueViolation,
)
from tidings.storage.filelocks import FileLock, is_free, lock_dir
from tidings.storage.gathering import Asked, PerTurn
from tidings.storage.wakeups import WakeListener, WakeSender, address

T = TypeVar("T")
# The sqlite3 module binds None through its adaptation protocol (None is not among the
# types it binds directly): two attribute look-ups that fail, one raising and clearing
# an AttributeError, ~3,400 machine instructions per None argument (6 per message
# stored). A registered adapter is one dict hit; an empty dict's ``get`` (C code)
# answers None for any key. Process-wide, like every sqlite3 adapter; None is still
# bound as NULL.
_EMPTY: dict[None, None] = {}
sqlite3.register_adapter(type(None), _EMPTY.get)
_PLACEHOLDER = re.compile(r"\$(\d+)")
_READERS = 4
# How long a statement waits for another process's lock (busy_timeout, and the write
# lock's own retries below) before it fails as Contention.
LOCK_WAIT_S = 10.0
Runner = Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]


@lru_cache(maxsize=1024)
def _sql(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)


# Parameters per statement; SQLite allows 32,766 since 3.32 and 999 before.
_MAX_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_INSERT_VALUES = re.compile(r"(?is)^(INSERT\s.+?\sVALUES\s*)(\([^()]*\))(.*)$")


@lru_cache(maxsize=256)
def _multi_row(sql: str) -> tuple[str, str, str, int, tuple[int, ...] | None] | None:
    """``INSERT ... VALUES (...) [ON CONFLICT ...]`` split for a multi-row statement:
    the head, one row's ``(?, ...)``, the tail, its width and which argument each
    ``?`` takes (None: each in turn).

    An ``executemany`` steps the statement once per row, and the sqlite3 module gives
    up and retakes the GIL around every step, a wait each time the event loop holds
    it. One statement of many rows is one step: the writer thread's share of a group
    commit fell from 0.41 + 1.09 ms to 0.20 + 0.71 ms (in-process, docs/benchmarks.md).
    Its placeholders are anonymous: SQLite looks each numbered one (``?12``) up in a
    list of all of them while preparing, quadratic in their number (a 64-row insert
    of 11 columns: 979 us numbered, 214 us anonymous, docs/benchmarks.md).
    """
    found = _INSERT_VALUES.match(sql)
    if found is None:
        return None
    head, values, tail = found.groups()
    if _PLACEHOLDER.search(head) or _PLACEHOLDER.search(tail):
        return None  # an argument outside the row would differ per row: one by one
    order = tuple(int(n) - 1 for n in _PLACEHOLDER.findall(values))
    in_turn = order == tuple(range(len(order)))
    return head, _PLACEHOLDER.sub("?", values), tail, len(order), None if in_turn else order


@lru_cache(maxsize=1024)
def _rows_sql(sql: str, count: int) -> str:
    """The multi-row form of ``sql`` for ``count`` rows (cached: batch sizes repeat)."""
    multi = _multi_row(sql)
    assert multi is not None
    head, values, tail, _, _ = multi
    return head + ", ".join([values] * count) + tail


# Callers per united statement: a few statement sizes per statement text (powers of
# two, see _chunks), each prepared once; 32 x 3 arguments is far from SQLite's limit.
_MOST_UNITED = 32


@lru_cache(maxsize=256)
def _union_sql(sql: str, width: int, count: int) -> str:
    """``count`` copies of the one-row read ``sql`` (``width`` arguments) as one
    statement: copy ``n`` takes arguments ``n * width + 1 ...`` and tags its rows
    with ``n`` in a last column, ``tidings_n``."""

    def copy(n: int) -> str:
        own = _PLACEHOLDER.sub(lambda m: f"?{n * width + int(m.group(1))}", sql)
        return f"SELECT q.*, {n} AS tidings_n FROM ({own}) AS q"

    return " UNION ALL ".join(map(copy, range(count)))


def _first_row(sql: str, args: Sequence[Any], conn: sqlite3.Connection) -> Row | None:
    row: Row | None = conn.execute(_sql(sql), args).fetchone()
    return row


def _chunks(total: int, most: int) -> Iterator[tuple[int, int]]:
    """``(start, count)`` of the statements for ``total`` rows, ``count`` a power of two
    up to ``most`` (37 rows: 32, 4, 1). A few sizes per statement, each prepared once
    and kept in the connection's statement cache (128 statements): a statement per
    batch size made the engine's record batches (1 to 64 rows, three multi-row
    inserts) prepare again and again, 2 % of its CPU."""
    start = 0
    while start < total:
        count = min(most, 1 << ((total - start).bit_length() - 1))
        yield start, count
        start += count


def _execute(statement: str, args: list[Any], conn: sqlite3.Connection) -> None:
    conn.execute(statement, args)


# Primary result codes (the low byte of an extended code).
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# The file cannot serve: I/O error, disk full, cannot open, read-only file system,
# damaged file, out of memory.
_UNAVAILABLE = {
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_NOTADB,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_PROTOCOL,
}


def _translate(exc: sqlite3.Error) -> StorageError:
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        if "UNIQUE" in text or "PRIMARY KEY" in text:
            return UniqueViolation(text)
        if "FOREIGN KEY" in text:
            return ForeignKeyViolation(text)
        return StorageError(text)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary in _BUSY:  # another process held the write lock past busy_timeout
        return Contention(text)
    if primary in _UNAVAILABLE:
        return DatabaseUnavailable(text)
    # Anything else (bad SQL, a closed connection, a value SQLite refuses) is a bug.
    return StorageError(f"{type(exc).__name__}: {text}")


def _connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    # Statement journals (a statement's undo within a transaction: every multi-row
    # insert of a group commit keeps one) in memory, not spilled past 64 KiB to an
    # unlinked file in /var/tmp: that file took as many writes per commit as the WAL,
    # ~2.6 system calls and 6 KiB per message ingested (docs/benchmarks.md).
    # Sorts and temporary tables a plan needs go to memory too, as large as they
    # would have been on disk (the list queries read in index order).
    conn.execute("PRAGMA temp_store = MEMORY")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


def _begin(durable: bool, conn: sqlite3.Connection) -> None:
    if not durable:  # WAL + NORMAL: no fsync at this commit, still atomic and ordered
        conn.execute("PRAGMA synchronous = NORMAL")
    _take_write_lock(conn)


_RETRY_PAUSES_S = (0.0002, 0.0005, 0.001, 0.002)


def _take_write_lock(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, retried in short pauses while another process holds the lock.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms ... between tries, so
    with the API and the engine of ``tidings serve`` writing one file from two
    processes, a commit that met the other's lock (held for a millisecond or two)
    often waited tens of milliseconds: the end-to-end p99 at 200 msg/s (see
    docs/benchmarks.md). The write lock is taken here, so nothing later in the
    transaction waits for it again."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        tries = 0
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
                if code not in _BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(_RETRY_PAUSES_S[min(tries, len(_RETRY_PAUSES_S) - 1)])
            tries += 1
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")


def _rollback(durable: bool, conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        _end("ROLLBACK", durable, conn)
    elif not durable:
        conn.execute("PRAGMA synchronous = FULL")


def _one_statement(
    sql: str, args: Sequence[Any], durable: bool, conn: sqlite3.Connection
) -> list[Row]:
    _begin(durable, conn)
    try:
        rows: list[Row] = conn.execute(_sql(sql), args).fetchall()
    except BaseException:
        _rollback(durable, conn)
        raise
    _end("COMMIT", durable, conn)
    return rows


def _end(statement: str, durable: bool, conn: sqlite3.Connection) -> None:
    try:
        conn.execute(statement)
    finally:
        if not durable:  # every other transaction on this connection stays durable
            conn.execute("PRAGMA synchronous = FULL")


class _Threads:
    """Threads that run calls for the event loop: a queue in, the loop's
    ``call_soon_threadsafe`` out.

    Leaner than ``run_in_executor``, whose concurrent future (a condition and its
    lock), idle semaphore and chained callbacks cost more than a short statement:
    its ``submit`` was a sixth of the engine's GIL samples under ingest
    (docs/benchmarks.md). A call whose caller was cancelled before a thread took it
    is skipped, as the executor did."""

    def __init__(self, count: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None]
        self._jobs = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}_{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    async def call(self, fn: Callable[[], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((fn, future))
        return await future

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            if future.cancelled():
                continue
            settle: Callable[[asyncio.Future[Any], Any], None] = _settle
            try:
                outcome: Any = fn()
            except BaseException as exc:  # the caller's to handle, as with an executor
                settle, outcome = _fail, exc
            # A closed loop: nobody waits any more.
            with contextlib.suppress(RuntimeError):
                future.get_loop().call_soon_threadsafe(settle, future, outcome)

    def close(self) -> None:
        """Stop the threads once the calls queued so far have run."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)


def _settle_with(
    future: asyncio.Future[Any],
    fn: Callable[[sqlite3.Connection], Any],
    connection: Callable[[], sqlite3.Connection],
) -> None:
    """``future`` gets what ``fn`` answers on the connection, or what either raises
    (the caller's to handle, as with the reader threads)."""
    try:
        outcome = fn(connection())
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(outcome)


class _Session:
    """Runs statements of one sqlite3 connection on its thread."""

    def __init__(self, run: Runner) -> None:
        self._run = run

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return cast(T, await self._run(fn))
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._call(lambda c: c.execute(_sql(sql), args).fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self._call(partial(_first_row, sql, args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        def first(c: sqlite3.Connection) -> Any:
            row = c.execute(_sql(sql), args).fetchone()
            return None if row is None else row[0]

        return await self._call(first)

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._call(lambda c: c.execute(_sql(sql), args).rowcount)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        rows = list(args)
        await self._call(lambda c: c.executemany(_sql(sql), rows))


_Read = Callable[[sqlite3.Connection], Any]
_Statement = tuple[str, int]  # a one-row read's text and argument count


class _Inline(_Session):
    """Reads on the event loop's own thread, on a read-only connection of their own,
    gathered per turn of the loop.

    For lookups of a few rows by key (an API key, one resource, a queue's listeners):
    such a read takes tens of microseconds, while the hop to a reader thread and back
    (an executor future, a wake-up of the loop, the GIL changing hands twice) cost
    more than the read, and under load much more. WAL readers never wait for the
    writer. Anything that scans (lists, counts, the engine's claims) stays on the
    reader threads, where it does not hold up the loop.

    The reads asked for during one turn of the loop run back to back in one callback
    at its end, not each where it is asked for: sqlite3 releases the GIL inside every
    statement, and a server thread waiting for it (granian's, which hands requests
    and answers to Python one at a time) takes it then, so the loop waits for that
    thread and is woken again, once per statement when they are spread over the turn
    and about once per turn when they run together (docs/benchmarks.md, "point reads
    gathered per turn of the loop": GET of a message 1.73x, of a listener 1.56x).

    A turn's ``fetchrow`` calls of one statement go further: they run as one statement,
    the ``UNION ALL`` of a copy per caller, each copy's rows tagged with its caller's
    number in one more column at their end, ``tidings_n`` (rows are read by name, or
    by position from the start). sqlite3 lets the GIL go at every step of a statement,
    and a one-row read is two steps (the row, then its end), where a union is one step
    per row and one more; under ``wrk -c64`` a turn held ~27 reads. If the union fails,
    each caller reads alone and gets its own answer or error.
    """

    def __init__(self, path: str) -> None:
        super().__init__(self._gathered)
        self._reads: PerTurn[None, _Read] = PerTurn(self._run_reads)
        self._rows: PerTurn[_Statement, tuple[Any, ...]] = PerTurn(self._run_rows)
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self._path, readonly=True)
        return self._conn

    def _gathered(self, fn: _Read) -> asyncio.Future[Any]:
        return self._reads.ask(None, fn)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            return cast("Row | None", await self._rows.ask((sql, len(args)), args))
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def _run_reads(self, _: None, due: Asked[_Read]) -> None:
        for fn, future in due:
            _settle_with(future, fn, self._connection)

    def _run_rows(self, statement: _Statement, due: Asked[tuple[Any, ...]]) -> None:
        sql, width = statement
        for start, count in _chunks(len(due), _MOST_UNITED):
            part = due[start : start + count]
            if count > 1 and self._united(sql, width, part):
                continue
            for args, future in part:
                _settle_with(future, partial(_first_row, sql, args), self._connection)

    def _united(self, sql: str, width: int, part: Asked[tuple[Any, ...]]) -> bool:
        """Answer every read of ``part`` from one united statement; False when that
        could not run (an argument sqlite3 cannot bind, say), and then none is
        answered: each reads alone, for its own answer or error."""
        args = [a for own, _ in part for a in own]
        try:
            rows = self._connection().execute(_union_sql(sql, width, len(part)), args).fetchall()
        except Exception:
            return False
        found: dict[int, Row] = {}
        for row in rows:
            found.setdefault(row[-1], row)
        for n, (_, future) in enumerate(part):
            future.set_result(found.get(n))
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class SqliteDatabase(_Session):
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self._path = path
        self._writer_thread = _Threads(1, "tidings-sqlite-w")
        self._reader_threads = _Threads(_READERS, "tidings-sqlite-r")
        self._writer = _connect(path, readonly=False)
        self._readers = threading.local()
        self._all_readers: list[sqlite3.Connection] = []
        self._subscribers: dict[str, list[Callable[[], None]]] = {}
        self._listeners: dict[str, WakeListener] = {}
        self._addresses: dict[str, bytes] = {}
        self._wake_sender = WakeSender(path)
        self._inline = _Inline(path)
        self.point: Connection = self._inline
        super().__init__(self._read)

    @classmethod
    async def open(cls, url: str) -> SqliteDatabase:
        path = str(sqlite_path(url))
        try:
            db = cls(path)
            await db._on_writer(lambda c: c.execute("PRAGMA journal_mode = WAL").fetchone())
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return db

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = _connect(self._path, readonly=True)
            self._readers.conn = conn
            self._all_readers.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reader_threads.call(lambda: fn(self._reader()))

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer_thread.call(partial(fn, self._writer))

    async def run(self, body: Callable[[Connection], Awaitable[T]], *, durable: bool = True) -> T:
        """The whole transaction, ``body`` included, in one hop to the writer thread.

        ``body`` may only await its connection, whose statements run there and then
        (never suspending), so the coroutine is driven to its end on the writer
        thread: BEGIN, the statements and COMMIT are one hand-off between the event
        loop and the writer, where a hop per statement that answers something cost
        two GIL hand-offs each and the executor's submit was a tenth of the API
        worker's samples under ingest (docs/benchmarks.md). One writer thread, so
        transactions never interleave, never deadlock and are never retried:
        SQLite's busy timeout already waited for any other process (Contention)."""
        tx = _Here(self._writer)
        context = contextvars.copy_context()  # the caller's request id, for its logs

        def transaction(conn: sqlite3.Connection) -> T:
            _begin(durable, conn)
            try:
                result = context.run(_drive, body(tx))
            except BaseException:
                _rollback(durable, conn)
                raise
            _end("COMMIT", durable, conn)
            return result

        try:
            result = await self._on_writer(transaction)
        except sqlite3.Error as exc:  # BEGIN, COMMIT or ROLLBACK
            raise _translate(exc) from exc
        for channel in tx.notified:
            self._deliver(channel)
            own = self._listeners.get(channel)
            self._wake_sender.send(self._address(channel), own.name if own else None)
        return result

    def _address(self, channel: str) -> bytes:
        # Computed once per channel: resolving the path (an lstat per component) and
        # hashing it was ~24 us, paid by every commit that wakes another process.
        found = self._addresses.get(channel)
        if found is None:
            found = self._addresses[channel] = address(self._path, channel)
        return found

    def _deliver(self, channel: str) -> None:
        for callback in self._subscribers.get(channel, ()):
            callback()

    async def write(self, sql: str, *args: Any, durable: bool = True) -> list[Row]:
        """BEGIN, the statement and COMMIT in one hop to the writer thread."""
        try:
            return await self._on_writer(partial(_one_statement, sql, args, durable))
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        """``callback`` runs after every commit that notifies ``channel``, in this
        process or (Linux) in another process using the same file."""
        self._subscribers.setdefault(channel, []).append(callback)
        if channel not in self._listeners:
            found = WakeListener.bind(self._address(channel), partial(self._deliver, channel))
            if found is not None:
                self._listeners[channel] = found

    def hears(self, channel: str) -> bool:
        # Another process's commits (a worker, the CLI, another API worker on the
        # same file) reach this one once every sender knows its wake-up socket.
        listener = self._listeners.get(channel)
        return listener is not None and listener.known()

    async def notify(self, conn: Connection, channel: str) -> None:
        cast(_Here, conn).notified.add(channel)

    async def hold_lock(self, key: int) -> HeldLock:
        try:
            return FileLock(lock_dir(self._path) / f"{key}.lock")
        except OSError as exc:  # a directory we may not write, a full disk
            raise DatabaseUnavailable(f"engine lock beside {self._path}: {exc}") from exc

    async def free_locks(self, keys: Sequence[int]) -> list[int]:
        folder = lock_dir(self._path)
        try:
            return [key for key in keys if is_free(folder / f"{key}.lock")]
        except OSError as exc:
            raise DatabaseUnavailable(f"engine locks beside {self._path}: {exc}") from exc

    async def close(self) -> None:
        for listener in self._listeners.values():
            listener.close()
        self._wake_sender.close()
        await self._on_writer(lambda c: c.close())
        self._writer_thread.close()
        self._reader_threads.close()
        for conn in self._all_readers:
            conn.close()
        self._inline.close()


def _drive(step: Awaitable[T]) -> T:
    """Run a transaction body that never suspends to its end, on this thread."""
    coroutine = cast(Coroutine[Any, Any, T], step)
    try:
        waited = coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError(f"a SQLite transaction body awaited {waited!r}, not its connection")


class _Here(_Session):
    """A transaction's connection inside its body, on the writer thread: statements run
    at once on it, so the body's awaits never suspend."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.notified: set[str] = set()

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._conn)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    # Look-ups without the closure and the second coroutine of ``_call``.
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            rows: list[Row] = self._conn.execute(_sql(sql), args).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            row: Row | None = self._conn.execute(_sql(sql), args).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return row

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        rows = list(args)
        multi = _multi_row(sql)
        if multi is None or len(rows) < 2:
            await self._call(lambda c: c.executemany(_sql(sql), rows))
            return
        _, _, _, width, order = multi
        most = 1 << (max(1, _MAX_VARIABLES // width).bit_length() - 1)
        for start, count in _chunks(len(rows), most):
            chunk = rows[start : start + count]
            if order is None:
                flat = [value for row in chunk for value in row]
            else:
                flat = [row[i] for row in chunk for i in order]
            await self._call(partial(_execute, _rows_sql(sql, count), flat))
