"""Recording lag holds claiming back: outcomes not yet written count against the
engine's in-flight window, so a database that cannot keep up with recording stops
new claims instead of letting leases run out (which would send those deliveries
again).

PostgreSQL only: a trigger on ``deliveries`` makes the recorder's writes wait for an
advisory lock the test holds, while claims (which only move ``lease_until``) pass.
SQLite has one writer, so it cannot block recording without blocking claims too.
"""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import pytest

from tests.conftest import start_server
from tests.integration.gates import gate_trigger
from tests.integration.test_delivery import add_listener, post, until
from tests.receivers import receiver
from tidings.config import Settings
from tidings.delivery.engine import Engine
from tidings.delivery.sender import Sender

GATE = 7007
_TRIGGER, _DROP = gate_trigger(
    "test_record_gate",
    "deliveries",
    "NEW.state <> OLD.state OR NEW.attempts <> OLD.attempts",
    GATE,
)
WINDOW = 8
MESSAGES = 60


async def test_claiming_pauses_while_recording_lags(settings: Settings) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("needs a database that can block recording without blocking claims")
    small = replace(settings, max_in_flight=WINDOW)
    gate = await asyncpg.connect(settings.database_url)
    try:
        await gate.execute(_DROP + _TRIGGER)
        async with start_server(small, engine=False) as server, receiver() as rx:
            qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
            await add_listener(server, qid, rx)
            for _ in range(MESSAGES):
                await post(server, qid)
            await gate.execute(f"SELECT pg_advisory_lock({GATE})")
            policy = server.app.state.tidings.services.destinations
            engine = Engine(server.store, small, Sender(policy, 8))
            await engine.start()
            try:
                await rx.wait_for("/hook", WINDOW)

                # Every attempt answered, none recorded: once all of them finished,
                # their outcomes fill the window and the engine cannot claim (no
                # sleep: the state itself says it, and virtual-time unit tests check
                # that it stays so).
                async def finished() -> bool:
                    return engine.in_flight == 0

                await until(finished, timeout_s=10)
                assert len(rx.on("/hook")) == WINDOW
                leased = await gate.fetchval(
                    "SELECT count(*) FROM deliveries WHERE lease_until > 0"
                )
                assert leased == WINDOW
                # Recording catches up: the flushes wake the claim loop, and every
                # message arrives exactly once.
                await gate.execute(f"SELECT pg_advisory_unlock({GATE})")
                arrivals = await rx.wait_for("/hook", MESSAGES)
                ids = [a.json()["id"] for a in rx.on("/hook")]
                assert len(arrivals) == len(ids) == len(set(ids)) == MESSAGES
            finally:
                await gate.execute("SELECT pg_advisory_unlock_all()")
                await engine.stop()
    finally:
        await gate.execute(_DROP)
        await gate.close()
