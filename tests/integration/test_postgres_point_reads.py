"""PostgreSQL's point reads (``db.point.fetchrow``) asked for during one turn of the
event loop go to the server as one statement per statement text (storage/postgres.py,
``_PointReads``): each caller still gets its own row, ``None`` or its own error, a
cancelled read leaves the others alone, and reads that cannot be gathered run as
before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tidings.storage.database import StorageError, UniqueViolation
from tidings.storage.postgres import PostgresDatabase

ROWS = 200


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[tuple[PostgresDatabase, str]]:
    db = await PostgresDatabase.open(pg_url)
    table = f"points_{uuid.uuid4().hex[:8]}"
    await db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, k text UNIQUE, v text)")
    await db.execute(
        f"INSERT INTO {table} SELECT g, 'k' || g, 'v' || g FROM generate_series(0, $1) g",
        ROWS - 1,
    )
    try:
        yield db, table
    finally:
        await db.execute(f"DROP TABLE {table}")
        await db.close()


async def test_reads_asked_together_each_get_their_own_answer(
    db: tuple[PostgresDatabase, str],
) -> None:
    pg, t = db

    async def by_key(i: int) -> str | None:
        row = await pg.point.fetchrow(f"SELECT v FROM {t} WHERE k = $1", f"k{i}")
        return None if row is None else row["v"]

    async def by_id(i: int) -> str | None:  # integer arguments are gathered too
        row = await pg.point.fetchrow(f"SELECT v, id FROM {t} WHERE id = $1 AND k = $2", i, f"k{i}")
        return None if row is None else f"{row[0]}/{row['id']}"

    async def not_gathered(i: int) -> str | None:  # a float: a pooled read as before
        row = await pg.point.fetchrow(f"SELECT v FROM {t} WHERE id = $1::float8", float(i))
        return None if row is None else row["v"]

    ids = list(range(-5, ROWS + 5))
    keyed, numbered, alone = await asyncio.gather(
        asyncio.gather(*(by_key(i) for i in ids)),
        asyncio.gather(*(by_id(i) for i in ids)),
        asyncio.gather(*(not_gathered(i) for i in range(0, ROWS, 50))),
    )
    assert keyed == [f"v{i}" if 0 <= i < ROWS else None for i in ids]
    assert numbered == [f"v{i}/{i}" if 0 <= i < ROWS else None for i in ids]
    assert alone == [f"v{i}" for i in range(0, ROWS, 50)]


async def test_a_failing_read_fails_alone(db: tuple[PostgresDatabase, str]) -> None:
    pg, t = db
    # "x" is no integer: the gathered statement fails, then each reads alone.
    sql = f"SELECT v FROM {t} WHERE id = CAST($1::text AS int)"
    first, failed, third = await asyncio.gather(
        pg.point.fetchrow(sql, "1"),
        pg.point.fetchrow(sql, "x"),
        pg.point.fetchrow(sql, "3"),
        return_exceptions=True,
    )
    assert not isinstance(first, BaseException) and first is not None and first["v"] == "v1"
    assert not isinstance(third, BaseException) and third is not None and third["v"] == "v3"
    # Translated as every driver error is (api/problems.py maps these).
    assert isinstance(failed, StorageError) and not isinstance(failed, UniqueViolation)
    assert "integer" in str(failed)
    again = await asyncio.gather(*(pg.point.fetchrow(sql, str(i)) for i in (5, 6)))
    assert [r["v"] for r in again if r is not None] == ["v5", "v6"]


async def test_a_cancelled_read_leaves_the_others_alone(db: tuple[PostgresDatabase, str]) -> None:
    pg, t = db
    tasks = [
        asyncio.ensure_future(pg.point.fetchrow(f"SELECT v FROM {t} WHERE k = $1", f"k{i}"))
        for i in range(10)
    ]
    await asyncio.sleep(0)  # every read asked for; none sent yet
    tasks[4].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[4], asyncio.CancelledError)
    rows = [r for i, r in enumerate(results) if i != 4]
    assert [r["v"] for r in rows if not isinstance(r, BaseException) and r] == [
        f"v{i}" for i in range(10) if i != 4
    ]
