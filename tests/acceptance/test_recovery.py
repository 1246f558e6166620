"""Prompt recovery (SPEC §5): an engine's death is detected, not waited out.

A delivery is in flight when ``tidings serve`` is killed; with the default lease
(30 s here) the restarted server must attempt it within 5 s of answering ``/health``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.conftest import BOOTSTRAP_KEY
from tests.processes import serve
from tests.receivers import Answer, receiver

# A 10 s attempt timeout keeps the held attempt in flight; the lease is the default
# max(30 s, 3 x timeout) = 30 s.
SLOW_ATTEMPTS = {"TIDINGS_DELIVERY_TIMEOUT": "10"}
BOUND_S = 5.0


async def test_a_restarted_server_attempts_the_dead_ones_deliveries_at_once(
    database_url: str, tmp_path: Path
) -> None:
    held = asyncio.Event()

    def hook(_path: str, earlier: int) -> Answer:
        if earlier == 0:
            return Answer(500)
        if earlier == 1:
            return Answer(200, hold=held)  # the retry, in flight when the server dies
        return Answer(200)

    async with receiver(hook=hook) as rx:
        first, base = await serve(database_url, tmp_path / "first.log", None, **SLOW_ATTEMPTS)
        async with httpx.AsyncClient(base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
            qid = (await c.post("/queues", json={"name": "q"})).json()["queue"]["id"]
            body = {"name": "l", "notify_url": rx.url("/hook"), "liveness_url": rx.url("/live")}
            assert (await c.post(f"/queues/{qid}/listeners", json=body)).status_code == 200
            posted = await c.post(f"/queues/{qid}/messages", json={"data": "x"})
            assert posted.status_code == 200
        await rx.wait_for("/hook", 2, timeout_s=30)
        first.kill()
        restarted = time.monotonic()
        # A new port: a port freed by the kill may be handed to another test's server.
        again, _ = await serve(database_url, tmp_path / "second.log", None, **SLOW_ATTEMPTS)
        healthy = time.monotonic()
        try:
            arrivals = await rx.wait_for("/hook", 3, timeout_s=40)
        finally:
            held.set()
            again.terminate()
    took = arrivals[2].at - healthy
    print(
        f"{database_url.split(':')[0]}: attempted {arrivals[2].at - restarted:.2f} s after the"
        f" restart, {took:+.2f} s from /health answering 200 ({healthy - restarted:.2f} s)"
    )
    assert arrivals[2].headers["webhook-id"] == posted.json()["message"]["id"]
    assert took < BOUND_S, f"the retry came {took:.1f} s after the restart"
