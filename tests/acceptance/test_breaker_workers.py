"""The circuit breaker across two `tidings worker` processes on one PostgreSQL (SPEC
§11): its state lives in the database, so a failing listener gets one trial at a
time in all, not one per engine."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BOOTSTRAP_KEY
from tests.polling import until
from tests.processes import Proc, serve, tidings_env, wait_engine
from tests.receivers import Answer, receiver

COOLDOWN_S = 0.5
BREAKER = {"TIDINGS_BREAKER_THRESHOLD": "3", "TIDINGS_BREAKER_COOLDOWN": str(COOLDOWN_S)}


@pytest.mark.timeout(120)
async def test_two_workers_share_one_breaker(pg_database: str, tmp_path: Path) -> None:
    up = {"now": False}

    def hook(_path: str, _n: int) -> Answer:
        return Answer() if up["now"] else Answer(status=500)

    async with receiver(hook=hook) as rx:
        api, base = await serve(pg_database, tmp_path / "api.log", None, "--no-engine")
        env = tidings_env(pg_database, **BREAKER)
        workers = [Proc(["worker"], env, tmp_path / f"w{i}.log") for i in range(2)]
        try:
            for w in workers:
                await wait_engine(w)
            async with httpx.AsyncClient(base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
                qid = (await c.post("/queues", json={"name": "b"})).json()["queue"]["id"]
                r = await c.post(
                    f"/queues/{qid}/listeners",
                    json={
                        "name": "rx",
                        "notify_url": rx.url("/hook"),
                        "liveness_url": rx.url("/live"),
                    },
                )
                lid = r.json()["listener"]["id"]
                mids = [
                    (await c.post(f"/queues/{qid}/messages", json={"data": str(n)})).json()[
                        "message"
                    ]["id"]
                    for n in range(20)
                ]

                async def health() -> dict[str, Any]:
                    got = await c.get(f"/queues/{qid}/listeners/{lid}")
                    found: dict[str, Any] = got.json()["listener"]
                    return found

                async def failing() -> bool:
                    return (await health())["health"]["state"] == "failing"

                await until(failing, 20)
                await asyncio.sleep(COOLDOWN_S)  # what was in flight at the trip lands
                tripped = len(rx.on("/hook"))
                await asyncio.sleep(4.0)  # cool-downs of 0.5, 1 and 2 s: three trials
                trials = [a.at for a in rx.on("/hook")[tripped:]]
                # One engine's breaker per engine would have sent two at each step.
                gaps = [b - a for a, b in itertools.pairwise(trials)]
                print(f"two workers, failing listener: trials at gaps {gaps}")
                assert 1 <= len(trials) <= 4, trials
                assert all(g >= COOLDOWN_S * 0.8 for g in gaps), gaps
                up["now"] = True

                async def all_delivered() -> bool:
                    for mid in mids:
                        m = (await c.get(f"/queues/{qid}/messages/{mid}")).json()["message"]
                        if m["deliveries"][0]["state"] != "delivered":
                            return False
                    return True

                await until(all_delivered, 30, step_s=0.2)
                assert (await health())["messages"]["missed_count"] == 0
            for w in workers:
                assert w.terminate() < 10
        finally:
            for w in workers:
                if w.popen.poll() is None:
                    w.kill()
            api.terminate()
