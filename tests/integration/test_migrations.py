"""Upgrading an empty database gives exactly the schema the code declares."""

from __future__ import annotations

import asyncio
import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_ADMIN_URL, _admin
from tidings.storage import store as store_module
from tidings.storage.migrate import is_current, upgrade
from tidings.storage.store import Store
from tidings.storage.tables import metadata


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _pg_diff(url: str) -> list[object]:
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    await engine.dispose()
    return diff


def test_upgrade_matches_declared_schema(database_url: str) -> None:
    if database_url.startswith("postgresql"):
        # The shared test database is already migrated: start from an empty one.
        name = f"tidings_migration_{os.getpid()}"
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        try:
            _check(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
        finally:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        _check(database_url)


def _check(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # idempotent
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url)
        with engine.connect() as conn:
            diff = _diff(conn)
        engine.dispose()
    else:
        diff = asyncio.run(_pg_diff(database_url))
    assert diff == []


async def test_a_current_database_opens_without_alembic(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []

    def counted(url: str) -> None:
        runs.append(url)
        upgrade(url)

    monkeypatch.setattr(store_module, "upgrade", counted)
    await (await Store.open(database_url)).close()  # new (SQLite) or migrated (PostgreSQL)
    before = len(runs)
    store = await Store.open(database_url)
    try:
        assert await is_current(store.db)
        assert await store.organizations.count() == 0  # the schema is there
    finally:
        await store.close()
    assert len(runs) == before  # nothing left to run: not even a no-op Alembic pass
    assert before == (1 if database_url.startswith("sqlite") else 0)
