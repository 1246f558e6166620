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
from tidings.config import Settings

# What a kill can cost in duplicates: deliveries sent but whose outcome was not
# written yet. The engine keeps those (attempts in flight plus outcomes awaiting their
# batched commit) within its in-flight window, so each kill redelivers at most that
# many, over all listeners; typically about one listener's concurrency (16) each.
IN_FLIGHT_WINDOW = Settings().max_in_flight
# After a lease runs out: the next claim (poll: 1 s), the attempt and its arrival.
SETTLE_S = 3.0


@dataclass
class CrashRun:
    backend: str
    messages: int
    kills: int
    seconds: float
    drain_s: float
    outcomes: str
    reports: list[Report]
    lease_s: float | None = None

    def lines(self) -> list[str]:
        lease = "default lease" if self.lease_s is None else f"lease {self.lease_s:g} s"
        head = (
            f"[{self.backend}] {self.messages} messages, {self.kills} kills, {lease}, "
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
    lease_s: float | None = None,
) -> CrashRun:
    ledger = Ledger()
    names = [f"l{i}" for i in range(listeners)]
    rng = random.Random(seed)
    env = dict(UNLIMITED)
    if lease_s is not None:  # deliveries a killed process held are retried this soon
        env["TIDINGS_DELIVERY_LEASE"] = str(lease_s)
    started = time.monotonic()
    async with sink(ledger) as rx:
        port = free_port()
        proc, base = await serve(database_url, logs / "serve-0.log", port, **env)
        try:
            await setup_queue(base, ledger, {name: f"{rx}/{name}" for name in names})
            driver = Driver(base, ledger, messages, rate)
            load = asyncio.create_task(driver.run())
            proc, last_kill = await _kill_repeatedly(
                proc, database_url, logs, port, kills, messages / rate, rng, env
            )
            await load
            waited = await drain(ledger, names, drain_timeout_s)
            # The last kill's redeliveries come when its leases run out; the drain can
            # end before (every message arrived once), so wait for them too: the
            # duplicate count is then complete.
            lease = 30.0 if lease_s is None else lease_s  # the default at a 2 s timeout
            settle = last_kill + lease + SETTLE_S - time.monotonic()
            if settle > 0:
                await asyncio.sleep(settle)
        finally:
            if proc.popen.poll() is None:
                proc.terminate()
    backend = database_url.split(":", 1)[0]
    reports = [ledger.report(name) for name in names]
    seconds = time.monotonic() - started
    return CrashRun(backend, messages, kills, seconds, waited, ledger.outcomes(), reports, lease_s)


async def _kill_repeatedly(
    proc: Proc,
    database_url: str,
    logs: Path,
    port: int,
    kills: int,
    load_s: float,
    rng: random.Random,
    env: dict[str, str],
) -> tuple[Proc, float]:
    """Spread ``kills`` over the load, each at a random moment of its own slice;
    answer the running process and when the last kill was."""
    slice_s = load_s / (kills + 1)
    killed_at = time.monotonic()
    for k in range(1, kills + 1):
        await asyncio.sleep(rng.uniform(0.3, 1.0) * slice_s)
        proc.kill()
        killed_at = time.monotonic()
        proc, _ = await serve(database_url, logs / f"serve-{k}.log", port, **env)
    return proc, killed_at
