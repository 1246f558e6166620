"""Listener flow control (SPEC §10) with two `tidings worker` processes on one
PostgreSQL, an API node beside them and a real receiver: max_in_flight and rate_limit
hold across the workers, and an ordered listener gets 1,000 messages in store order
through random failures, and through a kill -9 of one worker."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import BOOTSTRAP_KEY
from tests.polling import until
from tests.processes import Proc, serve, tidings_env, wait_engine
from tests.receivers import Answer, Receiver, receiver


class Concurrency:
    """Requests open at the receiver at once: the most ever seen."""

    def __init__(self) -> None:
        self.open = 0
        self.most = 0

    def behaviour(self, answer: Callable[[], Answer], hold_s: float) -> Callable[..., Answer]:
        def behave(_path: str, _n: int) -> Answer:
            self.open += 1
            self.most = max(self.most, self.open)
            asyncio.get_running_loop().call_later(hold_s, self._close)
            reply = answer()
            reply.delay_s = hold_s
            return reply

        return behave

    def _close(self) -> None:
        self.open -= 1


@asynccontextmanager
async def cluster(
    database: str, tmp_path: Path, rx: Receiver, **options: Any
) -> AsyncIterator[tuple[aiohttp.ClientSession, str, list[Proc]]]:
    """An API node (no engine), two workers, a queue with one listener on ``rx``."""
    api, base = await serve(database, tmp_path / "api.log", None, "--no-engine")
    workers = [Proc(["worker"], tidings_env(database), tmp_path / f"w{i}.log") for i in range(2)]
    try:
        for w in workers:
            await wait_engine(w)
        async with aiohttp.ClientSession(base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
            async with c.post("/queues", json={"name": "flow"}) as r:
                qid = (await r.json())["queue"]["id"]
            body = {"name": "rx", "notify_url": rx.url("/hook"), "liveness_url": rx.url("/live")}
            async with c.post(f"/queues/{qid}/listeners", json={**body, **options}) as r:
                assert r.status == 200, await r.text()
            yield c, qid, workers
    finally:
        for w in workers:
            if w.popen.poll() is None:
                w.kill()
        api.terminate()


async def post_all(c: aiohttp.ClientSession, qid: str, count: int) -> list[str]:
    """In store order: batches of 100, one after the other."""
    ids: list[str] = []
    for start in range(0, count, 100):
        items = [{"data": str(n)} for n in range(start, min(count, start + 100))]
        async with c.post(f"/queues/{qid}/messages/batch", json={"messages": items}) as r:
            assert r.status == 200, await r.text()
            ids.extend(m["id"] for m in (await r.json())["messages"])
    return ids


def first_arrivals(rx: Receiver) -> list[str]:
    return list(dict.fromkeys(a.headers["webhook-id"] for a in rx.on("/hook")))


@pytest.mark.timeout(120)
async def test_max_in_flight_2_never_sees_a_third_request(pg_database: str, tmp_path: Path) -> None:
    seen = Concurrency()
    async with receiver() as rx:
        rx.behaviour["/hook"] = seen.behaviour(lambda: Answer(200), 0.05)
        async with cluster(pg_database, tmp_path, rx, max_in_flight=2) as (c, qid, _):
            ids = await post_all(c, qid, 200)
            await until(lambda: set(first_arrivals(rx)) >= set(ids), 60, step_s=0.1)
    print(f"max_in_flight=2: most open at once {seen.most}")
    assert seen.most == 2


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_rate_limit_10_per_s_across_two_workers(pg_database: str, tmp_path: Path) -> None:
    async with receiver() as rx, cluster(pg_database, tmp_path, rx, rate_limit=10) as (c, qid, _):
        await post_all(c, qid, 800)
        await until(lambda: len(rx.on("/hook")) >= 1, 30, step_s=0.05)
        await asyncio.sleep(61)
    times = sorted(a.at for a in rx.on("/hook"))
    start = times[0]
    first_minute = [t for t in times if t < start + 60]
    most = max(sum(1 for u in times if t <= u < t + 10) for t in times)
    print(
        f"rate_limit=10: {len(first_minute)} in the first 60 s "
        f"({len(first_minute) / 60:.2f}/s), at most {most} in any 10 s"
    )
    assert most <= 110
    assert len(first_minute) / 60 >= 9


async def _ordered_run(pg_database: str, tmp_path: Path, kill_at: int | None) -> None:
    rng = random.Random(15)
    seen = Concurrency()
    async with receiver() as rx:
        rx.behaviour["/hook"] = seen.behaviour(
            lambda: Answer(503 if rng.random() < 0.1 else 200), 0.001
        )
        async with cluster(pg_database, tmp_path, rx, ordered=True) as (c, qid, workers):
            ids = await post_all(c, qid, 1000)
            if kill_at is not None:
                await until(lambda: len(first_arrivals(rx)) >= kill_at, 120, step_s=0.05)
                killed = time.monotonic()
                workers[0].kill()
                print(f"killed worker 0 after {len(first_arrivals(rx))} messages")
            await until(
                lambda: len(first_arrivals(rx)) >= 1000,
                300,
                step_s=0.2,
                message=lambda: f"{len(first_arrivals(rx))} of 1000 arrived",
            )
            if kill_at is not None:
                print(f"the rest took {time.monotonic() - killed:.1f} s after the kill")
    failed = sum(1 for a in rx.on("/hook")) - 1000
    print(f"ordered: 1000 in order, {failed} extra attempts, most open {seen.most}")
    assert first_arrivals(rx) == ids
    assert seen.most == 1
    # A message comes again only right after itself (its retry, or a crash's repeat).
    order = [ids.index(a.headers["webhook-id"]) for a in rx.on("/hook")]
    assert all(b >= a for a, b in itertools.pairwise(order))


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_ordered_1000_in_order_through_random_failures(
    pg_database: str, tmp_path: Path
) -> None:
    await _ordered_run(pg_database, tmp_path, None)


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_ordered_1000_in_order_through_a_kill_9(pg_database: str, tmp_path: Path) -> None:
    await _ordered_run(pg_database, tmp_path, 500)
