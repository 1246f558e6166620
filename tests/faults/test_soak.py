"""The soak (``-m slow``): steady load for ``TIDINGS_SOAK_SECONDS`` (default 1800)
with a kill -9 every ``TIDINGS_SOAK_KILL_EVERY`` seconds (default 180), watching
the server's RSS, open files and database size; then drain and check the ledger."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.faults.figures import publish
from tests.faults.ledger import Ledger
from tests.faults.load import UNLIMITED, Driver, drain, setup_queue, sink
from tests.processes import Proc, free_port, serve
from tidings.config import sqlite_path

SECONDS = float(os.environ.get("TIDINGS_SOAK_SECONDS", "1800"))
KILL_EVERY = float(os.environ.get("TIDINGS_SOAK_KILL_EVERY", "180"))
RATE = 100.0


@dataclass
class Sample:
    at: float
    incarnation: int
    rss_mb: float
    open_files: int
    db_mb: float


async def _db_mb(url: str) -> float:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20
    conn = await asyncpg.connect(url)
    try:
        size: int = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    return size / 2**20


class Watch:
    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[Sample] = []

    async def sample(self, proc: Proc, incarnation: int) -> None:
        rss, fds = proc.rss_mb(), proc.open_files()
        db = await _db_mb(self.url)
        self.samples.append(Sample(time.monotonic(), incarnation, rss, fds, db))

    def summary(self) -> list[str]:
        lines = []
        for k in sorted({s.incarnation for s in self.samples}):
            mine = [s for s in self.samples if s.incarnation == k]
            lines.append(
                f"  incarnation {k}: RSS {mine[0].rss_mb:.0f}->{mine[-1].rss_mb:.0f} MB"
                f" (max {max(s.rss_mb for s in mine):.0f}), open files"
                f" {mine[0].open_files}->{mine[-1].open_files}"
                f" (max {max(s.open_files for s in mine)}),"
                f" database {mine[0].db_mb:.1f}->{mine[-1].db_mb:.1f} MB"
            )
        return lines


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 600)
async def test_soak_with_kills(database_url: str, tmp_path: Path) -> None:
    ledger = Ledger()
    watch = Watch(database_url)
    async with sink(ledger) as rx:
        port = free_port()
        proc, base = await serve(database_url, tmp_path / "serve-0.log", port, **UNLIMITED)
        try:
            await setup_queue(base, ledger, {"l0": f"{rx}/l0"})
            load = asyncio.create_task(Driver(base, ledger, int(SECONDS * RATE), RATE).run())
            incarnation, next_kill = 0, time.monotonic() + KILL_EVERY
            while not load.done():
                await watch.sample(proc, incarnation)
                if time.monotonic() >= next_kill:
                    proc.kill()
                    incarnation += 1
                    proc, _ = await serve(
                        database_url, tmp_path / f"serve-{incarnation}.log", port, **UNLIMITED
                    )
                    next_kill += KILL_EVERY
                await asyncio.wait({load}, timeout=5)
            await load
            waited = await drain(ledger, ["l0"], 120)
            await watch.sample(proc, incarnation)
        finally:
            proc.terminate()
    report = ledger.report("l0")
    per_message = watch.samples[-1].db_mb * 2**20 / max(1, len(ledger.sent))
    publish(
        f"[soak {database_url.split(':')[0]}] {SECONDS:.0f} s at {RATE:.0f} msg/s,"
        f" kill -9 every {KILL_EVERY:.0f} s ({incarnation} kills), drain {waited:.0f} s;"
        f" {ledger.outcomes()}; database {per_message:.0f} bytes per message",
        *watch.summary(),
        "  " + report.line(),
    )
    assert report.lost == 0 and report.corrupt == 0 and report.unexpected == 0
    assert max(s.rss_mb for s in watch.samples) < 512
    assert max(s.open_files for s in watch.samples) < 256
