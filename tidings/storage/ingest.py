"""Group commit for ``POST .../messages``.

Concurrent requests hand what they publish (one message, or a batch with the answer
to remember under an idempotency key) to one flusher task, which stores everything
that queued up while the previous commit was in flight in a single transaction.
One durable commit then serves many requests: a commit costs about the same for
one row as for a hundred (docs/benchmarks.md). A request is answered
only after the commit that holds its message returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tidings.domain.errors import Unavailable
from tidings.domain.models import Publication
from tidings.storage.database import StorageError
from tidings.storage.messages import Messages
from tidings.tasks import BackgroundTask

log = logging.getLogger("tidings.storage")

MAX_BATCH = 512  # messages per commit (a publication is never split)
# Past this many messages waiting for a commit, new ones are refused with 503 at
# once: the database is not keeping up, and a longer queue would only add latency
# and memory (the API's load shedding normally stops the queue well before this).
MAX_PENDING = 4 * MAX_BATCH
# (batch size, messages committed), told after each commit.
CommitObserver = Callable[[int, int], None]


class IngestBatcher:
    def __init__(
        self,
        messages: Messages,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
        on_commit: CommitObserver | None = None,
    ) -> None:
        self._messages = messages
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._pending: list[tuple[Publication, asyncio.Future[None]]] = []
        self._pending_messages = 0
        self._wakeup = asyncio.Event()
        self._flusher = BackgroundTask("tidings-ingest")
        self._on_commit = on_commit

    def start(self) -> None:
        self._flusher.start(self._run())

    async def stop(self) -> None:
        await self._flusher.stop()
        for _, future in self._pending:
            if not future.done():
                future.set_exception(Unavailable("The server is shutting down."))

    async def add(self, publication: Publication) -> None:
        """Returns once ``publication`` is durably committed, whole; raises its refusal."""
        if self._pending_messages >= self._max_pending:
            raise Unavailable("The server is overloaded; retry shortly.")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((publication, future))
        self._pending_messages += len(publication.messages)
        self._wakeup.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._flush(self._take())

    async def _alone(self, publication: Publication) -> BaseException | None:
        try:
            (outcome,) = await self._messages.insert_batch([publication])
        except Exception as exc:
            return exc
        return outcome

    def _take(self) -> list[tuple[Publication, asyncio.Future[None]]]:
        """Publications for one commit: up to ``max_batch`` messages, at least one."""
        count = taken = 0
        for publication, _ in self._pending:
            if taken and count + len(publication.messages) > self._max_batch:
                break
            count += len(publication.messages)
            taken += 1
        batch = self._pending[:taken]
        del self._pending[:taken]
        self._pending_messages -= count
        return batch

    async def _flush(self, batch: list[tuple[Publication, asyncio.Future[None]]]) -> None:
        publications = [p for p, _ in batch]
        try:
            outcomes = await self._messages.insert_batch(publications)
        except StorageError as exc:
            # The database's failure: every request of the batch answers it (api.problems
            # maps it). The flusher itself must live on, or every later POST would wait.
            outcomes = [exc] * len(batch)
        except Exception:
            # A defect one publication triggers must not fail the others sharing its
            # commit (another tenant's among them): each is stored on its own instead,
            # and only the one that fails again answers the error.
            log.exception("a group commit of %d publications failed; one by one", len(batch))
            outcomes = [await self._alone(p) for p in publications]
        if self._on_commit is not None:
            self._on_commit(
                sum(len(p.messages) for p, _ in batch),
                sum(
                    len(p.messages) for (p, _), o in zip(batch, outcomes, strict=True) if o is None
                ),
            )
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the client went away; the commit stands regardless
                continue
            if outcome is None:
                future.set_result(None)
            else:
                future.set_exception(outcome)
