"""kill -9 at random moments under steady load, restart on the same database, repeat;
then drain and count lost, duplicated, unexpected and corrupt deliveries."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

from tests.faults.ledger import Ledger, Report
from tests.faults.load import UNLIMITED, Driver, drain, setup_queue, sink
from tests.processes import Proc, free_port, serve

# Deliveries a killed process may have sent without recording: its in-flight
# attempts (16 per listener by default) plus outcomes still waiting for their
# batched commit. Each kill redelivers about that many per listener.
PER_LISTENER_IN_FLIGHT = 16


@dataclass
class CrashRun:
    backend: str
    messages: int
    kills: int
    seconds: float
    drain_s: float
    outcomes: str
    reports: list[Report]

    def lines(self) -> list[str]:
        head = (
            f"[{self.backend}] {self.messages} messages, {self.kills} kills, "
            f"{self.seconds:.0f} s (drain {self.drain_s:.0f} s); {self.outcomes}"
        )
        return [head, *("  " + r.line() for r in self.reports)]


async def crash_loop(
    database_url: str,
    logs: Path,
    *,
    messages: int,
    kills: int,
    rate: float,
    listeners: int = 1,
    seed: int = 7,
    drain_timeout_s: float = 120,
) -> CrashRun:
    ledger = Ledger()
    names = [f"l{i}" for i in range(listeners)]
    rng = random.Random(seed)
    started = time.monotonic()
    async with sink(ledger) as rx:
        port = free_port()
        proc, base = await serve(database_url, logs / "serve-0.log", port, **UNLIMITED)
        try:
            await setup_queue(base, ledger, {name: f"{rx}/{name}" for name in names})
            driver = Driver(base, ledger, messages, rate)
            load = asyncio.create_task(driver.run())
            proc = await _kill_repeatedly(
                proc, database_url, logs, port, kills, messages / rate, rng
            )
            await load
            waited = await drain(ledger, names, drain_timeout_s)
        finally:
            if proc.popen.poll() is None:
                proc.terminate()
    backend = database_url.split(":", 1)[0]
    reports = [ledger.report(name) for name in names]
    return CrashRun(
        backend, messages, kills, time.monotonic() - started, waited, ledger.outcomes(), reports
    )


async def _kill_repeatedly(
    proc: Proc,
    database_url: str,
    logs: Path,
    port: int,
    kills: int,
    load_s: float,
    rng: random.Random,
) -> Proc:
    """Spread ``kills`` over the load, each at a random moment of its own slice."""
    slice_s = load_s / (kills + 1)
    for k in range(1, kills + 1):
        await asyncio.sleep(rng.uniform(0.3, 1.0) * slice_s)
        proc.kill()
        proc, _ = await serve(database_url, logs / f"serve-{k}.log", port, **UNLIMITED)
    return proc
