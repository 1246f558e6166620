"""Requests per API key per window (SPEC §1), the same limit across every node.

Each node takes shares of a key's window from the shared ``rate_counters`` row: one
transaction reserves up to ``share`` hits (fewer once the row reaches the limit), and
the node admits requests from its share in memory until it is used up, then takes
another. The row never counts past the limit, so the nodes together never admit more
than the limit (SPEC §2: rate limits count across nodes); what a node reserved and did
not use before the window ended is lost, so together they may admit up to one share
per other node less. Shares are a fiftieth of the limit (at least 1): with the default
6,000 a minute, one transaction per 120 requests of a busy key on a node, none for a
request within a share. Concurrent requests that find the share used up wait for one
reservation together.

A node that cannot reach the database admits a share's worth on its own (fails open:
a lost write costs accuracy, not availability) and tries again at the next share.

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
SHARES_PER_WINDOW = 50


@dataclass(slots=True)
class _Window:
    start: int  # epoch seconds
    granted: int = 0  # hits this node reserved in the shared row
    used: int = 0  # of them, admitted
    count: int = 0  # the shared row after this node's last reservation (every node's)
    spent: bool = False  # the row reached the limit: nothing more to take this window
    taking: asyncio.Future[None] | None = None  # a reservation in flight, shared


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
        self._share = max(1, limit // SHARES_PER_WINDOW)
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
        start = self._window_start()
        window = self._windows.get(key_id)
        if window is None or window.start != start:
            window = self._windows[key_id] = _Window(start)
        while window.used >= window.granted and not window.spent:
            if window.taking is None or window.taking.done():
                window.taking = asyncio.ensure_future(self._take(key_id, window))
            await asyncio.shield(window.taking)  # concurrent requests share it
        allowed = window.used < window.granted
        window.used += allowed
        # What every node may still admit, as far as this node knows: the row's rest
        # and this node's unused share.
        remaining = self.limit - window.count + window.granted - window.used
        return Verdict(
            allowed=allowed,
            limit=self.limit,
            remaining=max(0, remaining),
            reset_at_s=window.start + self._window_s,
        )

    async def _take(self, key_id: str, window: _Window) -> None:
        try:
            got, count = await self._counters.take(key_id, window.start, self._share, self.limit)
        except Exception:  # fail open: a lost write costs accuracy, not availability
            log.warning("could not reserve rate of key %s", key_id, exc_info=True)
            got, count = self._share, window.count + self._share
        window.granted += got
        window.count = count
        window.spent = got < self._share

    def forget_past(self) -> None:
        """Drop the windows that have ended (their shares were counted when taken)."""
        start = self._window_start()
        for key_id in [k for k, w in self._windows.items() if w.start < start]:
            del self._windows[key_id]

    async def prune(self) -> None:
        start = self._window_start()
        await self._counters.prune(start - self._window_s)
