"""Crash loops on SQLite and PostgreSQL: nothing answered 200 is ever lost.

CI tier: 10,000 messages across 5 kills per backend. Long tier (``-m slow``):
100,000 messages to 2 listeners across 20 kills per backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.crashloop import IN_FLIGHT_WINDOW, CrashRun, crash_loop
from tests.faults.figures import publish


def _check(run: CrashRun) -> None:
    per_kill = ", ".join(f"{r.duplicated / run.kills:.1f}" for r in run.reports)
    duplicated = sum(r.duplicated for r in run.reports)
    bound = run.kills * IN_FLIGHT_WINDOW
    publish(
        *run.lines(),
        f"  duplicates per kill per listener: {per_kill}; {duplicated} in all, bound"
        f" {bound} ({run.kills} kills x in-flight window {IN_FLIGHT_WINDOW}: attempts"
        " in flight + outcomes awaiting their batched commit)",
    )
    for report in run.reports:
        assert report.acked > 0
        assert report.lost == 0, report.line()
        assert report.unexpected == 0, report.line()
        assert report.corrupt == 0, report.line()
    # Beyond the bound, deliveries were sent again without a kill: leases ran out
    # while their outcomes waited to be written (recording lagging, no backpressure).
    assert duplicated <= bound, f"{duplicated} duplicates, bound {bound}"


@pytest.mark.timeout(240)
async def test_crash_loop_loses_nothing(database_url: str, tmp_path: Path) -> None:
    # A 10 s lease (TIDINGS_DELIVERY_LEASE; the server's delivery timeout is 2 s)
    # instead of the default 30 s: the deliveries a killed process held are retried
    # sooner, so the drain after the last kill is short. The long tier keeps 30 s.
    run = await crash_loop(database_url, tmp_path, messages=10_000, kills=5, rate=500, lease_s=10)
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
