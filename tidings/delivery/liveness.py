"""Liveness probes (SPEC §5): ``GET liveness_url`` on creation and every interval.

A ``2xx`` within the probe timeout is a success. When a listener that was ``down``
answers again, its waiting deliveries are made due at once, so a dead listener that
comes back catches up by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tidings.config import Settings
from tidings.delivery.port import DeliveryStore
from tidings.delivery.sender import Transport
from tidings.domain.clock import Clock
from tidings.domain.models import LivenessState
from tidings.domain.retry import is_success
from tidings.storage import channels
from tidings.storage.database import StorageError
from tidings.tasks import BackgroundTask

log = logging.getLogger("tidings.liveness")
MAX_CONCURRENT_PROBES = 32
TICK_S = 1.0


class LivenessProber:
    def __init__(
        self, store: DeliveryStore, settings: Settings, sender: Transport, clock: Clock
    ) -> None:
        self._store = store
        self._settings = settings
        self._sender = sender
        self._clock = clock
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_PROBES)
        self._probing: set[asyncio.Task[None]] = set()
        self._task = BackgroundTask("tidings-liveness")

    def start(self) -> None:
        self._task.start(self._run())

    async def stop(self) -> None:
        await self._task.stop()
        for task in self._probing:
            task.cancel()
        await asyncio.gather(*self._probing, return_exceptions=True)

    async def _run(self) -> None:
        await self._store.subscribe(channels.PROBES, self._wake.set)
        interval_ms = int(self._settings.liveness_interval_s * 1000)
        lease_ms = int((self._settings.liveness_timeout_s + 5) * 1000)
        while True:
            now = self._clock.now_ms()
            try:
                due = await self._store.probes.claim(
                    now, now + lease_ms, now + interval_ms, MAX_CONCURRENT_PROBES
                )
            except StorageError as exc:
                log.warning("claiming probes failed: %s", exc)
                due = []
            for probe in due:
                task = asyncio.create_task(self._probe(probe.listener_id, probe.liveness_url))
                self._probing.add(task)
                task.add_done_callback(self._probing.discard)
            if len(due) < MAX_CONCURRENT_PROBES:
                self._wake.clear()
                tick = min(TICK_S, self._settings.liveness_interval_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), tick)

    async def _probe(self, listener_id: str, url: str) -> None:
        async with self._slots:
            answer = await self._sender.request("GET", url, self._settings.liveness_timeout_s)
        ok = is_success(answer.status)
        try:
            before, after = await self._store.probes.record(listener_id, ok)
            if ok and before is LivenessState.DOWN:
                woken = await self._store.deliveries.wake_listener(
                    listener_id, self._clock.now_ms()
                )
                log.info(
                    "listener %s is back (%s); %d deliveries due now",
                    listener_id,
                    after.value,
                    woken,
                )
        except StorageError as exc:
            log.warning("recording a probe of %s failed: %s", listener_id, exc)
