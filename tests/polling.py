"""Waiting in tests: poll a condition against a deadline, never sleep a fixed time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def until(
    check: Callable[[], object | Awaitable[object]],
    timeout_s: float = 10.0,
    *,
    step_s: float = 0.02,
    message: str | Callable[[], object] = "condition not reached in time",
) -> float:
    """Poll ``check`` (plain or async) until it answers something true; answer how many
    seconds that took. Past ``timeout_s`` fail with ``message`` (or what it returns).

    Seconds of the event loop's clock: real time, or virtual time under looptime."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return loop.time() - started
        if loop.time() - started > timeout_s:
            raise AssertionError(message() if callable(message) else message)
        await asyncio.sleep(step_s)
