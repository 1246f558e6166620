"""``tidings worker``: the delivery engine without the API, stopped cleanly by SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from tidings.api.scrape import start_listener
from tidings.config import Settings
from tidings.delivery.engine import Engine
from tidings.delivery.sender import Sender
from tidings.destinations import DestinationPolicy
from tidings.metrics import Metrics
from tidings.storage.retention import EventRetention
from tidings.storage.store import Store

log = logging.getLogger("tidings.worker")


async def run_worker(settings: Settings) -> None:
    store = await Store.open(settings.database_url)
    policy = DestinationPolicy(settings.allowed_networks)
    # No API port here: metrics are served only on TIDINGS_METRICS_ADDRESS.
    metrics = Metrics() if settings.metrics_address else None
    engine = Engine(
        store,
        settings,
        Sender(policy, settings.max_in_flight),
        clock=store.clock,
        on_attempt=metrics.observe_attempt if metrics else None,
    )
    listener = None
    if metrics is not None and settings.metrics_address is not None:
        listener = await start_listener(metrics, settings.metrics_address, store.db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    # Workers purge old usage events too, so a deployment of API nodes that are
    # restarted often (or none at all for a while) still keeps the table bounded.
    retention = EventRetention(
        store.events, int(settings.event_retention_s * 1000), clock=store.clock
    )
    retention.start()
    log.info("worker started on %s", settings.database_url.split("@")[-1])
    try:
        await stop.wait()
    finally:
        await retention.stop()
        await engine.stop()
        if listener is not None:
            await listener.cleanup()
        await store.close()
