"""One clock for the whole process: what storage stamps and what handlers stamp move
with the clock a server is given (the rate-limit windows and lockouts too: those are
in test_limits.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Running, start_server
from tests.integration.events_helpers import add_listener, add_message, add_queue, read_events
from tidings.config import Settings
from tidings.domain.clock import ManualClock

START = 1_900_000_000_000  # 2030-03-17, far from the real time


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def server(settings: Settings, clock: ManualClock) -> AsyncIterator[Running]:
    async with start_server(settings, engine=False, clock=clock) as running:
        yield running


async def test_stored_times_come_from_the_clock(server: Running, clock: ManualClock) -> None:
    queue = await add_queue(server, "orders")
    stored = await server.store.db.fetchrow(
        "SELECT created_at, updated_at FROM queues WHERE id = $1", queue["id"]
    )
    assert stored is not None and (stored["created_at"], stored["updated_at"]) == (START, START)

    clock.advance(5_000)
    renamed = await server.call("PUT", f"/queues/{queue['id']}", json={"name": "orders-2"})
    assert renamed.status_code == 200
    updated = await server.store.db.fetchval(
        "SELECT updated_at FROM queues WHERE id = $1", queue["id"]
    )
    assert updated == START + 5_000

    clock.advance(5_000)
    message = await add_message(server, queue["id"], "m")  # stamped by the handler
    got = await server.call("GET", f"/queues/{queue['id']}/messages/{message['id']}")
    assert got.json()["message"]["created_at"] == START + 10_000
    stamps = {e["type"]: e["stored_at"] for e in await read_events(server)}
    assert stamps == {
        "api_key_added": START,  # the bootstrap key, made at start
        "queue_added": START,
        "queue_updated": START + 5_000,
        "message_added": START + 10_000,
    }


async def test_redelivery_is_due_at_the_clocks_now(server: Running, clock: ManualClock) -> None:
    queue = await add_queue(server, "orders")
    listener = await add_listener(server, queue["id"], "shop")
    message = await add_message(server, queue["id"], "m")
    await server.store.db.write(  # as if every attempt had failed
        "UPDATE deliveries SET state = 'missed', attempts = 4 WHERE message_id = $1",
        message["id"],
    )
    clock.advance(60_000)
    path = f"/queues/{queue['id']}/listeners/{listener['id']}/redeliveries"
    assert (await server.call("POST", path, json={})).json()["redelivery"]["message_ids"] == [
        message["id"]
    ]
    got = await server.call("GET", f"/queues/{queue['id']}/messages/{message['id']}")
    [delivery] = got.json()["message"]["deliveries"]
    assert (delivery["state"], delivery["next_attempt_at"]) == ("pending", START + 60_000)
