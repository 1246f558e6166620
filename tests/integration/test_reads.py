"""Reads do not wait for the writer: while a transaction holds the database's write
path (SQLite's one writer, a PostgreSQL transaction), authentication, one resource
and a list are still answered."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.conftest import Running
from tidings.storage.database import Connection


async def test_reads_are_answered_while_a_write_is_in_progress(
    server: Running, queue: dict[str, Any]
) -> None:
    holding, release = threading.Event(), threading.Event()
    db = server.store.db

    async def slow_write(tx: Connection) -> None:
        await tx.execute("UPDATE queues SET updated_at = updated_at WHERE id = $1", queue["id"])
        holding.set()
        if db.dialect == "sqlite":  # the body runs on the writer thread: hold it there
            release.wait(10)
        else:
            await asyncio.to_thread(release.wait, 10)

    writer = asyncio.ensure_future(db.run(slow_write))
    try:
        assert await asyncio.to_thread(holding.wait, 5)
        one = await asyncio.wait_for(server.call("GET", f"/v1/queues/{queue['id']}"), 5)
        assert one.status_code == 200, one.text
        assert one.json()["queue"]["name"] == "orders"
        listed = await asyncio.wait_for(server.call("GET", "/v1/queues"), 5)
        assert listed.status_code == 200
        assert [q["id"] for q in listed.json()["queues"]] == [queue["id"]]
    finally:
        release.set()
        await writer


async def test_a_resource_read_sees_the_last_commit(server: Running, queue: dict[str, Any]) -> None:
    renamed = await server.call("PUT", f"/v1/queues/{queue['id']}", json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    read = await server.call("GET", f"/v1/queues/{queue['id']}")
    assert read.json()["queue"]["name"] == "renamed"
