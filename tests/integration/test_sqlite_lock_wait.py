"""Two processes (here: two databases) writing one SQLite file: a transaction that
finds the write lock taken waits for it and goes ahead once it is free."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

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
