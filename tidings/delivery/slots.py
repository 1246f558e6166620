"""Per-listener send slots whose number can change while requests are open: each
claim tells the engine how many requests it may have open to a listener now
(domain/flow.py ``send_cap``), which shrinks when other engines hold more of it.
A smaller number lets open requests finish and starts no new one until below it."""

from __future__ import annotations

import asyncio
from collections import deque


class SendSlots:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if not self.take():
            await self.wait()

    def take(self) -> bool:
        """Take a slot if one is free now, without awaiting: the engine's common case
        (an ``async with`` is two coroutines per attempt; docs/benchmarks.md)."""
        if self.busy < self.capacity:
            self.busy += 1
            return True
        return False

    async def wait(self) -> None:
        """Take a slot once one is free. Woken in arrival order, only as many as there
        are free slots (waking every waiter at each release made the rest of a
        prefetched window run only to wait again)."""
        while self.busy >= self.capacity:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._wake()  # woken, then cancelled: the slot goes to the next
                raise
        self.busy += 1

    async def __aexit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        self.busy -= 1
        self._wake()

    def resize(self, capacity: int) -> None:
        self.capacity = capacity
        self._wake()

    def _wake(self) -> None:
        # One waiter per free slot; a woken one that finds its slot taken by an
        # attempt that did not wait (``take``) waits again, last.
        free = self.capacity - self.busy
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
