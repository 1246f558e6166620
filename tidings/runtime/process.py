"""``Runtime``: every service of one tidings process, built once from ``Settings``.

A process has roles: the API (``tidings serve``, ``serve --no-engine``), the delivery
engine (``tidings serve``, ``tidings worker``), or both. Whatever the roles, one
``Runtime`` opens the store with the process's one clock, makes the destination
policy, the metrics and the background services, starts them in order and stops
them in reverse. A role runs the same way in any process, so the engine can move
to a process of its own (a supervised child of ``serve``) by starting a second
``Runtime`` there with ``api=False``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from tidings.api.app import create_app
from tidings.api.application import App
from tidings.api.context import Services
from tidings.api.gatekeeper import Gatekeeper
from tidings.bootstrap import announce, bootstrap
from tidings.config import Settings
from tidings.delivery.engine import Engine
from tidings.delivery.sender import Sender
from tidings.destinations import DestinationPolicy
from tidings.domain.clock import SYSTEM_CLOCK, Clock
from tidings.metrics import Metrics, shared_metrics_dir
from tidings.runtime import scrape
from tidings.storage.retention import EventRetention, MessageRetention
from tidings.storage.store import Store

log = logging.getLogger("tidings")

# CPython runs its cyclic collector's youngest generation after 700 (3.11, 3.12) more
# container objects (lists, dicts, frames, futures) were made than freed. A server with 64
# requests in flight keeps that many alive in passing, so it collected every few
# requests, walking every one of them each time, holding the GIL the server's threads
# wait for. At 5,000, `python -m bench.ab <main> {get-listener,ingest} --db sqlite`:
# 1.22x and 1.17x requests/s, API worker CPU per request 0.88x and 0.77x (20,000
# measured the same as 5,000). What it keeps for longer is cyclic garbage only:
# reference counting still frees everything else at once.
GEN0_THRESHOLD = 5_000


def pace_collector() -> None:
    """Collect the youngest generation less often (``tidings serve``'s API workers and
    every engine process call this before they start)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        api: bool,
        engine: bool,
        clock: Clock = SYSTEM_CLOCK,
        child: bool = False,
    ) -> None:
        """``child``: the engine process of a ``tidings serve``, whose metrics its
        parent's ``/metrics`` shows (it serves none of its own)."""
        self.settings = settings
        self.clock = clock
        self.api = api
        self.engine = engine
        self.destinations = DestinationPolicy(settings.allowed_networks)
        # Off unless asked for. A process without the API serves them only on the
        # metrics address; with it, also on its port behind the token.
        wanted = settings.metrics_address is not None or (api and settings.metrics_token)
        if child:  # the parent shares a metrics directory only when it serves metrics
            wanted = shared_metrics_dir() is not None
        self.child = child
        self.metrics = Metrics() if wanted else None
        self._store: Store | None = None
        self._services: Services | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the runtime is not running")
        return self._store

    @property
    def services(self) -> Services:
        """What the HTTP layer runs on (the API role, while running)."""
        if self._services is None:
            raise RuntimeError("the API is not running here")
        return self._services

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Open the store and start every service of the roles; stop them on exit."""
        settings, metrics = self.settings, self.metrics
        async with AsyncExitStack() as stack:
            store = await Store.open(
                settings.database_url,
                clock=self.clock,
                on_commit=metrics.observe_commit if metrics else None,
            )
            stack.push_async_callback(store.close)
            self._store = store
            stack.callback(setattr, self, "_store", None)
            if self.api:
                await store.listen_for_changes()
                created = await bootstrap(store, settings.bootstrap_api_key)
                if created is not None:
                    announce(created)
                gatekeeper = Gatekeeper(store, settings, self.clock)
                gatekeeper.start()
                stack.push_async_callback(gatekeeper.stop)
                self._services = Services(
                    settings, store, self.destinations, gatekeeper, self.clock
                )
                stack.callback(setattr, self, "_services", None)
            if metrics is not None and settings.metrics_address is not None and not self.child:
                listener = await scrape.start_listener(
                    metrics, settings.metrics_address, store.db, shared=settings.workers > 1
                )
                stack.push_async_callback(listener.cleanup)
            if self.engine:
                engine = Engine(
                    store,
                    settings,
                    Sender(self.destinations, settings.max_in_flight),
                    clock=self.clock,
                    on_attempt=metrics.observe_attempt if metrics else None,
                    on_health=metrics.observe_health if metrics else None,
                )
                await engine.start()
                stack.push_async_callback(engine.stop)
            # Every process purges old usage events, so a deployment whose API nodes
            # restart often (or that has none for a while) still keeps the table bounded.
            retention = EventRetention(
                store.events,
                int(settings.event_retention_s * 1000),
                clock=self.clock,
                attempts=store.attempts,
                attempt_retention_ms=int(settings.attempt_retention_s * 1000),
                idempotency=store.idempotency,
            )
            retention.start()
            stack.push_async_callback(retention.stop)
            if self.engine:
                # Where the engine runs (every deployment has one): `serve` runs it in
                # its engine child, so one process per node purges, not two racing.
                purge = MessageRetention(
                    store.queues,
                    store.messages,
                    clock=self.clock,
                    interval_s=settings.purge_interval_s,
                    attempts=store.attempts,
                )
                purge.start()
                stack.push_async_callback(purge.stop)
            yield self

    @asynccontextmanager
    async def _serving_api(self) -> AsyncIterator[Services]:
        async with self.running():
            yield self.services

    def asgi_app(self) -> App:
        """The HTTP API over this runtime; the app's lifespan runs it."""
        if not self.api:
            raise RuntimeError("a runtime without the API role has no app")
        return create_app(self.settings, self._serving_api, self.metrics)
