"""The clock seam: what "now" is for anything that stamps or windows by time.

The runtime makes one :class:`Clock` and hands it to the store (every repository),
the handlers, the gatekeeper (rate-limit windows, lockouts, key use), the delivery
engine and liveness prober, and retention, so that tests can move time (a day, a
midnight, a lockout's end) without sleeping.

Not "now" and so not the Clock: timers and timeouts (``asyncio`` sleeps, deadlines,
cache lifetimes) run on the monotonic clock, which a test does not move; and ids
keep the real time in their first bits (``domain/ids.py``), which only orders them.
"""

from __future__ import annotations

from typing import Protocol

from tidings.domain.ids import now_ms


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return now_ms()


class ManualClock:
    """A clock that only moves when told to (tests, benchmarks that backfill)."""

    def __init__(self, start_ms: int) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    def set(self, at_ms: int) -> None:
        self._now_ms = at_ms

    def advance(self, by_ms: int) -> None:
        self._now_ms += by_ms


SYSTEM_CLOCK = SystemClock()
