"""The storage facade: one repository per table family, over one database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tidings.domain.clock import SYSTEM_CLOCK, Clock
from tidings.storage.attempts import Attempts
from tidings.storage.database import Database
from tidings.storage.deliveries import Deliveries
from tidings.storage.drivers import open_database
from tidings.storage.engines import Engines
from tidings.storage.events import EventLog
from tidings.storage.idempotency import IdempotencyKeys
from tidings.storage.ingest import CommitObserver, IngestBatcher
from tidings.storage.listeners import Listeners, Probes
from tidings.storage.messages import Messages
from tidings.storage.migrate import is_current, upgrade
from tidings.storage.orgs import ApiKeys, Organizations
from tidings.storage.queues import Queues
from tidings.storage.throttles import Lockouts, RateCounters


class Store:
    def __init__(
        self, db: Database, clock: Clock = SYSTEM_CLOCK, on_commit: CommitObserver | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        # Every repository that changes something records its events through this log.
        self.events = EventLog(db, clock)
        self.organizations = Organizations(db, self.events, clock)
        self.api_keys = ApiKeys(db, self.events, clock)
        self.queues = Queues(db, self.events, clock)
        self.messages = Messages(db, self.events, clock)
        # Both post health events into the organization's alerts queue (SPEC §11).
        self.listeners = Listeners(db, self.events, clock, alerts_to=self.messages)
        self.attempts = Attempts(db)
        self.deliveries = Deliveries(db, self.events, clock, self.attempts, alerts_to=self.messages)
        self.idempotency = IdempotencyKeys(db, clock)
        self.engines = Engines(db)
        self.probes = Probes(db)
        self.rate_counters = RateCounters(db)
        self.lockouts = Lockouts(db)
        self.ingest = IngestBatcher(self.messages, on_commit=on_commit)

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        migrate: bool = True,
        clock: Clock = SYSTEM_CLOCK,
        on_commit: CommitObserver | None = None,
    ) -> Store:
        """Open the database, upgrading its schema first (idempotent).

        ``on_commit`` hears of every ingest group commit (metrics)."""
        db = await open_database(database_url)
        try:
            if migrate and not await is_current(db):
                await asyncio.to_thread(upgrade, database_url)
        except BaseException:
            await db.close()
            raise
        store = cls(db, clock, on_commit)
        store.ingest.start()
        return store

    async def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        await self.db.subscribe(channel, callback)

    async def listen_for_changes(self) -> None:
        """Subscribe the API's caches at start: on SQLite a new wake-up socket is
        trusted only ``wakeups.KNOWN_AFTER_S`` after it is bound, which then passes
        while the server starts instead of under its first requests."""
        await self.api_keys.listen()
        await self.queues.listen()

    async def ping(self) -> None:
        await self.db.fetchval("SELECT 1")

    async def close(self) -> None:
        await self.ingest.stop()
        await self.db.close()
