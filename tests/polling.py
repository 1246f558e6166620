"""Waiting in tests: poll a condition against a deadline, never sleep a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def until(
    check: Callable[[], object | Awaitable[object]],
    timeout_s: float = 10.0,
    *,
    step_s: float = 0.02,
    message: str | Callable[[], object] = "condition not reached in time",
) -> float:
    """Poll ``check`` (plain or async) until it answers something true; answer how many
    seconds that took. Past ``timeout_s`` fail with ``message`` (or what it returns)."""
    started = time.monotonic()
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(message() if callable(message) else message)
        await asyncio.sleep(step_s)
