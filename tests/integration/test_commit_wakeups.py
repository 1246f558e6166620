"""A commit that notifies a channel reaches this process's subscribers before ``run``
returns, exactly once, and every other process's (here: another database object on
the same database, which is what another process or node has) once too.

The first half is what lets a node read its own writes through its caches (they are
emptied by the callback); the "exactly once" is what keeps an engine on PostgreSQL
from being woken twice per ingest commit, by the commit and by LISTEN's echo of it.
"""

from __future__ import annotations

import asyncio

import pytest

from tidings.storage.database import Connection
from tidings.storage.drivers import open_database

CHANNEL = "queues"


async def test_a_commit_wakes_its_own_process_at_once_and_others_once(database_url: str) -> None:
    writer = await open_database(database_url)
    other = await open_database(database_url)
    calls = {"writer": 0, "other": 0}
    other_woken = asyncio.Event()

    def on_writer() -> None:
        calls["writer"] += 1

    def on_other() -> None:
        calls["other"] += 1
        other_woken.set()

    try:
        await writer.subscribe(CHANNEL, on_writer)
        await other.subscribe(CHANNEL, on_other)

        async def notifying(tx: Connection) -> None:
            await writer.notify(tx, CHANNEL)

        for expected in (1, 2):
            other_woken.clear()
            await writer.run(notifying)
            assert calls["writer"] == expected  # before run returned
            await asyncio.wait_for(other_woken.wait(), 2)
            await asyncio.sleep(0.3)  # room for an echo, if one were coming
            assert calls == {"writer": expected, "other": expected}

        # A transaction that rolls back wakes nobody.
        class Refused(Exception):
            pass

        async def refused(tx: Connection) -> None:
            await writer.notify(tx, CHANNEL)
            raise Refused

        with pytest.raises(Refused):
            await writer.run(refused)
        await asyncio.sleep(0.3)
        assert calls == {"writer": 2, "other": 2}
    finally:
        await writer.close()
        await other.close()
