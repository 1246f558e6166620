"""`tidings serve` runs its delivery engine in a supervised child process: restarted
when it dies, stopped with the server, its metrics on the server's one /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import BOOTSTRAP_KEY
from tests.polling import until
from tests.processes import Proc, serve
from tests.receivers import Receiver, receiver

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]
TOKEN = "metrics-token-0123456789"


def engine_children(proc: Proc) -> list[int]:
    found = []
    for pid in proc.tree():
        with contextlib.suppress(OSError):
            if b"tidings.runtime.child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def listening_queue(c: aiohttp.ClientSession, rx: Receiver) -> str:
    async with c.post("/queues", json={"name": "q"}) as r:
        qid: str = (await r.json())["queue"]["id"]
    body = {"name": "rx", "notify_url": rx.url("/hook"), "liveness_url": rx.url("/live")}
    async with c.post(f"/queues/{qid}/listeners", json=body) as r:
        assert r.status == 200
    return qid


async def post(c: aiohttp.ClientSession, qid: str, data: str) -> None:
    async with c.post(f"/queues/{qid}/messages", json={"data": data}) as r:
        assert r.status == 200


async def test_a_killed_engine_is_restarted_and_delivery_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    async with receiver() as rx:
        server, base = await serve(url, tmp_path / "serve.log")
        try:
            async with aiohttp.ClientSession(base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
                qid = await listening_queue(c, rx)
                await post(c, qid, "before")
                await rx.wait_for("/hook", 1, timeout_s=30)
                [first] = engine_children(server)
                os.kill(first, signal.SIGKILL)
                await until(
                    lambda: [p for p in engine_children(server) if p != first and alive(p)],
                    30,
                    step_s=0.05,
                    message="the engine was not restarted",
                )
                await post(c, qid, "after")
                arrived = await rx.wait_for("/hook", 2, timeout_s=30)
                assert arrived[-1].json()["data"] == "after"
        finally:
            server.terminate()
    assert "restarting" in (tmp_path / "serve.log").read_text()


async def test_sigterm_to_the_server_stops_the_engine_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    server, _ = await serve(url, tmp_path / "serve.log")
    tree = server.tree()
    assert engine_children(server)  # the engine runs in a process of its own
    server.terminate()
    await until(
        lambda: not any(alive(p) for p in tree),
        15,
        step_s=0.05,
        message=lambda: f"still running: {[p for p in tree if alive(p)]}",
    )


async def test_single_process_runs_no_engine_child_and_still_delivers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    async with receiver() as rx:
        server, base = await serve(url, tmp_path / "serve.log", None, "--single-process")
        try:
            assert not engine_children(server)
            async with aiohttp.ClientSession(base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
                await post(c, await listening_queue(c, rx), "one")
                await rx.wait_for("/hook", 1, timeout_s=30)
        finally:
            server.terminate()


async def test_metrics_show_the_series_of_both_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    async with receiver() as rx:
        server, base = await serve(url, tmp_path / "serve.log", None, TIDINGS_METRICS_TOKEN=TOKEN)
        try:
            async with aiohttp.ClientSession(base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
                await post(c, await listening_queue(c, rx), "one")
                await rx.wait_for("/hook", 1, timeout_s=30)
                scrape = {"Authorization": f"Bearer {TOKEN}"}

                async def page() -> str:
                    async with c.get("/metrics", headers=scrape) as r:
                        assert r.status == 200
                        return await r.text()

                # The engine's attempt is recorded once the receiver has answered.
                text = ""
                for _ in range(100):
                    text = await page()
                    if 'tidings_delivery_attempts_total{outcome="acknowledged"} 1.0' in text:
                        break
                    await asyncio.sleep(0.05)
        finally:
            server.terminate()
    # The engine child's attempt and the API process's requests and commit, on one page.
    assert 'tidings_delivery_attempts_total{outcome="acknowledged"} 1.0' in text
    posts = [
        line
        for line in text.splitlines()
        if line.startswith("tidings_http_requests_total{")
        and 'route="/queues/{queue_id}/messages"' in line
    ]
    assert posts and posts[0].endswith(" 1.0"), posts
    assert "tidings_messages_ingested_total 1.0" in text
    families = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(families) == len(set(families))  # one family each, not one per process
