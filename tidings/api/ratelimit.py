"""Requests per API key per window (SPEC §1), counted on this node, summed in the database.

The hot path touches no database: each node counts its own hits in memory and
:meth:`RateLimiter.sync` (every ``SYNC_INTERVAL_S``) adds them to the shared
``rate_counters`` row of (key, window) with one atomic upsert per key, learning the
total of every node in return. The one read on the request path is the first hit of
a key in a window on this node (so a node joining a window late starts from the
shared total, not from zero). Hence:

- on one node the limit is exact;
- across nodes a key can overshoot by what the other nodes admitted since their last
  sync, at most about ``(nodes - 1) x rate x SYNC_INTERVAL_S``.

Windows are aligned on the epoch (``floor(now / window) * window``), so every node
agrees on them without talking.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from tidings.domain.clock import Clock
from tidings.storage.throttles import RateCounters

log = logging.getLogger("tidings.ratelimit")


@dataclass(slots=True)
class _Window:
    start: int  # epoch seconds
    known: int = 0  # every node's hits as of the last sync (ours that were written included)
    pending: int = 0  # our hits not written yet
    writing: int = 0  # our hits being written right now
    ready: asyncio.Future[None] | None = None  # set once ``known`` was read


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at_s: int  # epoch seconds when the window ends

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at_s),
        }

    def retry_after_s(self, now_s: float) -> int:
        return max(1, math.ceil(self.reset_at_s - now_s))


class RateLimiter:
    def __init__(self, counters: RateCounters, limit: int, window_s: int, clock: Clock) -> None:
        self._counters = counters
        self._clock = clock
        self.limit = limit
        self._window_s = window_s
        self._windows: dict[str, _Window] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def _window_start(self) -> int:
        """Epoch second the current window began."""
        return self._clock.now_ms() // 1000 // self._window_s * self._window_s

    async def hit(self, key_id: str) -> Verdict:
        """Count one request of ``key_id`` and say whether it is within the limit."""
        window = await self._current(key_id)
        window.pending += 1
        used = window.known + window.writing + window.pending
        return Verdict(
            allowed=used <= self.limit,
            limit=self.limit,
            remaining=max(0, self.limit - used),
            reset_at_s=window.start + self._window_s,
        )

    async def _current(self, key_id: str) -> _Window:
        start = self._window_start()
        window = self._windows.get(key_id)
        if window is None or window.start != start:
            window = self._windows[key_id] = _Window(start)
            window.ready = asyncio.ensure_future(self._learn(key_id, window))
        if window.ready is not None and not window.ready.done():
            # Concurrent first hits share the one read.
            await asyncio.shield(window.ready)
        return window

    async def _learn(self, key_id: str, window: _Window) -> None:
        try:
            window.known = await self._counters.hits(key_id, window.start)
        except Exception:  # fail open: a lost read costs accuracy, not availability
            log.warning("could not read the rate counter of key %s", key_id, exc_info=True)

    async def sync(self) -> None:
        """Write this node's pending hits and learn every node's totals."""
        now_start = self._window_start()
        for key_id, window in list(self._windows.items()):
            if window.start < now_start and window.pending == 0 and window.writing == 0:
                del self._windows[key_id]  # a past window with nothing left to write
        batch = [(k, w) for k, w in self._windows.items() if w.pending > 0]
        if not batch:
            return
        for _, window in batch:
            window.writing, window.pending = window.pending, 0
        try:
            totals = await self._counters.add([(k, w.start, w.writing) for k, w in batch])
        except Exception:
            log.warning("could not write rate counters; keeping them for the next sync")
            for _, window in batch:
                window.pending += window.writing
                window.writing = 0
            return
        for (_, window), total in zip(batch, totals, strict=True):
            window.known, window.writing = total, 0

    async def prune(self) -> None:
        start = self._window_start()
        await self._counters.prune(start - self._window_s)
