"""PostgreSQL stopped abruptly under load (``pg_ctl stop -m immediate``) for several
seconds, then started again, on a private cluster. While it is down the API answers
503, never 200; afterwards delivery resumes by itself, tidings never restarted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.faults.figures import publish
from tests.faults.ledger import Ledger
from tests.faults.load import UNLIMITED, Driver, drain, setup_queue, sink
from tests.faults.pgcluster import private_cluster
from tests.processes import serve

DOWN_S = 5.0


async def _health_while(base: str, until: asyncio.Event) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession(base) as session:
        while not until.is_set():
            async with session.get("/health") as r:
                statuses.append(r.status)
            await asyncio.sleep(0.2)
    return statuses


@pytest.mark.timeout(150)
async def test_postgres_outage_answers_503_and_recovers(tmp_path: Path) -> None:
    with private_cluster() as cluster:
        ledger = Ledger()
        async with sink(ledger) as rx:
            proc, base = await serve(cluster.url, tmp_path / "serve.log", None, **UNLIMITED)
            try:
                await setup_queue(base, ledger, {"l0": f"{rx}/l0"})
                driver = Driver(base, ledger, total=3000, rate=200, timeout_s=15)
                load = asyncio.create_task(driver.run())
                await asyncio.sleep(3)  # load runs against a healthy database first
                await asyncio.to_thread(cluster.stop, "immediate")
                down_from = time.monotonic()
                back = asyncio.Event()
                health = asyncio.create_task(_health_while(base, back))
                await asyncio.sleep(DOWN_S)
                down_until = time.monotonic()
                await asyncio.to_thread(cluster.start)
                back.set()
                await load
                waited = await drain(ledger, ["l0"], 60)
                assert proc.popen.poll() is None, "tidings died during the outage"
            finally:
                proc.terminate()
        during = [s for began, took, s in driver.latencies if down_from < began < down_until]
        answered_200 = [s for b, t, s in driver.latencies if down_from < b and b + t < down_until]
        statuses = await health
        report = ledger.report("l0")
        publish(
            f"[postgres outage {DOWN_S:g} s] {ledger.outcomes()}",
            f"  during the outage: {len(during)} POSTs, statuses {sorted(set(during))};"
            f" /health {sorted(set(statuses))}; drain after restart {waited:.1f} s",
            "  " + report.line(),
        )
        assert 200 not in answered_200, "a POST answered 200 while the database was down"
        assert 503 in during
        assert statuses and 200 not in statuses[:-1]
        assert report.lost == 0 and report.corrupt == 0 and report.unexpected == 0
