"""Processes sharing one SQLite file wake each other after a commit (Linux), the way
LISTEN/NOTIFY does on PostgreSQL, so a separate engine does not wait for its poll."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import BOOTSTRAP_KEY
from tests.processes import Proc, serve, tidings_env
from tests.receivers import receiver
from tidings.storage import wakeups
from tidings.storage.database import Connection
from tidings.storage.sqlite import SqliteDatabase

pytestmark = pytest.mark.skipif(not wakeups.SUPPORTED, reason="abstract sockets are Linux's")


async def test_a_commit_on_one_connection_wakes_a_subscriber_on_another(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    listening = await SqliteDatabase.open(f"sqlite:///{path}")
    other = await SqliteDatabase.open(f"sqlite:///{path}")
    woken = asyncio.Event()
    try:
        await listening.subscribe("deliveries", woken.set)
        await other.write("CREATE TABLE t (x INTEGER)")
        await asyncio.sleep(0.2)
        assert not woken.is_set()  # nothing notified: no wake-up

        async def insert(tx: Connection) -> None:
            await tx.execute("INSERT INTO t VALUES (1)")
            await other.notify(tx, "deliveries")

        await other.run(insert)
        await asyncio.wait_for(woken.wait(), 2)
        # A second subscriber of the same file and channel gets wake-ups of its own;
        # its commits still wake the first.
        other_woken = asyncio.Event()
        await other.subscribe("deliveries", other_woken.set)
        woken.clear()
        await other.run(lambda tx: other.notify(tx, "deliveries"))
        await asyncio.wait_for(woken.wait(), 2)
        other_woken.clear()
        await asyncio.sleep(wakeups.SCAN_EVERY_S)  # ``listening`` lists it again first
        await listening.run(lambda tx: listening.notify(tx, "deliveries"))
        await asyncio.wait_for(other_woken.wait(), 2)
    finally:
        await listening.close()
        await other.close()


# A median of lags against a threshold: load can break it, so on demand only (-m slow).
# The wake-up across connections itself is checked above, event-driven.
@pytest.mark.slow
@pytest.mark.process
@pytest.mark.timeout(120)
async def test_a_worker_on_sqlite_delivers_without_waiting_for_its_poll(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    async with receiver() as rx:
        api, base = await serve(url, tmp_path / "api.log", None, "--no-engine")
        worker = Proc(["worker"], tidings_env(url), tmp_path / "worker.log")
        try:
            async with aiohttp.ClientSession(base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
                async with c.post("/queues", json={"name": "w"}) as r:
                    qid = (await r.json())["queue"]["id"]
                hook, live = rx.url("/hook"), rx.url("/live")
                body = {"name": "rx", "notify_url": hook, "liveness_url": live}
                async with c.post(f"/queues/{qid}/listeners", json=body) as r:
                    assert r.status == 200
                # A first message, delivered by the poll or a wake-up: the worker is up
                # and subscribed however long it took to start on a loaded machine.
                async with c.post(f"/queues/{qid}/messages", json={"data": "first"}) as r:
                    assert r.status == 200
                await rx.wait_for("/hook", 1, timeout_s=60)
                answered = []
                for n in range(8):
                    async with c.post(f"/queues/{qid}/messages", json={"data": str(n)}) as r:
                        assert r.status == 200
                        answered.append(time.monotonic())
                    await asyncio.sleep(0.35 + 0.1 * n)  # not in step with the 1 s poll
                await asyncio.sleep(1.5)
        finally:
            worker.terminate()
            api.terminate()
    arrived = [a.at for a in rx.on("/hook")[1:]]
    assert len(arrived) == len(answered)
    lags = [at - sent for at, sent in zip(arrived, answered, strict=True)]
    # With the 1 s poll alone the median would be about half a second.
    assert statistics.median(lags) < 0.25, lags


# Any interpreter that user may run; the test's own may live in a directory it cannot.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


@pytest.mark.skipif(os.geteuid() != 0, reason="sending as another user needs root")
async def test_wake_ups_from_another_user_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    listening = await SqliteDatabase.open(f"sqlite:///{path}")
    woken = asyncio.Event()
    try:
        await listening.subscribe("deliveries", woken.set)
        [name] = wakeups.receivers(wakeups.address(str(path), "deliveries"))
        send = (
            f"import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'', {name!r})"
        )
        for uid in (65534, os.getuid()):  # nobody, then ourselves
            proc = await asyncio.create_subprocess_exec(
                SYSTEM_PYTHON, "-c", send, preexec_fn=lambda uid=uid: os.setuid(uid)
            )
            assert await proc.wait() == 0
            if uid == os.getuid():
                await asyncio.wait_for(woken.wait(), 10)
            else:
                await asyncio.sleep(0.3)  # an absence: load can only hide a wake-up
                assert not woken.is_set()
    finally:
        await listening.close()
