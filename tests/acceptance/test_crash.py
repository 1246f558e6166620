"""Crash safety: kill -9 mid-stream, restart on the same database, nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BOOTSTRAP_KEY
from tests.processes import Proc, free_port, serve
from tests.receivers import Receiver, receiver

MESSAGES = 1000
KILL_AFTER = 300


async def _setup(base: str, rx: Receiver) -> str:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
        qid: str = (await c.post("/queues", json={"name": "crash"})).json()["queue"]["id"]
        for name in ("a", "b"):
            r = await c.post(
                f"/queues/{qid}/listeners",
                json={
                    "name": name,
                    "notify_url": rx.url(f"/{name}"),
                    "liveness_url": rx.url("/live"),
                },
            )
            assert r.status_code == 200
    return qid


async def _blast(base: str, qid: str, proc: Proc) -> set[str]:
    """Post MESSAGES concurrently; SIGKILL the server once KILL_AFTER were acknowledged."""
    acked: set[str] = set()
    gate = asyncio.Semaphore(64)
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}, limits=limits, timeout=10
    ) as client:

        async def one(n: int) -> None:
            async with gate:
                try:
                    r = await client.post(f"/queues/{qid}/messages", json={"data": str(n)})
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    acked.add(r.json()["message"]["id"])
                if len(acked) == KILL_AFTER and proc.popen.poll() is None:
                    proc.kill()

        await asyncio.gather(*(one(n) for n in range(MESSAGES)))
    return acked


SHORT_LEASE = {"TIDINGS_DELIVERY_LEASE": "10"}


async def _crash_and_check(database_url: str, tmp_path: Path) -> None:
    async with receiver() as rx:
        port = free_port()
        # The killed server's claims expire after the lease: 10 s instead of 30.
        proc, base = await serve(database_url, tmp_path / "first.log", port, **SHORT_LEASE)
        qid = await _setup(base, rx)
        acked = await _blast(base, qid, proc)
        assert proc.popen.poll() is not None, "the server was never killed"
        assert len(acked) >= KILL_AFTER
        again, _ = await serve(database_url, tmp_path / "second.log", port, **SHORT_LEASE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = {p: {a.headers["webhook-id"] for a in rx.on(p)} for p in ("/a", "/b")}
                if all(acked <= ids for ids in got.values()):
                    break
                await asyncio.sleep(0.1)
            for path in ("/a", "/b"):
                arrived = [a.headers["webhook-id"] for a in rx.on(path)]
                lost = acked - set(arrived)
                duplicates = len(arrived) - len(set(arrived))
                print(
                    f"{database_url.split(':')[0]} {path}: acknowledged={len(acked)} "
                    f"arrived={len(set(arrived))} lost={len(lost)} duplicates={duplicates}"
                )
                assert not lost, f"{len(lost)} acknowledged messages never reached {path}"
        finally:
            again.terminate()


async def test_sigkill_mid_stream_loses_nothing(database_url: str, tmp_path: Path) -> None:
    await _crash_and_check(database_url, tmp_path)


# Deliveries are in flight when tidings goes away; the test receiver may then drop a
# half-open connection during its own teardown, which is not what this test checks.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_sigterm_exits_within_ten_seconds(database_url: str, tmp_path: Path) -> None:
    async with receiver() as rx:
        proc, base = await serve(database_url, tmp_path / "serve.log")
        qid = await _setup(base, rx)
        async with httpx.AsyncClient(base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
            for n in range(50):
                await c.post(f"/queues/{qid}/messages", json={"data": str(n)})
        assert proc.terminate() < 10
