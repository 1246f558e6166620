"""Crash loops on SQLite and PostgreSQL: nothing answered 200 is ever lost.

CI tier: 10,000 messages across 5 kills per backend. Long tier (``-m slow``):
100,000 messages to 2 listeners across 20 kills per backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.crashloop import PER_LISTENER_IN_FLIGHT, CrashRun, crash_loop
from tests.faults.figures import publish


def _check(run: CrashRun) -> None:
    per_kill = ", ".join(f"{r.duplicated / run.kills:.1f}" for r in run.reports)
    publish(
        *run.lines(),
        f"  duplicates per kill per listener: {per_kill} (window: {PER_LISTENER_IN_FLIGHT}"
        " in flight per listener + outcomes awaiting their batched commit)",
    )
    for report in run.reports:
        assert report.acked > 0
        assert report.lost == 0, report.line()
        assert report.unexpected == 0, report.line()
        assert report.corrupt == 0, report.line()


@pytest.mark.timeout(240)
async def test_crash_loop_loses_nothing(database_url: str, tmp_path: Path) -> None:
    run = await crash_loop(database_url, tmp_path, messages=10_000, kills=5, rate=500)
    _check(run)


@pytest.mark.slow
@pytest.mark.timeout(3600)
async def test_long_crash_loop_loses_nothing(database_url: str, tmp_path: Path) -> None:
    # 200 msg/s: two listeners need 400 deliveries/s, about what one engine sustains
    # here, so the drain after the last kill stays short.
    run = await crash_loop(
        database_url,
        tmp_path,
        messages=100_000,
        kills=20,
        rate=200,
        listeners=2,
        seed=11,
        drain_timeout_s=1800,
    )
    _check(run)
