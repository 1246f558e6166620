"""The background purges: old usage events, stats minutes no window needs, attempts
past the attempt log's retention (SPEC §11) and expired idempotency keys
(:class:`EventRetention`); messages past their queue's retention with their
deliveries and attempts (:class:`MessageRetention`, SPEC §9).

It deletes in small batches, one short transaction each, and yields between them,
so on SQLite (one writer) the ingest path never waits behind a long delete.
Several nodes may run it at once: a row two of them pick is deleted once, and the
other's statement just finds it gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from tidings.domain.clock import Clock
from tidings.domain.events import DAY_MS
from tidings.storage.attempts import Attempts
from tidings.storage.database import Connection
from tidings.storage.events import EventLog
from tidings.storage.idempotency import IdempotencyKeys
from tidings.storage.messages import Messages, PurgeChildren
from tidings.storage.queues import Queues
from tidings.tasks import BackgroundTask, every

log = logging.getLogger("tidings.retention")

# Stats windows reach back at most 24 h (today_so_far is within them); keep two days
# of minutes so a clock step or a late purge never empties a window early.
COUNTS_KEPT_MS = 2 * DAY_MS
BATCH_ROWS = 1000
INTERVAL_S = 60.0
PAUSE_S = 0.01  # between batches: lets queued writers in
# Messages per purge transaction (with their deliveries and attempts, several rows each).
MESSAGE_BATCH_ROWS = 500
# After each batch of a message purge, pause this many times as long as the batch
# took: the purge holds the writer (SQLite) or its share of the database at most a
# quarter of the time, however large the backlog. (A fixed 10 ms pause let a
# 1,000,000 message backlog take ~75 % of SQLite's writer: ingest fell to 0.71x; a
# factor of 2 gave 0.43-0.61x once purge batches became one hop to the writer, 3 gave
# 0.75-0.88x in the same runs: docs/benchmarks.md.)
PAUSE_FACTOR = 3.0
ATTEMPT_ROWS = 10_000  # attempts deleted per statement of a message purge

# (org_id, before_ms, batch_rows) -> rows deleted
_Purge = Callable[[str, int, int], Awaitable[int]]


class EventRetention:
    def __init__(
        self,
        events: EventLog,
        retention_ms: int,
        *,
        clock: Clock,
        batch_rows: int = BATCH_ROWS,
        interval_s: float = INTERVAL_S,
        pause_s: float = PAUSE_S,
        idempotency: IdempotencyKeys | None = None,
        attempts: Attempts | None = None,
        attempt_retention_ms: int = 7 * DAY_MS,
    ) -> None:
        self._events = events
        self._idempotency = idempotency
        self._attempts = attempts
        self._attempt_retention_ms = attempt_retention_ms
        self._retention_ms = retention_ms
        self._clock = clock
        self._batch_rows = batch_rows
        self._interval_s = interval_s
        self._pause_s = pause_s
        self._task = BackgroundTask("tidings-event-retention")

    def start(self) -> None:
        self._task.start(every(self._interval_s, self.run_once, "usage events", log))

    async def stop(self) -> None:
        await self._task.stop()

    async def run_once(self) -> int:
        """Purge everything that is due now; answers the number of events deleted."""
        now = self._clock.now_ms()
        deleted = 0
        for org_id in await self._events.organizations():
            deleted += await self._drain(
                self._events.purge_events, org_id, now - self._retention_ms
            )
            await self._drain(self._events.purge_counts, org_id, now - COUNTS_KEPT_MS)
        if self._attempts is not None:
            await self.purge_attempts(now)
        if self._idempotency is not None:
            keys = self._idempotency
            await self._drain(lambda _org, before, rows: keys.purge(before, rows), "", now)
        return deleted

    async def purge_attempts(self, now: int) -> int:
        """Delete the attempts past their retention, in batches; answers how many."""
        assert self._attempts is not None
        attempts = self._attempts
        return await self._drain(
            lambda _org, before, rows: attempts.purge_before(before, rows),
            "",
            now - self._attempt_retention_ms,
        )

    async def _drain(self, purge: _Purge, org_id: str, before_ms: int) -> int:
        total = 0
        while True:
            deleted = await purge(org_id, before_ms, self._batch_rows)
            total += deleted
            if deleted < self._batch_rows:
                return total
            await asyncio.sleep(self._pause_s)


class MessageRetention:
    """Deletes messages past their queue's ``retention_seconds`` (SPEC §9), queue by
    queue, oldest first, ``batch_rows`` per short transaction with a pause between,
    so a large backlog never holds the writer (SQLite) or many locks (PostgreSQL)."""

    def __init__(
        self,
        queues: Queues,
        messages: Messages,
        *,
        clock: Clock,
        interval_s: float,
        attempts: Attempts | None = None,
        batch_rows: int = MESSAGE_BATCH_ROWS,
        pause_s: float = PAUSE_S,
    ) -> None:
        self._queues = queues
        self._messages = messages
        self._clock = clock
        self._interval_s = interval_s
        self._batch_rows = batch_rows
        self._pause_s = pause_s
        # What else goes with a purged message, in its transaction.
        self._children: list[PurgeChildren] = []
        if attempts is not None:
            self._children.append(_all_attempts(attempts))
        self._task = BackgroundTask("tidings-message-retention")

    def start(self) -> None:
        what = "messages past their queue's retention"
        self._task.start(every(self._interval_s, self.run_once, what, log))

    async def stop(self) -> None:
        await self._task.stop()

    async def run_once(self) -> int:
        """Purge everything that is due now; answers the number of messages deleted."""
        now = self._clock.now_ms()
        deleted = 0
        for queue_id, retention_s in await self._queues.with_retention():
            before = now - retention_s * 1000
            while True:
                started = time.monotonic()
                count = await self._messages.purge_expired(
                    queue_id, before, self._batch_rows, self._children
                )
                deleted += count
                if count < self._batch_rows:
                    break
                took = time.monotonic() - started
                await asyncio.sleep(max(self._pause_s, PAUSE_FACTOR * took))
        return deleted


def _all_attempts(attempts: Attempts) -> PurgeChildren:
    async def purge(tx: Connection, message_ids: Sequence[str]) -> None:
        while await attempts.purge_messages(tx, message_ids, ATTEMPT_ROWS) == ATTEMPT_ROWS:
            pass

    return purge
