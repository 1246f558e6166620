"""Per-listener flow control (SPEC §10): how many deliveries a claim may take for one
listener, and when each may start. Pure: both stores (storage/flow.py over SQL and the
in-memory one of the engine's tests) apply exactly these rules.

* ``max_in_flight`` is shared out between engines by their leases: an engine may
  *send* at most ``max_in_flight`` minus what the other engines hold leased
  (``send_cap``), and may lease up to ``window(send_cap)`` (the rest wait in it for a
  free slot, so a fast receiver is never left idle while outcomes are written and the
  next claim runs). Leases only shrink between an engine's claims, so whichever
  engine claimed last counted every request the others may still start: together
  they never send more than ``max_in_flight`` at once.
* ``rate_limit`` is a next-allowed timestamp kept with the listener: a claim reserves
  start times ``1/rate`` apart from it (at most ``RATE_LOOKAHEAD_MS`` ahead) and moves
  it on. Start times never crowd closer than ``1/rate``, so any 10 s window holds at
  most ``10 x rate + 1`` starts, across every engine that shares the database.
* ``ordered``: one in flight, and only the oldest pending delivery (store order), once
  it is due and not leased.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

# How far ahead a claim reserves start times under a rate limit: a second's worth,
# so a fast limit is not held to one claim per start, and a PUT of a new rate
# reaches deliveries already waiting within about this.
RATE_LOOKAHEAD_MS = 1000.0


def window(send_cap: int, prefetch: int = 0) -> int:
    """The most deliveries of one listener an engine may hold leased (sending or
    waiting for a send slot) when it may have ``send_cap`` requests open: up to
    ``send_cap - 1`` wait (each then starts within one attempt's time, and the lease,
    at least 3 delivery timeouts, covers the wait and its own attempt), or
    ``prefetch`` for a listener the engine has seen answer fast (the engine never
    starts one whose lease could run out during the attempt)."""
    return send_cap + max(send_cap - 1, prefetch) if send_cap > 0 else 0


def refill_at(send_cap: int, prefetch: int = 0) -> int:
    """Claim more for a backlogged listener once an engine holds this many or fewer:
    halfway down the waiting ones, so new rows arrive before they run out."""
    waiting = window(send_cap, prefetch) - send_cap
    return send_cap + waiting - max(1, (waiting + 1) // 2)


@dataclass(frozen=True, slots=True)
class Flow:
    """A listener's options and state, as a claim reads them (under its lock)."""

    listener_id: str
    max_in_flight: int
    rate_limit: float | None
    rate_next_at: float
    ordered: bool
    leased: int  # deliveries of this listener leased now by other engines
    # ordered only: the oldest pending delivery (message id), if it may go now
    head: str | None = None
    mine: int = 0  # deliveries of this listener leased now by the claiming engine
    prefetch: int = 0  # how many may wait in the claiming engine (``window``)

    @property
    def send_cap(self) -> int:
        """Requests the claiming engine may have open to this listener at once."""
        return max(0, self.max_in_flight - self.leased)


def allowance(flow: Flow, take: int, now: int) -> int:
    """How many due deliveries a claim may lease for this listener now."""
    cap = flow.send_cap
    room = min(take, window(cap, flow.prefetch) - flow.mine)
    if flow.ordered:
        alone = flow.leased == 0 and flow.mine == 0
        room = min(room, 1) if flow.head is not None and alone else 0
    if flow.rate_limit is not None and room > 0:
        if flow.rate_next_at > now:
            # The rate binds: reserve no more than may be sent at once, so no
            # reserved start waits for a slot (late starts would bunch up behind).
            room = min(room, cap - flow.mine)
        base = max(flow.rate_next_at, float(now))
        horizon = now + RATE_LOOKAHEAD_MS
        if base > horizon:
            return 0
        interval = 1000.0 / flow.rate_limit
        room = min(room, math.floor((horizon - base) / interval) + 1)
    return max(0, room)


def allowances(flows: Sequence[Flow], take: int, limit: int, now: int) -> dict[str, int]:
    """Per listener, how many to lease, ``limit`` in all (the engine's window), in
    three rounds over the listeners in round-robin order: first what each may send at
    once, then the rest of its window, then a fast listener's prefetch. So rows waiting
    in the engine for a few listeners' slots never take the window while other
    listeners have nothing in flight (fan-out to 100 listeners: docs/benchmarks.md)."""
    levels: list[tuple[str, tuple[int, int, int]]] = []
    for flow in flows:
        full = allowance(flow, take, now)
        base = allowance(replace(flow, prefetch=0), take, now) if flow.prefetch else full
        sendable = min(base, max(0, flow.send_cap - flow.mine))
        levels.append((flow.listener_id, (sendable, base, full)))
    room: dict[str, int] = {}
    left = limit
    for tier in range(3):
        for listener_id, wanted in levels:
            more = min(wanted[tier] - room.get(listener_id, 0), left)
            if more > 0:
                room[listener_id] = room.get(listener_id, 0) + more
                left -= more
            if left <= 0:
                return room
    return room


def start_times(flow: Flow, count: int, now: int) -> tuple[list[float], float]:
    """Start times for ``count`` claimed deliveries and the listener's next
    ``rate_next_at`` (unchanged without a rate limit)."""
    if flow.rate_limit is None:
        return [0.0] * count, flow.rate_next_at
    interval = 1000.0 / flow.rate_limit
    base = max(flow.rate_next_at, float(now))
    return [base + i * interval for i in range(count)], base + count * interval
