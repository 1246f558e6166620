"""The threads SQLite's statements run on (storage/sqlite.py ``_Threads``): answers and
errors come back to the awaiting task, and a call whose caller gave up before a thread
took it never runs (a cancelled request must not write after all)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tidings.storage.sqlite import _Threads


async def test_a_call_answers_its_result_or_its_error() -> None:
    threads = _Threads(2, "test")
    try:
        assert await threads.call(lambda: threading.current_thread().name) in {"test_0", "test_1"}

        def fails() -> None:
            raise ValueError("no")

        with pytest.raises(ValueError, match="no"):
            await threads.call(fails)
    finally:
        threads.close()


async def test_a_call_cancelled_before_it_started_never_runs() -> None:
    threads = _Threads(1, "test")
    release = threading.Event()
    ran: list[str] = []
    try:
        first = asyncio.ensure_future(threads.call(lambda: release.wait(5)))
        second = asyncio.ensure_future(threads.call(lambda: ran.append("second")))
        await asyncio.sleep(0.05)  # the one thread is busy with the first call
        second.cancel()
        await asyncio.sleep(0)
        release.set()
        assert await first is True
        assert await threads.call(lambda: "third") == "third"
        assert ran == []
        assert second.cancelled()
    finally:
        threads.close()
