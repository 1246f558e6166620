"""The storage facade: one repository per table family, over one database."""

from __future__ import annotations

import asyncio

from tidings.storage.database import Database, open_database
from tidings.storage.deliveries import Deliveries
from tidings.storage.ingest import IngestBatcher
from tidings.storage.listeners import Listeners, Probes
from tidings.storage.messages import Messages
from tidings.storage.migrate import upgrade
from tidings.storage.orgs import ApiKeys, Organizations
from tidings.storage.queues import Queues


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.organizations = Organizations(db)
        self.api_keys = ApiKeys(db)
        self.queues = Queues(db)
        self.listeners = Listeners(db)
        self.messages = Messages(db)
        self.deliveries = Deliveries(db)
        self.probes = Probes(db)
        self.ingest = IngestBatcher(self.messages)

    @classmethod
    async def open(cls, database_url: str, *, migrate: bool = True) -> Store:
        """Open the database, upgrading its schema first (idempotent)."""
        if migrate:
            await asyncio.to_thread(upgrade, database_url)
        store = cls(await open_database(database_url))
        store.ingest.start()
        return store

    async def ping(self) -> None:
        await self.db.fetchval("SELECT 1")

    async def close(self) -> None:
        await self.ingest.stop()
        await self.db.close()
