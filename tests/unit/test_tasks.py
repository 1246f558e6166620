"""The background-task helper every service loop starts and stops through."""

from __future__ import annotations

import asyncio

import pytest

from tidings.tasks import BackgroundTask


async def test_stop_cancels_the_loop_and_waits_for_its_cleanup() -> None:
    events: list[str] = []

    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            events.append("cleaned up")

    task = BackgroundTask("t")
    await task.stop()  # not started: nothing to do
    task.start(loop())
    await asyncio.sleep(0)
    assert task.running
    await task.stop()
    assert events == ["cleaned up"] and not task.running
    task.start(loop())  # a stopped task may start again
    await task.stop()


async def test_a_crash_is_logged_when_it_happens(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = BackgroundTask("tidings-broken")
    task.start(broken())
    await asyncio.sleep(0.01)
    assert not task.running
    assert "tidings-broken stopped: RuntimeError('boom')" in caplog.text
    await task.stop()


async def test_starting_twice_is_refused() -> None:
    task = BackgroundTask("t")
    task.start(asyncio.sleep(10))
    second = asyncio.sleep(10)
    with pytest.raises(RuntimeError, match="already started"):
        task.start(second)
    await task.stop()


async def test_a_cancelled_caller_stays_cancelled() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()

    task = BackgroundTask("t")
    task.start(stubborn())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(task.stop())
    await asyncio.sleep(0.01)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    release.set()
    await asyncio.sleep(0.01)
