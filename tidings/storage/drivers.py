"""Which driver serves a database URL (kept apart from the ``database`` seam, which the
drivers themselves import)."""

from __future__ import annotations

from tidings.storage.database import Database


async def open_database(url: str) -> Database:
    if url.startswith("sqlite"):
        from tidings.storage.sqlite import SqliteDatabase

        return await SqliteDatabase.open(url)
    from tidings.storage.postgres import PostgresDatabase

    return await PostgresDatabase.open(url)
