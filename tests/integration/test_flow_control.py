"""Listener flow control (SPEC §10) on SQLite and PostgreSQL with real receivers: the
server's engine plus a second engine on the same database. max_in_flight and
rate_limit hold across both; ordered listeners get store order. The long two-worker
runs (separate ``tidings worker`` processes, kill -9) are in
tests/acceptance/test_flow_workers.py."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from tests.conftest import Running, start_server
from tests.integration.test_delivery import post
from tests.polling import until
from tests.receivers import Answer, Receiver, receiver
from tidings.config import Settings
from tidings.delivery.engine import Engine
from tidings.delivery.sender import Sender


@asynccontextmanager
async def second_engine(server: Running) -> AsyncIterator[Engine]:
    policy = server.app.state.tidings.services.destinations
    engine = Engine(server.store, server.settings, Sender(policy, 64))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def _listener(server: Running, qid: str, rx: Receiver, **options: Any) -> dict[str, Any]:
    body = {"name": "l", "notify_url": rx.url("/hook"), "liveness_url": rx.url("/live")}
    r = await server.call("POST", f"/queues/{qid}/listeners", json={**body, **options})
    assert r.status_code == 200, r.text
    lid = r.json()["listener"]["id"]
    listener: dict[str, Any] = (await server.call("GET", f"/queues/{qid}/listeners/{lid}")).json()[
        "listener"
    ]
    return listener


async def _queue(server: Running) -> str:
    r = await server.call("POST", "/queues", json={"name": "q"})
    qid: str = r.json()["queue"]["id"]
    return qid


async def test_max_in_flight_holds_across_two_engines(server: Running) -> None:
    open_now = most = 0
    qid = await _queue(server)
    async with receiver(hook=lambda p, n: Answer(200, delay_s=0.05)) as rx:
        # Count concurrency on the receiver's side: wrap the behaviour.
        table = rx.behaviour

        def counting(path: str, n: int) -> Answer:
            nonlocal open_now, most
            open_now += 1
            most = max(most, open_now)
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, _close)
            return Answer(200, delay_s=0.05)

        def _close() -> None:
            nonlocal open_now
            open_now -= 1

        table["/hook"] = counting
        listener = await _listener(server, qid, rx, max_in_flight=2)
        assert listener["max_in_flight"] == 2
        async with second_engine(server):
            for n in range(30):
                await post(server, qid, data=str(n))
            await rx.wait_for("/hook", 30, timeout_s=30)
    assert most == 2


async def test_rate_limit_holds_across_two_engines(server: Running) -> None:
    qid = await _queue(server)
    async with receiver() as rx:
        listener = await _listener(server, qid, rx, rate_limit=20)
        assert listener["rate_limit"] == 20
        async with second_engine(server):
            for n in range(40):
                await post(server, qid, data=str(n))
            arrivals = await rx.wait_for("/hook", 40, timeout_s=30)
    times = sorted(a.at for a in arrivals)
    # Starts are reserved 1/rate apart; on a loaded machine an engine that stalls
    # sends the starts it overslept together, so allow a quarter more in any second
    # (without the limit all 40 arrive within a fraction of one).
    for i, t in enumerate(times):
        within = sum(1 for u in times[i:] if u < t + 1.0)
        assert within <= 25, (i, within)
    assert times[-1] - times[0] >= 39 / 20 * 0.9


async def test_put_rate_limit_applies_to_waiting_deliveries(server: Running) -> None:
    qid = await _queue(server)
    async with receiver() as rx:
        listener = await _listener(server, qid, rx, rate_limit=0.5)
        for n in range(6):
            await post(server, qid, data=str(n))
        await rx.wait_for("/hook", 1)
        started = time.monotonic()
        path = f"/queues/{qid}/listeners/{listener['id']}"
        assert (await server.call("PUT", path, json={"rate_limit": None})).is_success
        await rx.wait_for("/hook", 6, timeout_s=10)
    # 0.5/s would take 10 s for the rest; without the limit they go within seconds.
    assert time.monotonic() - started < 5


async def test_put_max_in_flight_applies_while_an_attempt_hangs(settings: Settings) -> None:
    """SPEC §10: a PUT of max_in_flight applies within a few seconds to deliveries
    already waiting, also while the listener's one attempt in flight never answers
    (the engine left a listener at its cap out of claims until an attempt ended)."""
    never = asyncio.Event()
    held = lambda _p, n: Answer(200, hold=never if n == 0 else None)  # noqa: E731
    slow = replace(settings, delivery_timeout_s=30.0)
    async with start_server(slow) as server, receiver(hook=held) as rx:
        qid = await _queue(server)
        listener = await _listener(server, qid, rx, max_in_flight=1)
        for n in range(4):
            await post(server, qid, data=str(n))
        await rx.wait_for("/hook", 1)
        await asyncio.sleep(0.5)
        assert len(rx.on("/hook")) == 1  # the cap holds the rest back
        path = f"/queues/{qid}/listeners/{listener['id']}"
        assert (await server.call("PUT", path, json={"max_in_flight": 4})).is_success
        started = time.monotonic()
        await rx.wait_for("/hook", 4, timeout_s=10)
        waited = time.monotonic() - started
        never.set()
    # The first attempt hangs for the delivery timeout (30 s here): the other three
    # went within the engine's cap re-read (2 s) and a poll (1 s), not after it.
    assert waited < 5, waited


async def test_ordered_listener_gets_store_order_through_failures(server: Running) -> None:
    # Every third message fails its first attempt: the next waits for its retry.
    failed: set[str] = set()
    qid = await _queue(server)
    async with receiver() as rx:
        listener = await _listener(server, qid, rx, ordered=True)
        assert listener["ordered"] is True

        def behave(path: str, n: int) -> Answer:
            mid = rx.arrivals[-1].headers["webhook-id"]
            if n % 3 == 0 and mid not in failed:
                failed.add(mid)
                return Answer(503)
            return Answer(200, delay_s=0.01)

        rx.behaviour["/hook"] = behave
        async with second_engine(server):
            ids = [await post(server, qid, data=str(n)) for n in range(20)]
            await until(
                lambda: _acked(rx) >= 20,
                30,
                message=lambda: str([a.headers["webhook-id"][-4:] for a in rx.on("/hook")]),
            )
    order = [a.headers["webhook-id"] for a in rx.on("/hook")]
    firsts = list(dict.fromkeys(order))
    assert firsts == ids
    # A message repeats only right after itself (its retry), never after a later one.
    assert all(ids.index(b) >= ids.index(a) for a, b in itertools.pairwise(order))


def _acked(rx: Receiver) -> int:
    return len({a.headers["webhook-id"] for a in rx.on("/hook")})
