"""The claim loop never sleeps through work: a wake-up that arrives while a claim is
running starts the next claim at once instead of waiting for the slow poll."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import start_server
from tests.integration.test_delivery import add_listener, post, until
from tests.receivers import Answer, receiver
from tidings.config import Settings
from tidings.delivery import engine as engine_module
from tidings.delivery.engine import Engine
from tidings.delivery.sender import Sender


async def test_attempt_finishing_during_a_claim_starts_the_next_claim(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only wake-ups can move the second message in time: the poll is a minute away.
    monkeypatch.setattr(engine_module, "POLL_INTERVAL_S", 60.0)
    one_at_a_time = replace(settings, max_in_flight_per_listener=1)
    async with start_server(one_at_a_time, engine=False) as server, receiver() as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        await add_listener(server, qid, rx)
        await post(server, qid)
        await post(server, qid)
        policy = server.app.state.tidings.services.destinations
        engine = Engine(server.store, one_at_a_time, Sender(policy, 8))
        real_claim = server.store.deliveries.claim
        calls = 0

        async def claim_racing_an_attempt(*args: Any, **kw: Any) -> Any:
            # The second claim finds the listener busy; before it returns, the first
            # attempt finishes, and its wake-up lands while the claim is in flight.
            nonlocal calls
            calls += 1
            claimed = await real_claim(*args, **kw)
            if calls == 2 and not claimed:
                while engine.in_flight:  # noqa: ASYNC110 (a plain count; no event to await)
                    await asyncio.sleep(0.005)
            return claimed

        monkeypatch.setattr(server.store.deliveries, "claim", claim_racing_an_attempt)
        await engine.start()
        try:
            await rx.wait_for("/hook", 2, timeout_s=10)
        finally:
            await engine.stop()


async def test_listener_at_its_limit_is_claimed_for_again_once_an_outcome_is_written(
    settings: Settings,
) -> None:
    """A listener never has more than its ``max_in_flight`` requests open, nor more
    than twice that less one claimed; each answer, once written, lets the next row be
    claimed at once, without waiting for the poll."""
    cap = 4
    capped = replace(settings, max_in_flight_per_listener=cap)
    gates = [asyncio.Event() for _ in range(20)]
    held = lambda _p, n: Answer(200, hold=gates[n])  # noqa: E731
    async with start_server(capped, engine=False) as server, receiver(hook=held) as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        await add_listener(server, qid, rx)
        for n in range(20):
            await post(server, qid, data=str(n))
        policy = server.app.state.tidings.services.destinations
        engine = Engine(server.store, capped, Sender(policy, 8))

        async def settles(arrived: int, claimed: int) -> None:
            # Reaching each state is checked here, on a real database; that nothing
            # more happens on its own is checked exactly, on virtual time, by
            # tests/unit/test_engine_scheduling.py (a sleep here only raced load).
            await rx.wait_for("/hook", arrived, timeout_s=10)
            await until(lambda: _true(engine.in_flight == claimed), timeout_s=10)

        await engine.start()
        try:
            await settles(arrived=cap, claimed=2 * cap - 1)
            gates[0].set()  # one answered: a waiting row takes its slot, then a new
            await settles(arrived=cap + 1, claimed=2 * cap - 1)  # row is claimed
            gates[1].set()
            await settles(arrived=cap + 2, claimed=2 * cap - 1)
            for gate in gates:
                gate.set()
            arrivals = await rx.wait_for("/hook", 20, timeout_s=10)
        finally:
            await engine.stop()
    assert len({a.headers["webhook-id"] for a in arrivals}) == 20


async def _true(value: bool) -> bool:
    return value
