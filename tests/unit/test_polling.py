"""The one poll-with-a-deadline helper the tests wait with."""

from __future__ import annotations

import pytest

from tests.polling import until


async def test_until_answers_once_the_condition_holds() -> None:
    calls = 0

    def third_time() -> bool:
        nonlocal calls
        calls += 1
        return calls == 3

    assert await until(third_time, step_s=0) >= 0
    assert calls == 3

    async def at_once() -> bool:
        return True

    assert await until(at_once) < 1


async def test_until_fails_past_its_deadline_with_the_message() -> None:
    with pytest.raises(AssertionError, match="still 0"):
        await until(lambda: False, 0.05, step_s=0.01, message=lambda: "still 0")
