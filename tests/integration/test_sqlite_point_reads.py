"""SQLite's point reads (``db.point``) asked for during one turn of the event loop run
together at its end (storage/sqlite.py, ``_Inline``), a turn's one-row reads of one
statement as one united statement: each caller still gets its own rows or its own
error, a cancelled read leaves the others alone, and loops in other threads read the
same database at the same time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidings.storage.database import Connection, StorageError, UniqueViolation
from tidings.storage.sqlite import SqliteDatabase

ROWS = 200


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    db = await SqliteDatabase.open(f"sqlite:///{tmp_path}/points.db")

    async def body(tx: Connection) -> None:
        await tx.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        await tx.executemany("INSERT INTO t VALUES ($1, $2)", [(i, f"v{i}") for i in range(ROWS)])

    await db.run(body)
    try:
        yield db
    finally:
        await db.close()


async def test_reads_asked_together_each_get_their_own_answer(db: SqliteDatabase) -> None:
    async def one(i: int) -> str | None:
        row = await db.point.fetchrow("SELECT v FROM t WHERE id = $1", i)
        return None if row is None else row["v"]

    async def some(i: int) -> list[int]:
        rows = await db.point.fetch(
            "SELECT id FROM t WHERE id >= $1 AND id < $2 ORDER BY id", i, i + 3
        )
        return [r["id"] for r in rows]

    ids = list(range(-5, ROWS + 5))
    singles, ranges, count = await asyncio.gather(
        asyncio.gather(*(one(i) for i in ids)),
        asyncio.gather(*(some(i) for i in range(0, ROWS, 7))),
        db.point.fetchval("SELECT count(*) FROM t"),
    )
    assert singles == [f"v{i}" if 0 <= i < ROWS else None for i in ids]
    assert ranges == [[j for j in range(i, i + 3) if j < ROWS] for i in range(0, ROWS, 7)]
    assert count == ROWS


async def test_a_failing_read_fails_alone(db: SqliteDatabase) -> None:
    results = await asyncio.gather(
        db.point.fetchrow("SELECT v FROM t WHERE id = $1", 1),
        db.point.fetchrow("SELECT v FROM no_such_table WHERE id = $1", 2),
        db.point.fetchrow("SELECT v FROM t WHERE id = $1", 3),
        return_exceptions=True,
    )
    first, failed, third = results
    assert not isinstance(first, BaseException) and first is not None and first["v"] == "v1"
    assert not isinstance(third, BaseException) and third is not None and third["v"] == "v3"
    # Translated as every SQLite error is (api/problems.py maps these), not sqlite3's own.
    assert isinstance(failed, StorageError) and not isinstance(failed, UniqueViolation)
    assert "no_such_table" in str(failed)
    # The connection serves the next turn's reads as before.
    again = await db.point.fetchrow("SELECT v FROM t WHERE id = $1", 2)
    assert again is not None and again["v"] == "v2"


async def test_one_row_reads_of_several_statements_united(db: SqliteDatabase) -> None:
    # Two statements of different widths, each asked for by 37 callers in one turn
    # (united as 32 + 4 + 1), some rows missing; callers read rows by name and by
    # position from the start.
    ran: list[str] = []
    db.point._connection().set_trace_callback(ran.append)  # type: ignore[attr-defined]
    by_id = [db.point.fetchrow("SELECT id, v FROM t WHERE id = $1", i) for i in range(-2, 35)]
    by_range = [
        db.point.fetchrow("SELECT v, id FROM t WHERE id > $1 AND id < $2", i, i + 2)
        for i in range(ROWS - 30, ROWS + 7)
    ]
    rows = await asyncio.gather(*by_id, *by_range)
    got = [None if r is None else (r["id"], r[1]) for r in rows[:37]]
    assert got == [(i, f"v{i}") if i >= 0 else None for i in range(-2, 35)]
    got = [None if r is None else (r[0], r["id"]) for r in rows[37:]]
    assert got == [
        (f"v{i + 1}", i + 1) if i + 1 < ROWS else None for i in range(ROWS - 30, ROWS + 7)
    ]
    # 74 reads, 6 statements: per text one of 32 copies, one of 4, and one read alone.
    assert sorted(sql.count("UNION ALL") + 1 for sql in ran) == [1, 1, 4, 4, 32, 32]


async def test_a_read_the_united_statement_cannot_run_reads_alone(db: SqliteDatabase) -> None:
    # A list cannot be bound, nor an integer past 64 bits (sqlite3 raises
    # OverflowError, not one of its own errors): either would fail its neighbours'
    # united statement. Reads with too few and too many arguments (8 in all, as many
    # as 8 reads take) are not united with the others, whose arguments would shift.
    # Each gets its own error, and the others their rows.
    for odd in [([3],), ()], [(1 << 70,), ()], [(), (5, 6)]:
        args: list[tuple[object, ...]] = [(i,) for i in range(8)]
        args[3], args[5] = odd
        reads = [db.point.fetchrow("SELECT v FROM t WHERE id = $1", *a) for a in args]
        done = await asyncio.wait_for(asyncio.gather(*reads, return_exceptions=True), 10)
        # As before the reads were united: sqlite3's errors translated, others as raised.
        assert isinstance(done[3], StorageError | OverflowError)
        assert isinstance(done[5], StorageError)
        assert [r["v"] for i, r in enumerate(done) if i not in (3, 5)] == [
            f"v{i}" for i in range(8) if i not in (3, 5)
        ]


async def test_a_cancelled_read_leaves_the_others_alone(db: SqliteDatabase) -> None:
    tasks = [
        asyncio.ensure_future(db.point.fetchrow("SELECT v FROM t WHERE id = $1", i))
        for i in range(10)
    ]
    await asyncio.sleep(0)  # each task has asked for its read; none has run yet
    tasks[4].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[4], asyncio.CancelledError)
    assert [r["v"] for i, r in enumerate(done) if i != 4] == [f"v{i}" for i in range(10) if i != 4]


async def test_loops_in_other_threads_read_at_the_same_time(db: SqliteDatabase) -> None:
    # Each loop's reads are answered on its own thread: the threads' loops run in debug
    # mode, where settling one of their futures from another thread raises.
    rounds, start = 60, threading.Barrier(4)

    async def read_rounds(offset: int) -> list[str]:
        got = []
        for r in range(rounds):
            ids = [(offset + r * 10 + k) % ROWS for k in range(10)]
            rows = await asyncio.gather(
                *(db.point.fetchrow("SELECT v FROM t WHERE id = $1", i) for i in ids)
            )
            got += [row["v"] for row in rows]
        return got

    def in_thread(offset: int) -> list[str]:
        start.wait(5)
        return asyncio.run(asyncio.wait_for(read_rounds(offset), 20), debug=True)

    threads = [asyncio.ensure_future(asyncio.to_thread(in_thread, o)) for o in (1, 2, 3)]
    await asyncio.to_thread(start.wait, 5)
    answers = [await read_rounds(0), *await asyncio.wait_for(asyncio.gather(*threads), 30)]
    for offset, got in enumerate(answers):
        assert got == [f"v{(offset + i) % ROWS}" for i in range(rounds * 10)]
