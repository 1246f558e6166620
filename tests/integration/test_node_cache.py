"""Per-node caches (storage.cache) never answer from entries they cannot vouch for:
a commit on another connection empties them, and while its notifications cannot be
heard a cache serves nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from tidings.storage import wakeups
from tidings.storage.cache import NotifiedCache
from tidings.storage.database import Connection, Database
from tidings.storage.drivers import open_database
from tidings.storage.postgres import PostgresDatabase

CHANNEL = "scratch"


@pytest.fixture
async def nodes(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two connections to one database, as two nodes (or processes) would hold."""
    if database_url.startswith("sqlite") and not wakeups.SUPPORTED:
        pytest.skip("SQLite processes hear each other through Linux abstract sockets")
    one, other = await open_database(database_url), await open_database(database_url)
    await one.write("DROP TABLE IF EXISTS scratch")
    await one.write("CREATE TABLE scratch (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    await one.write("INSERT INTO scratch (k, v) VALUES ('k', 'old')")
    yield one, other
    await one.write("DROP TABLE scratch")
    await one.close()
    await other.close()


def _reader(db: Database, reads: list[str]) -> Callable[[], Awaitable[str]]:
    async def load() -> str:
        value = str(await db.fetchval("SELECT v FROM scratch WHERE k = 'k'"))
        reads.append(value)
        return value

    return load


async def _set(db: Database, value: str, *, notify: bool) -> None:
    async def body(tx: Connection) -> None:
        await tx.execute("UPDATE scratch SET v = $1 WHERE k = 'k'", value)
        if notify:
            await db.notify(tx, CHANNEL)

    await db.run(body)


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 5
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def heard(cache: NotifiedCache[str, str], db: Database) -> None:
    """Until ``cache`` subscribed and hears its channel (SQLite: once every sender can
    know its new wake-up socket, ``wakeups.KNOWN_AFTER_S``)."""
    await cache.get("warm-up", lambda: asyncio.sleep(0, "x"))  # subscribes

    async def hears() -> bool:
        return db.hears(CHANNEL)

    await _until(hears, "the cache never heard its channel")


async def test_a_commit_on_another_node_empties_the_cache(nodes: tuple[Database, Database]) -> None:
    one, other = nodes
    cache: NotifiedCache[str, str] = NotifiedCache(one, CHANNEL, ttl_s=60)
    reads: list[str] = []
    load = _reader(one, reads)
    await heard(cache, one)
    assert await cache.get("k", load) == "old"
    assert await cache.get("k", load) == "old"
    assert reads == ["old"]  # the second came from the cache
    await _set(other, "new", notify=True)

    async def fresh() -> bool:
        return await cache.get("k", load) == "new"

    await _until(fresh, "the other node's commit did not reach the cache")


async def test_a_cache_that_cannot_hear_the_channel_serves_nothing(
    nodes: tuple[Database, Database],
) -> None:
    one, other = nodes
    # SQLite: ``one`` binds its wake-up socket now, and trusts it only once every
    # sender can know it (wakeups.KNOWN_AFTER_S): until then it cannot hear.
    cache: NotifiedCache[str, str] = NotifiedCache(one, CHANNEL, ttl_s=60)
    reads: list[str] = []
    load = _reader(one, reads)
    await cache.get("k", load)
    if isinstance(one, PostgresDatabase):
        await _lose_listen_connection(one)
    await _set(other, "unheard", notify=False)
    # Either the cache is bypassed (not listening) or the reconnect emptied it.
    assert await cache.get("k", load) == "unheard"
    if one.dialect == "sqlite":
        assert not one.hears(CHANNEL)
        await cache.get("k", load)
        assert reads == ["old", "unheard", "unheard"]  # every read went to the file
    else:

        async def back() -> bool:
            return one.hears(CHANNEL)

        await _until(back, "the LISTEN connection did not come back")
        await cache.get("k", load)
        await cache.get("k", load)
        assert reads[-1] == "unheard"


async def _lose_listen_connection(db: PostgresDatabase) -> None:
    """Kill the LISTEN connection's backend and wait until the process noticed: it
    is down (nothing heard) or already replaced (the replacement emptied the caches)."""
    assert db.hears(CHANNEL)
    listener = db._listener
    admin = await asyncpg.connect(db._url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", listener.get_server_pid())
    finally:
        await admin.close()

    async def noticed() -> bool:
        return not db.hears(CHANNEL) or db._listener is not listener

    await _until(noticed, "the lost LISTEN connection went unnoticed")


async def test_a_read_that_overlapped_a_change_is_not_kept(
    nodes: tuple[Database, Database],
) -> None:
    one, _ = nodes
    cache: NotifiedCache[str, str] = NotifiedCache(one, CHANNEL, ttl_s=60)
    reads: list[str] = []
    read = _reader(one, reads)
    reading, changed = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        value = await read()  # the row as it was before the change below
        reading.set()
        await changed.wait()
        return value

    pending = asyncio.create_task(cache.get("k", slow))
    await reading.wait()
    await _set(one, "new", notify=True)
    cache.clear()  # what the notification does, here without waiting for it
    changed.set()
    assert await pending == "old"
    assert await cache.get("k", read) == "new"  # "old" was not stored


async def test_concurrent_misses_share_one_read(nodes: tuple[Database, Database]) -> None:
    """A busy key whose entry expired sends one read to the database, not one per
    request in flight."""
    one, _ = nodes
    cache: NotifiedCache[str, str] = NotifiedCache(one, CHANNEL, ttl_s=60)
    await heard(cache, one)
    reads: list[str] = []
    answers = await asyncio.gather(*(cache.get("k", _reader(one, reads)) for _ in range(20)))
    assert answers == ["old"] * 20
    assert reads == ["old"]
