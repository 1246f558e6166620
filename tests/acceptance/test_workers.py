"""Several `tidings worker` processes share one PostgreSQL without losing anything."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import BOOTSTRAP_KEY
from tests.processes import Proc, serve, tidings_env
from tests.receivers import receiver

MESSAGES = 5000


@pytest.fixture
def pg_database(pg_url: str, database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share PostgreSQL; SQLite runs one engine per file")
    return database_url


@pytest.mark.timeout(240)
async def test_two_workers_deliver_everything_once_or_more(
    pg_database: str, tmp_path: Path
) -> None:
    async with receiver() as rx:
        api, base = await serve(pg_database, tmp_path / "api.log", None, "--no-engine")
        workers = [
            Proc(["worker"], tidings_env(pg_database), tmp_path / f"w{i}.log") for i in range(2)
        ]
        try:
            # aiohttp: httpx is too slow a client to post thousands of messages here.
            async with aiohttp.ClientSession(base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
                async with c.post("/queues", json={"name": "w"}) as r:
                    qid = (await r.json())["queue"]["id"]
                async with c.post(
                    f"/queues/{qid}/listeners",
                    json={
                        "name": "rx",
                        "notify_url": rx.url("/hook"),
                        "liveness_url": rx.url("/live"),
                    },
                ) as r:
                    assert r.status == 200
                gate = asyncio.Semaphore(32)

                async def one(n: int) -> str:
                    async with gate, c.post(f"/queues/{qid}/messages", json={"data": str(n)}) as r:
                        assert r.status == 200
                        message_id: str = (await r.json())["message"]["id"]
                        return message_id

                started = time.monotonic()
                acked = set(await asyncio.gather(*(one(n) for n in range(MESSAGES))))
                posted = time.monotonic()
            deadline = time.monotonic() + 90
            while {a.headers["webhook-id"] for a in rx.on("/hook")} < acked:
                assert time.monotonic() < deadline, "not every message arrived in time"
                await asyncio.sleep(0.1)
            arrived = [a.headers["webhook-id"] for a in rx.on("/hook")]
            twice = len(arrived) - len(set(arrived))
            print(
                f"posting took {posted - started:.1f} s, the rest {time.monotonic() - posted:.1f} s"
            )
            print(
                f"two workers: acknowledged={len(acked)} arrived={len(set(arrived))} "
                f"lost=0 delivered_twice={twice}"
            )
            assert len(acked) == MESSAGES
            for w in workers:
                assert w.terminate() < 10
        finally:
            for w in workers:
                if w.popen.poll() is None:
                    w.kill()
            api.terminate()
