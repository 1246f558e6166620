"""``tidings worker``: the delivery engine without the API, stopped cleanly by SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from tidings.config import Settings
from tidings.runtime.process import Runtime, pace_collector

log = logging.getLogger("tidings.worker")


async def run_worker(settings: Settings, *, child: bool = False) -> None:
    """``child``: the engine of a ``tidings serve`` (metrics shared with its API)."""
    pace_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Runtime(settings, api=False, engine=True, child=child).running():
        if not child:
            log.info("worker started on %s", settings.database_url.split("@")[-1])
        await stop.wait()
