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
