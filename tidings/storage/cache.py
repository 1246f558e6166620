"""Per-node read caches that commits on any node invalidate (SPEC §2, §4).

A repository that changes cached rows notifies the cache's channel in the same
transaction; every node's (every process's) cache subscribed to it empties when
that commit lands (PostgreSQL ``LISTEN/NOTIFY``; on SQLite the in-process call plus
the cross-process wake-ups). A cache never answers from entries it cannot vouch for:

* while this process does not hear the channel (the LISTEN connection is down or
  reconnecting; on SQLite until every other process can know its wake-up socket,
  ``wakeups.KNOWN_AFTER_S`` after it subscribed), every read goes to the database,
  and a reconnect empties the cache (notifications sent meanwhile are lost);
* a read that overlapped an invalidation is not stored (the *generation* moved on
  while it ran: it may have read the row from before the change);
* entries also expire after ``ttl_s``, which bounds the damage of a notification
  lost on a connection that has not noticed yet that it is dead.

Concurrent misses of one key share one read (an expired entry of a busy key would
otherwise send every request in flight to the database at once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from tidings.storage.database import Database, StorageError

log = logging.getLogger("tidings.storage")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
MAX_ENTRIES = 10_000


class NotifiedCache(Generic[K, V]):
    def __init__(self, db: Database, channel: str, ttl_s: float) -> None:
        self._db = db
        self.channel = channel
        self._ttl_s = ttl_s
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}
        self._generation = 0
        self._subscribed = False

    async def _subscribe(self) -> None:
        """Subscribe on first use: processes that never read through this cache (a
        worker, the CLI) do not listen, nor take a SQLite wake-up socket from the
        process that does."""
        self._subscribed = True
        try:
            await self._db.subscribe(self.channel, self.clear)
        except StorageError as exc:  # tried again on the next read; uncached until then
            log.warning("cannot listen for changes on %s: %s", self.channel, exc)
            self._subscribed = False

    async def listen(self) -> None:
        """Subscribe now rather than on first use (a process that will read through
        this cache: on SQLite its wake-ups are trusted only ``KNOWN_AFTER_S`` later)."""
        if not self._subscribed:
            await self._subscribe()

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value of ``key``, or ``load()``'s (cached when it can be trusted)."""
        if not self._subscribed:  # not `await self.listen()`: a coroutine per read
            await self._subscribe()
        if not self._db.hears(self.channel):
            return await load()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._load(key, load))
            # Every waiter may be gone (clients hang up): the outcome is still read.
            pending.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(pending)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        generation = self._generation
        try:
            value = await load()
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]
        if generation == self._generation and self._db.hears(self.channel):
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self._ttl_s, value)
        return value

    def clear(self) -> None:
        """Forget everything (a notification came, or a change was made here). Reads
        in flight are not shared any more: they may have read the rows as before."""
        self._entries.clear()
        self._loading.clear()
        self._generation += 1
