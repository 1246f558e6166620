"""Writes attempt outcomes in batches: one commit for everything that finished
while the previous commit was in flight, and at most one commit per
``FLUSH_INTERVAL_S`` under load (each commit has a fixed cost, which small batches
pay often: docs/benchmarks.md), unless ``FLUSH_AT`` outcomes wait: their leases
count against the engine's in-flight window, so a fast receiver would otherwise
wait for the interval. An outcome that cannot be written yet is kept and
retried; if the process dies first, another engine takes its claims over and the
delivery is attempted again (at-least-once)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from tidings.delivery.port import DeliveryQueue
from tidings.domain.health import BreakerPolicy
from tidings.domain.models import DeliveryState
from tidings.storage.database import StorageError
from tidings.storage.deliveries import AttemptResult
from tidings.storage.health import HealthChange
from tidings.tasks import BackgroundTask

log = logging.getLogger("tidings.delivery")
MAX_BATCH = 1000
RETRY_S = 1.0
FLUSH_INTERVAL_S = 0.02
FLUSH_AT = 64


class Recorder:
    def __init__(
        self,
        deliveries: DeliveryQueue,
        on_scheduled: Callable[[list[int]], None],  # retry times just written
        on_flushed: Callable[[], None] | None = None,
        policy: BreakerPolicy | None = None,
        on_health: Callable[[list[HealthChange]], None] | None = None,  # metrics
    ) -> None:
        self._deliveries = deliveries
        self._policy = policy
        self._on_health = on_health
        self._on_scheduled = on_scheduled
        self._on_flushed = on_flushed
        self._pending: list[AttemptResult] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task = BackgroundTask("tidings-record")

    def start(self) -> None:
        self._task.start(self._run())

    @property
    def backlog(self) -> int:
        """Outcomes not written yet: their deliveries are still leased."""
        return len(self._pending)

    def add(self, result: AttemptResult) -> None:
        self._pending.append(result)
        self._wake.set()
        if len(self._pending) >= FLUSH_AT:
            self._full.set()

    async def stop(self) -> None:
        await self._task.stop()
        with contextlib.suppress(StorageError):
            while self._pending:
                await self._flush()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                started = loop.time()
                try:
                    await self._flush()
                except StorageError as exc:
                    log.warning("recording attempts failed, retrying: %s", exc)
                    await asyncio.sleep(RETRY_S)
                    continue
                # The first outcome after a quiet spell is written at once; under
                # load the next batch gathers for the rest of the interval, or until
                # FLUSH_AT outcomes wait.
                if len(self._pending) < FLUSH_AT:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._full.wait(), started + FLUSH_INTERVAL_S - loop.time()
                        )

    async def _flush(self) -> None:
        batch = self._pending[:MAX_BATCH]
        changes = await self._deliveries.record(batch, self._policy)
        del self._pending[: len(batch)]
        if changes and self._on_health is not None:
            self._on_health(changes)
        retries = [
            r.next_attempt_at
            for r in batch
            if r.state is DeliveryState.PENDING and r.next_attempt_at is not None
        ]
        if retries:
            self._on_scheduled(retries)
        if self._on_flushed is not None:
            self._on_flushed()
