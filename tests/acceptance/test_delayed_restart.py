"""A delayed message survives kill -9 and a restart, and goes out on time (SPEC §9)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import BOOTSTRAP_KEY
from tests.processes import free_port, serve, wait_engine
from tests.receivers import receiver

# Longer than a kill and a restart on a busy machine: 6 s was not, on a 2-vCPU VM
# with the process tests running beside it (2026-12-07).
DELAY_S = 10.0
_WALL_OFFSET_S = time.time() - time.monotonic()


async def test_a_delayed_message_survives_a_restart_and_is_on_time(
    database_url: str, tmp_path: Path
) -> None:
    headers = {"X-API-KEY": BOOTSTRAP_KEY}
    port = free_port()
    async with receiver() as rx:
        proc, base = await serve(database_url, tmp_path / "first.log", port)
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            qid = (await client.post("/queues", json={"name": "later"})).json()["queue"]["id"]
            listener = {"name": "l", "notify_url": rx.url("/hook"), "liveness_url": rx.url("/up")}
            assert (await client.post(f"/queues/{qid}/listeners", json=listener)).status_code == 200
            posted = await client.post(
                f"/queues/{qid}/messages", json={"data": "x", "delay": DELAY_S}
            )
            mid = posted.json()["message"]["id"]
            got = (await client.get(f"/queues/{qid}/messages/{mid}")).json()["message"]
        proc.kill()
        again, _ = await serve(database_url, tmp_path / "second.log", port)
        try:
            # `serve` answers /health while its engine child is still starting: on a
            # busy machine that start alone once took the message past its time.
            await wait_engine(again)
            late_ms = time.time() * 1000 - got["deliver_at"]
            assert late_ms < 0, f"the restart took {late_ms:.0f} ms longer than the delay"
            [arrival] = await rx.wait_for("/hook", 1, timeout_s=DELAY_S + 10)
            assert arrival.headers["webhook-id"] == mid
            arrived_ms = (arrival.at + _WALL_OFFSET_S) * 1000
            assert got["deliver_at"] - 50 <= arrived_ms <= got["deliver_at"] + 500, (
                arrived_ms - got["deliver_at"]
            )
        finally:
            again.terminate()
