"""GET /stats/messages follows an injected clock through hours and a UTC midnight."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Running, start_server
from tests.integration.events_helpers import add_listener, add_message, add_queue, read_events
from tidings.config import Settings
from tidings.domain.clock import ManualClock
from tidings.domain.events import EventType
from tidings.domain.ids import now_ms
from tidings.domain.models import DeliveryState
from tidings.storage.deliveries import AttemptResult

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
START = int(datetime(2026, 3, 10, 22, 10, 17, tzinfo=UTC).timestamp() * 1000)
TYPES = [t.value for t in EventType]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def server_at(settings: Settings, clock: ManualClock) -> AsyncIterator[Running]:
    async with start_server(settings, engine=False, clock=clock) as running:
        yield running


def expected(log: list[tuple[int, str]], now: int) -> dict[str, dict[str, int]]:
    """The documented windows: whole UTC minutes up to and including the current one."""
    minute = now // MINUTE
    starts = {
        "last_24_hours": minute - 24 * 60 + 1,
        "last_1_hours": minute - 60 + 1,
        "today_so_far": datetime.fromtimestamp(now / 1000, UTC)
        .replace(hour=0, minute=0, second=0, microsecond=0)
        .timestamp()
        // 60,
    }
    return {
        window: {
            t: sum(1 for at, k in log if k == t and start <= at // MINUTE <= minute) for t in TYPES
        }
        for window, start in starts.items()
    }


async def stats(server: Running) -> dict[str, dict[str, int]]:
    response = await server.call("GET", "/v1/stats/messages")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["_links"]["self"]["href"] == f"{server.base_url}/v1/stats/messages"
    usage: dict[str, dict[str, int]] = body["aggregated_api_usage_events"]
    return usage


async def test_windows_move_with_the_clock(server_at: Running, clock: ManualClock) -> None:
    server = server_at
    log = [(e["stored_at"], e["type"]) for e in await read_events(server)]
    assert log == [(START, "api_key_added")]

    async def did(*types: EventType) -> None:
        log.extend((clock.now_ms(), t.value) for t in types)

    async def check() -> dict[str, dict[str, int]]:
        got = await stats(server)
        assert got == expected(log, clock.now_ms()), clock.now_ms()
        return got

    got = await check()
    assert all(set(window) == set(TYPES) for window in got.values())

    queue = await add_queue(server, "orders")  # 22:10:17
    await add_message(server, queue["id"])
    await add_message(server, queue["id"])
    await did(EventType.QUEUE_ADDED, EventType.MESSAGE_ADDED, EventType.MESSAGE_ADDED)
    got = await check()
    assert got["today_so_far"]["message_added"] == 2

    clock.advance(50 * MINUTE)  # 23:00:17
    await server.call("PUT", f"/queues/{queue['id']}", json={"name": "orders-2"})
    listener = await add_listener(server, queue["id"], "shop")
    await did(EventType.QUEUE_UPDATED, EventType.LISTENER_ADDED)
    await check()

    clock.advance(59 * MINUTE + 30_000)  # 23:59:47
    message = await add_message(server, queue["id"])
    await did(EventType.MESSAGE_ADDED)
    got = await check()
    assert got["last_1_hours"]["queue_updated"] == 1

    clock.advance(30_000)  # 00:00:17, a new UTC day
    for _ in range(3):
        await add_message(server, queue["id"])
    at = now_ms() + 1_000  # claims compare with the real creation time of the message
    claimed = await server.store.deliveries.claim(1, at, at + 30_000, 100, 100, [])
    mine = [c for c in claimed if c.message_id == message["id"]]
    await server.store.deliveries.record(
        [AttemptResult(mine[0], 503, DeliveryState.PENDING, 1, at, at + 50)]
    )
    await did(*[EventType.MESSAGE_ADDED] * 3, EventType.MESSAGE_PUBLISHED_NOT_OK)
    got = await check()
    # Midnight: today has only what happened since; the last hour no longer has 23:00.
    assert got["today_so_far"]["message_added"] == 3
    assert got["last_1_hours"]["queue_updated"] == 0
    assert got["last_1_hours"]["message_added"] == 4
    assert got["last_24_hours"]["message_added"] == 6

    clock.advance(HOUR)  # 01:00:17
    await server.call("DELETE", f"/queues/{queue['id']}/listeners/{listener['id']}")
    await did(EventType.LISTENER_DELETED)
    await check()

    clock.advance(22 * HOUR - MINUTE)  # 22:59:17: the first day's 22:10 is out, 23:00 in
    got = await check()
    assert got["last_24_hours"]["queue_added"] == 0
    assert got["last_24_hours"]["queue_updated"] == 1
    clock.advance(MINUTE)  # 23:00:17: and now 23:00 of the first day is out too
    got = await check()
    assert got["last_24_hours"]["queue_updated"] == 0

    clock.advance(DAY)  # everything is more than a day old
    got = await check()
    assert sum(sum(window.values()) for window in got.values()) == 0


async def test_stats_count_in_bulk_per_minute_and_hour(
    server_at: Running, clock: ManualClock
) -> None:
    """A batch bumps one counter per organization, type and minute, and one per hour."""
    server = server_at
    queue = await add_queue(server, "bulk")
    for _ in range(3):
        for _ in range(4):
            await add_message(server, queue["id"])
        clock.advance(MINUTE)
    got = await stats(server)
    assert got["last_1_hours"]["message_added"] == 12
    rows = await server.store.db.fetch(
        "SELECT span_minutes, bucket_minute, total FROM event_counts"
        " WHERE type = 'message_added' ORDER BY span_minutes, bucket_minute"
    )
    start_minute = START // MINUTE
    hour = start_minute - start_minute % 60
    assert [(r["span_minutes"], r["bucket_minute"], r["total"]) for r in rows] == [
        (1, start_minute, 4),
        (1, start_minute + 1, 4),
        (1, start_minute + 2, 4),
        (60, hour, 12),
    ]


# --- GET /stats/messages/series (SPEC §11) ----------------------------------------


async def series(server: Running, **params: Any) -> dict[str, Any]:
    r = await server.call("GET", "/stats/messages/series", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["series"]
    return body


async def test_per_minute_and_per_hour_steps_oldest_first(
    server_at: Running, clock: ManualClock
) -> None:
    q = await add_queue(server_at, "q")  # 22:10
    await add_message(server_at, q["id"])
    clock.advance(2 * HOUR + 5 * MINUTE)  # 00:15 the next day
    await add_message(server_at, q["id"])
    await add_message(server_at, q["id"])
    clock.advance(30 * MINUTE)  # 00:45
    await add_message(server_at, q["id"])

    hour = await series(server_at, hours=1)
    now_minute = clock.now_ms() // MINUTE
    assert hour["step_ms"] == MINUTE
    assert hour["start"] == (now_minute - 59) * MINUTE
    assert set(hour["counts"]) == {t.value for t in EventType}
    added = hour["counts"]["message_added"]
    assert len(added) == 60 and sum(added) == 3
    assert added[-1] == 1  # 00:45, the current minute, last
    assert added[59 - 30] == 2  # 00:15
    assert sum(hour["counts"]["queue_added"]) == 0  # 22:10 is more than an hour ago

    day = await series(server_at, hours=24)
    now_hour = clock.now_ms() // HOUR
    assert day["step_ms"] == HOUR
    assert day["start"] == (now_hour - 23) * HOUR
    added = day["counts"]["message_added"]
    assert len(added) == 24 and added[-1] == 3 and added[-3] == 1
    assert day["counts"]["queue_added"][-3] == 1
    # The default is the day.
    assert await series(server_at) == day


async def test_only_one_or_24_hours(server_at: Running) -> None:
    for bad in ("2", "0", "", "1.0"):
        r = await server_at.call("GET", "/stats/messages/series", params={"hours": bad})
        assert r.status_code == 400, bad
