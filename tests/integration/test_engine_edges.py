"""Engine edges: destinations checked at every attempt, clean shutdown, cancellations."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from tests.conftest import Running, start_server
from tests.integration.test_delivery import add_listener, message, post, until
from tests.receivers import Answer, receiver
from tidings.config import Settings
from tidings.delivery.engine import Engine
from tidings.delivery.sender import Sender
from tidings.destinations import DestinationPolicy
from tidings.domain.networks import parse_networks
from tidings.signing import new_keys


async def test_attempts_refuse_names_resolving_to_loopback(settings: Settings) -> None:
    """A listener stored with http://localhost (bypassing the create-time check, as a
    DNS change after registration would) is never contacted without the allow-list."""
    # A schedule longer than the first probes: the refused probes judge it down before
    # the last attempt could make the message missed (0.35 s of retries raced them).
    default_policy = replace(settings, allowed_networks=(), retry_schedule_s=(1.0, 2.0, 4.0))
    async with start_server(default_policy) as server, receiver() as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        port = rx.base_url.rsplit(":", 1)[1]
        org = await server.store.organizations.get_by_name("default")
        assert org is not None
        org_id = org.id
        await server.store.listeners.create(
            org_id,
            qid,
            "sneaky",
            f"http://localhost:{port}/hook",
            f"http://localhost:{port}/live",
            new_keys("v1"),
        )
        mid = await post(server, qid)

        async def probed() -> bool:
            listener = (await server.call("GET", "/listeners")).json()["listeners"][0]
            return bool(listener["liveness"]["failure_count"] >= 2)

        await until(probed)  # the probes were refused before any connection...
        d = (await message(server, qid, mid))["deliveries"][0]
        assert d["state"] == "pending"  # ...so it is down and its delivery waits, unspent
        assert rx.arrivals == []  # neither the notify nor the liveness URL was reached


async def test_sender_connects_only_to_allowed_addresses() -> None:
    async with receiver() as rx:
        port = rx.base_url.rsplit(":", 1)[1]
        strict = Sender(DestinationPolicy(()), 4)
        for host in ("localhost", "127.0.0.1", "[::ffff:127.0.0.1]"):
            answer = await strict.request("POST", f"http://{host}:{port}/hook", 2.0, b"{}")
            assert answer.status is None and answer.error, host
        await strict.close()
        assert rx.arrivals == []
        allowed = Sender(DestinationPolicy(parse_networks("127.0.0.0/8")), 4)
        answer = await allowed.request("POST", f"http://localhost:{port}/hook", 2.0, b"{}")
        await allowed.close()
        assert answer.status == 200 and len(rx.on("/hook")) == 1


async def test_stop_releases_in_flight_deliveries(settings: Settings) -> None:
    slow = replace(settings, delivery_timeout_s=30.0)
    hang = lambda _p, _n: Answer(200, delay_s=30)  # noqa: E731
    async with start_server(slow, engine=False) as server, receiver(hook=hang) as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        await add_listener(server, qid, rx)
        policy = server.app.state.tidings.services.destinations
        engine = Engine(server.store, slow, Sender(policy, 8))
        await engine.start()
        mid = await post(server, qid)
        await rx.wait_for("/hook", 1)
        started = time.monotonic()
        await engine.stop(grace_s=0.3)
        assert time.monotonic() - started < 10  # SPEC §8: SIGTERM exits within 10 s
        row = await server.store.db.fetchrow(
            "SELECT state, attempts, lease_until FROM deliveries WHERE message_id = $1", mid
        )
        # Released at once for the next worker, and the cut attempt was not spent.
        assert row is not None
        assert (row["state"], row["attempts"], row["lease_until"]) == ("pending", 0, 0)


async def test_deleting_listener_and_queue_drops_pending(
    server: Running, queue: dict[str, Any]
) -> None:
    async with receiver(hook=lambda _p, _n: Answer(500)) as rx:
        listener = await add_listener(server, queue["id"], rx)
        await post(server, queue["id"])
        await rx.wait_for("/hook", 1)
        path = f"/queues/{queue['id']}/listeners/{listener['id']}"
        assert (await server.call("DELETE", path)).status_code == 200
        pending = await server.store.db.fetchval(
            "SELECT count(*) FROM deliveries WHERE state = 'pending'"
        )
        assert pending == 0
        seen = len(rx.on("/hook"))
        await asyncio.sleep(0.5)
        assert len(rx.on("/hook")) <= seen + 1
