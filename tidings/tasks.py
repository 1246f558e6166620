"""A service's background task: started once, cancelled and awaited when the service stops.

The ingest flusher, the recorder, the liveness prober, the gatekeeper's sync and the
event retention each run one loop like this; they share the start/stop here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("tidings")


def _report(task: asyncio.Task[None]) -> None:
    # Retrieving the exception here also spares asyncio's "never retrieved" warning.
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("background task %s stopped: %r", task.get_name(), exc, exc_info=exc)


class BackgroundTask:
    def __init__(self, name: str) -> None:
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, loop: Coroutine[Any, Any, None]) -> None:
        if self._task is not None:
            loop.close()
            raise RuntimeError(f"{self._name} is already started")
        self._task = asyncio.create_task(loop, name=self._name)
        self._task.add_done_callback(_report)

    async def stop(self) -> None:
        """Cancel the task and wait until it has finished (a no-op when not started).

        A cancellation of the caller itself still propagates."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait((task,))


async def every(
    interval_s: float, round_: Callable[[], Awaitable[int]], what: str, logger: logging.Logger
) -> None:
    """Run ``round_`` every ``interval_s`` for ever (a background purge's loop), logging
    how many ``what`` a round deleted; a failed round is a warning, as the next round
    retries and a purge is never urgent."""
    while True:
        try:
            if count := await round_():
                logger.info("purged %d %s", count, what)
        except Exception:
            logger.warning("purging %s failed", what, exc_info=True)
        await asyncio.sleep(interval_s)
