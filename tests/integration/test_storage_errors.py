"""Driver errors, translated precisely (storage.database): a conflict is run again,
an unreachable database is "unavailable", anything else is a bug and says so."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tidings.storage.database import (
    Connection,
    Database,
    DatabaseUnavailable,
    StorageError,
    UniqueViolation,
)
from tidings.storage.drivers import open_database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    opened = await open_database(database_url)
    await opened.write("DROP TABLE IF EXISTS scratch")
    await opened.write("CREATE TABLE scratch (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    await opened.write("INSERT INTO scratch (k, n) VALUES ('a', 0), ('b', 0)")
    yield opened
    await opened.write("DROP TABLE scratch")
    await opened.close()


async def test_sql_errors_are_bugs_not_an_unreachable_database(db: Database) -> None:
    with pytest.raises(StorageError) as raised:
        await db.fetch("SELECT no_such_column FROM scratch")
    assert type(raised.value) is StorageError  # answered 500 and logged, never 503
    with pytest.raises(UniqueViolation):
        await db.write("INSERT INTO scratch (k, n) VALUES ('a', 1)")


async def test_an_unreachable_database_is_unavailable(tmp_path: Path, database_url: str) -> None:
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    else:
        url = "postgresql://postgres@127.0.0.1:1/tidings"  # nothing listens on port 1
    with pytest.raises(DatabaseUnavailable):
        await open_database(url)


def _postgres_only(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: its transactions never deadlock")


async def test_a_deadlock_is_run_again_and_both_transactions_commit(db: Database) -> None:
    """Two transactions lock the same two rows in opposite orders: PostgreSQL aborts
    one of them; ``run`` runs it again, and the caller never sees the deadlock."""
    _postgres_only(db)
    runs: list[str] = []
    first_locked = {name: asyncio.Event() for name in ("ab", "ba")}

    def body(order: str) -> Callable[[Connection], Awaitable[None]]:
        async def run(tx: Connection) -> None:
            runs.append(order)
            await tx.execute("UPDATE scratch SET n = n + 1 WHERE k = $1", order[0])
            first_locked[order].set()
            other = "ba" if order == "ab" else "ab"
            await first_locked[other].wait()  # both hold one row: now cross
            await tx.execute("UPDATE scratch SET n = n + 1 WHERE k = $1", order[1])

        return run

    await asyncio.gather(db.run(body("ab")), db.run(body("ba")))
    assert sorted(runs) in (["ab", "ab", "ba"], ["ab", "ba", "ba"])  # one ran twice
    rows = await db.fetch("SELECT k, n FROM scratch ORDER BY k")
    assert [(r["k"], r["n"]) for r in rows] == [("a", 2), ("b", 2)]  # each applied once


async def test_a_transaction_the_server_cut_while_idle_runs_again(db: Database) -> None:
    """A node that stalls inside a transaction loses it after 1 s (so it cannot hold
    locks that block the others); the transaction never committed, so it runs again."""
    _postgres_only(db)
    runs = 0

    async def body(tx: Connection) -> None:
        nonlocal runs
        runs += 1
        await tx.execute("UPDATE scratch SET n = n + 1 WHERE k = 'a'")
        if runs == 1:  # a stall past idle_in_transaction_session_timeout
            await asyncio.sleep(1.5)
        await tx.execute("UPDATE scratch SET n = n + 1 WHERE k = 'b'")

    await db.run(body)
    assert runs == 2
    rows = await db.fetch("SELECT k, n FROM scratch ORDER BY k")
    assert [(r["k"], r["n"]) for r in rows] == [("a", 1), ("b", 1)]


async def test_a_stalled_transaction_releases_its_locks_within_about_a_second(
    db: Database,
) -> None:
    """The rows a stalled transaction locked are free again once the server cut it."""
    _postgres_only(db)
    locked = asyncio.Event()
    stalled = asyncio.Event()

    async def stall(tx: Connection) -> None:
        await tx.execute("UPDATE scratch SET n = n + 1 WHERE k = 'a'")
        locked.set()
        await stalled.wait()  # never: the server ends the transaction meanwhile

    stalling = asyncio.create_task(db.run(stall))
    await locked.wait()
    started = time.monotonic()
    await db.write("UPDATE scratch SET n = n + 10 WHERE k = 'a'")
    waited = time.monotonic() - started
    stalling.cancel()
    assert waited < 10  # without the setting: forever (the stall never ends)
    assert await db.fetchval("SELECT n FROM scratch WHERE k = 'a'") == 10
