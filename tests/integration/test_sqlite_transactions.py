"""SQLite transactions queue statements that answer nothing and write batched inserts
as multi-row statements; neither may change what a transaction stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidings.storage import sqlite
from tidings.storage.database import Connection, UniqueViolation
from tidings.storage.sqlite import SqliteDatabase


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    opened = await SqliteDatabase.open(f"sqlite:///{tmp_path / 't.db'}")
    await opened.write("CREATE TABLE t (k TEXT PRIMARY KEY, a INTEGER, b INTEGER, n INTEGER)")
    yield opened
    await opened.close()


async def test_a_queued_statement_that_fails_rolls_the_transaction_back(
    db: SqliteDatabase,
) -> None:
    insert = "INSERT INTO t (k, a, b, n) VALUES ($1, $2, $2, 0)"

    async def body(tx: Connection) -> None:
        await tx.executemany(insert, [("x", 1), ("y", 2)])
        await tx.executemany(insert, [("z", 3), ("x", 4)])  # x again

    with pytest.raises(UniqueViolation):
        await db.run(body)
    assert await db.fetchval("SELECT count(*) FROM t") == 0


async def test_multi_row_chunks_keep_every_row_and_repeated_placeholders(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "_MAX_VARIABLES", 999)  # 333 rows a statement
    upsert = (
        "INSERT INTO t (k, a, b, n) VALUES ($1, $2, $2, $3)"
        " ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n"
    )
    rows = [(f"k{i}", i, 1) for i in range(1000)]

    async def body(tx: Connection) -> None:
        await tx.executemany(upsert, rows)
        await tx.executemany(upsert, rows[:400])  # bumps, across a chunk boundary

    await db.run(body)
    got = await db.fetch("SELECT k, a, b, n FROM t")
    assert len(got) == 1000
    assert all(r["a"] == r["b"] == int(r["k"][1:]) for r in got)
    assert sum(r["n"] for r in got) == 1400


async def test_an_argument_outside_the_values_is_each_rows_own(db: SqliteDatabase) -> None:
    # Not one multi-row statement: its tail's $3 would be the first row's value.
    upsert = (
        "INSERT INTO t (k, a, b, n) VALUES ($1, $2, $2, 0) ON CONFLICT (k) DO UPDATE SET n = $3"
    )
    await db.run(lambda tx: tx.executemany(upsert, [(f"k{i}", i, 0) for i in range(5)]))
    await db.run(lambda tx: tx.executemany(upsert, [(f"k{i}", i, 10 + i) for i in range(5)]))
    got = await db.fetch("SELECT k, n FROM t ORDER BY k")
    assert [(r["k"], r["n"]) for r in got] == [(f"k{i}", 10 + i) for i in range(5)]


async def test_rows_are_read_by_column_name_on_every_path(db: SqliteDatabase) -> None:
    # Every way a caller reads must answer row["name"], as asyncpg's Records do
    # (written while trying dict rows, which were not kept: docs/benchmarks.md).
    written = await db.write(
        "INSERT INTO t (k, a, b, n) VALUES ($1, $2, $3, $4) RETURNING *", "x", 1, 2, 3
    )
    assert [dict(r) for r in written] == [{"k": "x", "a": 1, "b": 2, "n": 3}]
    await db.write("INSERT INTO t (k, a, b, n) VALUES ('y', 4, 5, 6)")

    rows = await db.fetch("SELECT k, n AS total FROM t ORDER BY k")
    assert [(r["k"], r["total"]) for r in rows] == [("x", 3), ("y", 6)]
    row = await db.fetchrow("SELECT b, a FROM t WHERE k = $1", "y")
    assert row is not None and (row["a"], row["b"]) == (4, 5)
    assert await db.fetchrow("SELECT a FROM t WHERE k = 'none'") is None
    assert await db.fetch("SELECT a FROM t WHERE k = 'none'") == []
    assert await db.fetchval("SELECT n, k FROM t WHERE k = 'x'") == 3
    point = await db.point.fetch("SELECT n FROM t WHERE k = $1", "x")
    assert point[0]["n"] == 3
    found = await db.point.fetchrow("SELECT k, b FROM t WHERE k = $1", "x")
    assert found is not None and found["b"] == 2

    async def body(tx: Connection) -> list[int]:
        return [r["a"] for r in await tx.fetch("SELECT a FROM t ORDER BY a")]

    assert await db.run(body) == [1, 4]


async def test_a_column_name_given_twice_reads_as_its_first_column(db: SqliteDatabase) -> None:
    # As sqlite3.Row answered: callers of a join that repeats a name got the first one.
    await db.write("INSERT INTO t (k, a, b, n) VALUES ('x', 1, 2, 3), ('y', 4, 5, 6)")
    join = "SELECT t.a, u.a, t.k FROM t JOIN t u ON u.k = 'y' WHERE t.k = 'x'"
    rows = await db.fetch(join)
    assert [(r["a"], r["k"]) for r in rows] == [(1, "x")]
    row = await db.fetchrow(join)
    assert row is not None and row["a"] == 1


def _sqlite_temp_files() -> list[str]:
    """SQLite's temporary files this process holds open (statement journals, temporary
    tables): unlinked at once, named ``etilqs_*``."""
    out = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if "etilqs_" in target:
            out.append(target)
    return out


async def test_statement_journals_stay_in_memory(db: SqliteDatabase) -> None:
    # A statement that may fail half-way inside a transaction keeps a journal of the
    # pages it changes (to undo it alone); past 64 KiB SQLite spills it to a temporary
    # file, which group commits wrote as much as the WAL (docs/benchmarks.md).
    # temp_store = MEMORY keeps it in memory, on the writer and on the readers alike.
    rows = [(f"key-{i:06d}-" + "x" * 200, i) for i in range(2000)]
    insert = "INSERT INTO t (k, a, b, n) VALUES ($1, $2, $2, 0)"
    await db.run(lambda tx: tx.executemany(insert, rows))
    before = _sqlite_temp_files()
    seen: list[str] = []

    async def body(tx: Connection) -> None:
        await tx.execute("UPDATE t SET n = 1 WHERE a = 0")
        await tx.execute("UPDATE t SET k = k || '!'")  # every page; a key may collide
        seen.extend(f for f in _sqlite_temp_files() if f not in before)

    await db.run(body)
    assert await db.fetchval("SELECT count(*) FROM t WHERE k LIKE '%!'") == 2000
    assert seen == []
    assert await db.run(lambda tx: tx.fetchval("PRAGMA temp_store")) == 2
    assert await db.fetchval("PRAGMA temp_store") == 2  # a reader's connection
