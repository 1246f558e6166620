"""Receivers that misbehave at the TCP and HTTP level, through the fault proxy.

Each fault must end as a failed attempt within the delivery deadline (so its
messages end ``missed`` after the short retry schedule), memory must stay flat,
and a healthy listener of the same queue must not slow down.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.faults.figures import publish
from tests.faults.ledger import Ledger
from tests.faults.load import HEADERS, UNLIMITED, Driver, drain, setup_queue, sink
from tests.faults.proxy import FaultProxy
from tests.polling import until
from tests.processes import serve, wait_engine

DEADLINE_S = 2.0
MESSAGES = 30
# name -> (mode, delay): every one of these must fail; "slow" must still succeed.
FAULTS = {
    "late": ("latency", 5.0),
    "blackhole": ("blackhole", 0.0),
    "reset": ("reset", 0.0),
    "drip": ("drip", 0.2),
    "huge": ("huge", 0.0),
    "bomb": ("bomb", 0.0),
}


async def _missed_counts(base: str, queue_id: str, ids: dict[str, str]) -> dict[str, int]:
    counts = {}
    async with aiohttp.ClientSession(base, headers=HEADERS) as c:
        for name, lid in ids.items():
            async with c.get(f"/queues/{queue_id}/listeners/{lid}") as r:
                counts[name] = (await r.json())["listener"]["messages"]["missed_count"]
    return counts


async def _wait_missed(base: str, queue_id: str, ids: dict[str, str], timeout_s: float) -> None:
    counts: dict[str, int] = {}

    async def all_missed() -> bool:
        counts.update(await _missed_counts(base, queue_id, ids))
        return counts == dict.fromkeys(ids, MESSAGES)

    await until(all_missed, timeout_s, step_s=0.5, message=lambda: f"not all missed: {counts}")


@pytest.mark.timeout(120)
async def test_receiver_faults_fail_within_the_deadline(tmp_path: Path) -> None:
    ledger = Ledger()
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    async with sink(ledger) as rx:
        upstream = ("127.0.0.1", int(rx.rsplit(":", 1)[1]))
        proxies = {
            name: await FaultProxy(mode, upstream, delay).start()
            for name, (mode, delay) in FAULTS.items()
        }
        slow = await FaultProxy("latency", upstream, 0.5).start()
        env = {"TIDINGS_RETRY_SCHEDULE": "0.2,0.2", "TIDINGS_DELIVERY_TIMEOUT": str(DEADLINE_S)}
        # Every attempt must reach the fault, so the breaker (which would hold the
        # faulty listeners' deliveries after 20 failures, SPEC §11) stays closed here.
        env["TIDINGS_BREAKER_THRESHOLD"] = str(10 * MESSAGES)
        env |= UNLIMITED
        proc, base = await serve(url, tmp_path / "serve.log", None, **env)
        try:
            await wait_engine(proc)
            notify = {name: f"{p.url}/{name}" for name, p in proxies.items()}
            notify |= {"healthy": f"{rx}/healthy", "slow": f"{slow.url}/slow"}
            ids = await setup_queue(base, ledger, notify, liveness_url=f"{rx}/live")
            rss_before = proc.rss_mb()
            await Driver(base, ledger, MESSAGES, rate=10).run()
            await _wait_missed(base, ledger.queue_id, {n: ids[n] for n in FAULTS}, 90)
            await drain(ledger, ["healthy", "slow"], 10)
            rss_after = proc.rss_mb()
        finally:
            proc.terminate()
            for proxy in [*proxies.values(), slow]:
                await proxy.stop()
    held = {name: max(p.held_s(), default=0.0) for name, p in proxies.items()}
    healthy = ledger.delivery_latencies("healthy")
    p99 = healthy[int(len(healthy) * 0.99) - 1]
    publish(
        f"[receiver faults] deadline {DEADLINE_S:g} s, {MESSAGES} messages x 3 attempts each:",
        "  longest connection held per fault: "
        + ", ".join(f"{n}={s:.2f}s" for n, s in held.items()),
        f"  all {len(FAULTS)} faulty listeners: {MESSAGES}/{MESSAGES} missed;"
        f" healthy listener p99 delivery latency {p99 * 1000:.0f} ms;"
        f" RSS {rss_before:.0f} -> {rss_after:.0f} MB",
        "  " + ledger.report("healthy").line(),
        "  " + ledger.report("slow").line(),
    )
    assert max(held.values()) < DEADLINE_S + 1.5, held
    assert ledger.report("healthy").lost == 0 and ledger.report("slow").lost == 0
    # Waiting behind a faulty listener would cost at least one deadline.
    assert p99 < DEADLINE_S * 0.75, f"the healthy listener slowed down: p99 {p99:.2f} s"
    assert rss_after - rss_before < 50, f"memory grew {rss_before:.0f} -> {rss_after:.0f} MB"
