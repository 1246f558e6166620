"""Work asked for during one turn of the event loop, handed over together at its end.

Both databases gather their point reads this way (``db.point``): SQLite runs a turn's
reads back to back on the loop's thread, PostgreSQL sends a turn's reads of one
statement as one statement (storage/sqlite.py ``_Inline``, storage/postgres.py
``_PointReads``). No item waits longer than the loop's next turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
P = TypeVar("P")
# What one caller asked for, and the future its answer goes to.
Asked = list[tuple[P, "asyncio.Future[Any]"]]


class PerTurn(Generic[K, P]):
    """``ask(key, payload)`` answers a future; at the end of the turn ``flush(key,
    asked)`` gets that turn's payloads of ``key`` with their futures, in order, those
    of cancelled callers left out. Kept per loop as well: a loop's futures are settled
    on its own thread (tests and clients may use loops in other threads)."""

    def __init__(self, flush: Callable[[K, Asked[P]], None]) -> None:
        self._flush = flush
        self._due: dict[tuple[asyncio.AbstractEventLoop, K], Asked[P]] = {}

    def ask(self, key: K, payload: P) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        group = (loop, key)
        asked = self._due.get(group)
        if asked is None:
            asked = self._due[group] = []
            loop.call_soon(self._end_of_turn, group)
        asked.append((payload, future))
        return future

    def _end_of_turn(self, group: tuple[asyncio.AbstractEventLoop, K]) -> None:
        asked = [a for a in self._due.pop(group) if not a[1].cancelled()]
        if asked:
            self._flush(group[1], asked)
