"""Overload: far more concurrent clients than the node sustains.

tidings must answer quickly (503 with Retry-After, never a client timeout), lose
nothing it answered 200, and be back to its normal latency within a minute.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from tests.faults.figures import publish
from tests.faults.ledger import Ledger
from tests.faults.load import UNLIMITED, Driver, drain, setup_queue, sink
from tests.processes import serve

UNPACED = 1e9  # a rate no client reaches: the driver runs closed-loop at its concurrency


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _probe(base: str, ledger: Ledger, first: int) -> tuple[float, float]:
    """A short normal-load run: answer (throughput per s, median latency in s)."""
    driver = Driver(base, ledger, 300, UNPACED, concurrency=8)
    driver.first = first
    started = time.monotonic()
    await driver.run()
    took = [t for _, t, status in driver.latencies if status == 200]
    return len(took) / (time.monotonic() - started), statistics.median(took)


@pytest.mark.timeout(180)
async def test_overload_sheds_quickly_and_recovers(database_url: str, tmp_path: Path) -> None:
    ledger = Ledger()
    async with sink(ledger) as rx:
        env = {"TIDINGS_MAX_CONCURRENT_REQUESTS": "64", **UNLIMITED}
        proc, base = await serve(database_url, tmp_path / "serve.log", None, **env)
        try:
            await setup_queue(base, ledger, {"l0": f"{rx}/l0"})
            rate, normal = await _probe(base, ledger, 0)
            burst = Driver(base, ledger, 6000, UNPACED, concurrency=400, timeout_s=10)
            burst.first = 1000
            started = time.monotonic()
            await burst.run()
            burst_s = time.monotonic() - started
            recovered_after, latency = None, 0.0
            deadline = time.monotonic() + 60
            n = 10_000
            while time.monotonic() < deadline:
                _, latency = await _probe(base, ledger, n)
                n += 1000
                if latency <= 2 * normal + 0.02:
                    recovered_after = time.monotonic() - started - burst_s
                    break
            waited = await drain(ledger, ["l0"], 60)
        finally:
            proc.terminate()
    answers = [t for _, t, status in burst.latencies if status]
    statuses = [status for _, _, status in burst.latencies]
    report = ledger.report("l0")
    publish(
        f"[overload {database_url.split(':')[0]}] normal: {rate:.0f} msg/s at concurrency 8,"
        f" median {normal * 1000:.0f} ms; burst: 6000 POSTs at concurrency 400 in {burst_s:.1f} s,"
        f" {statuses.count(200)} x 200, {statuses.count(503)} x 503,"
        f" answer p50 {_p(answers, 0.5) * 1000:.0f} ms p99 {_p(answers, 0.99) * 1000:.0f} ms"
        f" max {max(answers) * 1000:.0f} ms",
        f"  normal latency again {recovered_after} s after the burst"
        f" (median {latency * 1000:.0f} ms); drain {waited:.1f} s",
        f"  {ledger.outcomes()}",
        "  " + report.line(),
    )
    assert statuses.count(503) > 0, "the burst never made tidings shed load"
    assert 0 not in statuses, f"some POSTs got no answer: {ledger.failed}"
    assert not any("without Retry-After" in k for k in ledger.failed), ledger.failed
    assert _p(answers, 0.99) < 5.0  # clients time out at 10 s
    assert recovered_after is not None and recovered_after < 60
    assert report.lost == 0 and report.corrupt == 0 and report.unexpected == 0
