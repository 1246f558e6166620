"""Open-loop load in Python, for scenarios at a fixed, modest rate (the latency and
fan-out runs; throughput runs use ``wrk``): requests start on schedule whether or not
earlier ones have answered, so a slow server cannot slow the offered load down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def open_loop(rate: float, duration_s: float, fire: Callable[[], Awaitable[T]]) -> list[T]:
    count = max(1, int(rate * duration_s))
    start = time.monotonic()
    tasks: list[asyncio.Task[T]] = []
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fire()))
    return await asyncio.gather(*tasks)


async def wait_count(count: Callable[[], Awaitable[int]], want: int, timeout_s: float) -> int:
    """Poll ``count`` until it reaches ``want`` or the time is up; answer the last count."""
    deadline = time.monotonic() + timeout_s
    seen = await count()
    while seen < want and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        seen = await count()
    return seen
