"""Only claim leases and attempt outcomes skip the flush at commit; everything else,
messages above all (SPEC §5 "Durability"), stays flushed, even after a failed
non-durable transaction on the same connection."""

from __future__ import annotations

import pytest

from tidings.storage.database import Connection, Database
from tidings.storage.drivers import open_database
from tidings.storage.migrate import upgrade


async def _flush_setting(db: Database, tx: Connection) -> str:
    if db.dialect == "postgresql":
        return str(await tx.fetchval("SHOW synchronous_commit"))
    return {1: "normal", 2: "full"}[await tx.fetchval("PRAGMA synchronous")]


async def test_only_non_durable_transactions_skip_the_flush(database_url: str) -> None:
    upgrade(database_url)
    db = await open_database(database_url)
    durable = "on" if db.dialect == "postgresql" else "full"
    relaxed = "off" if db.dialect == "postgresql" else "normal"

    async def setting(tx: Connection) -> str:
        return await _flush_setting(db, tx)

    async def fail(_tx: Connection) -> None:
        1 / 0  # noqa: B018

    try:
        assert await db.run(setting, durable=False) == relaxed
        assert await db.run(setting) == durable
        with pytest.raises(ZeroDivisionError):
            await db.run(fail, durable=False)
        for _ in range(3):  # every pooled connection is back to flushing
            assert await db.run(setting) == durable
    finally:
        await db.close()
