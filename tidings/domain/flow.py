"""Per-listener flow control (SPEC §10): how many deliveries a claim may take for one
listener, and when each may start. Pure: both stores (storage/flow.py over SQL and the
in-memory one of the engine's tests) apply exactly these rules.

* ``max_in_flight`` counts leased deliveries of the listener, whichever engine holds
  them: a claim takes at most the difference.
* ``rate_limit`` is a next-allowed timestamp kept with the listener: a claim reserves
  start times ``1/rate`` apart from it (at most ``RATE_LOOKAHEAD_MS`` ahead) and moves
  it on. Start times never crowd closer than ``1/rate``, so any 10 s window holds at
  most ``10 x rate + 1`` starts, across every engine that shares the database.
* ``ordered``: one in flight, and only the oldest pending delivery (store order), once
  it is due and not leased.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# How far ahead a claim reserves start times under a rate limit: a second's worth,
# so a fast limit is not held to one claim per start, and a PUT of a new rate
# reaches deliveries already waiting within about this.
RATE_LOOKAHEAD_MS = 1000.0


@dataclass(frozen=True, slots=True)
class Flow:
    """A listener's options and state, as a claim reads them (under its lock)."""

    listener_id: str
    max_in_flight: int
    rate_limit: float | None
    rate_next_at: float
    ordered: bool
    leased: int  # deliveries of this listener leased now, by any engine
    # ordered only: the oldest pending delivery (message id), if it may go now
    head: str | None = None


def allowance(flow: Flow, take: int, now: int) -> int:
    """How many due deliveries a claim may lease for this listener now."""
    room = min(take, flow.max_in_flight - flow.leased)
    if flow.ordered:
        room = min(room, 1) if flow.head is not None and flow.leased == 0 else 0
    if flow.rate_limit is not None and room > 0:
        base = max(flow.rate_next_at, float(now))
        horizon = now + RATE_LOOKAHEAD_MS
        if base > horizon:
            return 0
        interval = 1000.0 / flow.rate_limit
        room = min(room, math.floor((horizon - base) / interval) + 1)
    return max(0, room)


def start_times(flow: Flow, count: int, now: int) -> tuple[list[float], float]:
    """Start times for ``count`` claimed deliveries and the listener's next
    ``rate_next_at`` (unchanged without a rate limit)."""
    if flow.rate_limit is None:
        return [0.0] * count, flow.rate_next_at
    interval = 1000.0 / flow.rate_limit
    base = max(flow.rate_next_at, float(now))
    return [base + i * interval for i in range(count)], base + count * interval
