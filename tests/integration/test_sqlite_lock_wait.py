"""Two processes (here: two databases) writing one SQLite file: a transaction that
finds the write lock taken waits for it and goes ahead once it is free."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tidings.storage.database import Connection
from tidings.storage.sqlite import SqliteDatabase


async def test_a_write_waits_for_the_other_writer_and_then_commits(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    db = await SqliteDatabase.open(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        await db.write("CREATE TABLE t (x INTEGER)")
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        other.execute("INSERT INTO t VALUES (1)")

        async def insert(tx: Connection) -> None:
            await tx.execute("INSERT INTO t VALUES (2)")

        waiting = asyncio.ensure_future(db.run(insert))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # still waiting for the lock, not failed
        threading.Thread(target=other.execute, args=("COMMIT",)).start()
        await asyncio.wait_for(waiting, 5)
        assert [r[0] for r in await db.fetch("SELECT x FROM t ORDER BY x")] == [1, 2]
    finally:
        other.close()
        await db.close()


async def test_a_short_transaction_that_finds_the_lock_taken_does_not_block_the_loop(
    tmp_path: Path,
) -> None:
    # Not durable (the engine's claims and records): while another process holds the
    # lock it waits off the event loop's thread, so the loop goes on serving everything
    # else meanwhile; the wait leaves the connection fit for the next transactions.
    path = tmp_path / "w.db"
    db = await SqliteDatabase.open(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        await db.write("CREATE TABLE t (x INTEGER)")
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (1)")

        async def insert(tx: Connection) -> None:
            await tx.execute("INSERT INTO t VALUES (2)")

        waiting = asyncio.ensure_future(db.run(insert, durable=False))
        started = time.monotonic()
        for _ in range(30):  # 0.3 s of a loop that must stay free
            await asyncio.sleep(0.01)
        assert time.monotonic() - started < 2.0  # not held up for the lock's wait
        assert not waiting.done()
        threading.Thread(target=other.execute, args=("COMMIT",)).start()
        await asyncio.wait_for(waiting, 5)
        assert [r[0] for r in await db.fetch("SELECT x FROM t ORDER BY x")] == [1, 2]
        # The wait left the connection as it was: later durable and short
        # transactions commit, and a rollback still rolls back.
        await db.run(lambda tx: tx.execute("INSERT INTO t VALUES (3)"), durable=False)

        async def refused(tx: Connection) -> None:
            await tx.execute("INSERT INTO t VALUES (99)")
            raise ValueError

        for durable in (False, True):
            with pytest.raises(ValueError):
                await db.run(refused, durable=durable)
        await db.run(lambda tx: tx.execute("INSERT INTO t VALUES (4)"))
        assert [r[0] for r in await db.fetch("SELECT x FROM t ORDER BY x")] == [1, 2, 3, 4]
    finally:
        other.close()
        await db.close()


async def test_short_and_durable_transactions_at_once_all_commit(tmp_path: Path) -> None:
    # One writer connection: transactions of both kinds, all at once, never meet on it.
    path = tmp_path / "w.db"
    db = await SqliteDatabase.open(f"sqlite:///{path}")
    try:
        await db.write("CREATE TABLE t (x INTEGER PRIMARY KEY)")

        async def add(x: int) -> None:
            async def body(tx: Connection) -> None:
                await tx.execute("INSERT INTO t VALUES ($1)", x)
                await tx.fetchval("SELECT count(*) FROM t")

            await db.run(body, durable=x % 3 == 0)

        await asyncio.gather(*(add(x) for x in range(600)))
        assert await db.fetchval("SELECT count(*) FROM t") == 600
    finally:
        await db.close()
