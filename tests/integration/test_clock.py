"""One clock for the whole process: what storage stamps, what handlers stamp, and the
windows of the rate limit and the lockout all move with the clock a server is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tests.conftest import Running, start_server
from tests.integration.events_helpers import add_listener, add_message, add_queue, read_events
from tidings.config import Settings
from tidings.domain.clock import ManualClock

START = 1_900_000_000_000  # 2030-03-17, far from the real time
WRONG = {"X-API-KEY": "wrong-key-" + "w" * 30}


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
    async with server.store.db.transaction() as tx:  # as if every attempt had failed
        await tx.execute(
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


async def test_rate_limit_windows_follow_the_clock(settings: Settings, clock: ManualClock) -> None:
    limited = replace(settings, rate_limit_per_minute=2, rate_limit_window_s=60)
    clock.set(START - START % 60_000)  # the start of a window
    async with start_server(limited, engine=False, clock=clock) as srv:
        for _ in range(2):
            assert (await srv.call("GET", "/queues")).status_code == 200
        clock.advance(45_000)
        refused = await srv.call("GET", "/queues")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "15"
        clock.advance(15_000)  # the next window
        assert (await srv.call("GET", "/queues")).status_code == 200


async def test_lockouts_end_by_the_clock(settings: Settings, clock: ManualClock) -> None:
    strict = replace(settings, lockout_threshold=2, lockout_window_s=10, lockout_seconds=300)
    async with start_server(strict, engine=False, clock=clock) as srv:
        for _ in range(2):
            assert (await srv.call("GET", "/queues", headers=WRONG)).status_code == 401
        refused = await srv.call("GET", "/queues")
        assert (refused.status_code, refused.headers["Retry-After"]) == (403, "300")
        clock.advance(299_000)
        assert (await srv.call("GET", "/queues")).status_code == 403
        clock.advance(1_000)
        assert (await srv.call("GET", "/queues")).status_code == 200
