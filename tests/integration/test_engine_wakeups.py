"""The claim loop never sleeps through work: a wake-up that arrives while a claim is
running starts the next claim at once instead of waiting for the slow poll."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import start_server
from tests.integration.test_delivery import add_listener, post
from tests.receivers import receiver
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

        async def claim_racing_an_attempt(*args: Any) -> Any:
            # The second claim finds the listener busy; before it returns, the first
            # attempt finishes, and its wake-up lands while the claim is in flight.
            nonlocal calls
            calls += 1
            claimed = await real_claim(*args)
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
