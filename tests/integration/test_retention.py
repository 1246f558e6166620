"""Old events leave GET /events at the retention period and are purged in batches."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Running, start_server
from tests.integration.events_helpers import add_message, add_queue, org_id, read_events
from tests.polling import until
from tidings.config import Settings
from tidings.domain.clock import ManualClock
from tidings.domain.scopes import default_scopes
from tidings.storage.retention import COUNTS_KEPT_MS, EventRetention

MINUTE, DAY = 60_000, 86_400_000
START = 1_780_000_000_000
WEEK = 7 * DAY


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def server_at(settings: Settings, clock: ManualClock) -> AsyncIterator[Running]:
    async with start_server(settings, engine=False, clock=clock) as running:
        yield running


async def _stored(server: Running, org: str) -> list[int]:
    """stored_at of every event still in the table, whatever its age."""
    return [e.stored_at for e in await server.store.events.read(org, None, None, 0, 10_000)]


async def _count_rows(server: Running, org: str, before_minute: int) -> int:
    value = await server.store.db.fetchval(
        "SELECT count(*) FROM event_counts WHERE org_id = $1 AND bucket_minute < $2",
        org,
        before_minute,
    )
    return int(value)


async def test_purge_deletes_only_what_is_past_retention(
    server_at: Running, clock: ManualClock
) -> None:
    server = server_at
    org = await org_id(server)
    other, _ = await server.store.organizations.create_with_key(
        "other", "other-org-key-" + "q" * 30, "k", default_scopes()
    )
    old = await add_queue(server, "old")
    for _ in range(4):
        await add_message(server, old["id"])
    clock.advance(3 * DAY)
    await add_queue(server, "mid")
    clock.advance(5 * DAY)  # START + 8 days
    await add_queue(server, "new")
    cutoff = clock.now_ms() - WEEK

    # Past retention means out of GET /events at once, purged or not.
    assert {e["queue"]["name"] for e in await read_events(server)} == {"mid", "new"}
    assert min(await _stored(server, org)) < cutoff

    retention = EventRetention(server.store.events, WEEK, clock=clock, batch_rows=2, pause_s=0)
    deleted = await retention.run_once()
    # The bootstrap key, the second org's key, queue "old" and its four messages.
    assert deleted == 1 + 1 + 1 + 4
    assert all(at >= cutoff for at in await _stored(server, org))
    assert len(await _stored(server, org)) == 2
    assert await _stored(server, other.id) == []
    assert await _count_rows(server, org, (clock.now_ms() - COUNTS_KEPT_MS) // MINUTE) == 0
    assert await _count_rows(server, org, 2**62) > 0  # the recent minutes stay
    assert await retention.run_once() == 0


async def test_a_day_is_always_kept(settings: Settings, clock: ManualClock) -> None:
    one_day = dataclasses.replace(settings, event_retention_s=86_400.0)
    async with start_server(one_day, engine=False, clock=clock) as server:
        await add_queue(server, "q")
        clock.advance(DAY - 1)
        assert [e["type"] for e in await read_events(server)][-1] == "queue_added"
        clock.advance(2)
        assert [e["type"] for e in await read_events(server)] == []


async def test_background_task_purges_and_stops(server_at: Running, clock: ManualClock) -> None:
    server = server_at
    org = await org_id(server)
    await add_queue(server, "q")
    clock.advance(WEEK + 1)
    retention = EventRetention(server.store.events, WEEK, clock=clock, interval_s=0.02, pause_s=0)
    retention.start()
    try:

        async def purged() -> bool:
            return not await _stored(server, org)

        await until(purged, message="events were not purged")
    finally:
        await retention.stop()
    await add_queue(server, "after")
    assert len(await _stored(server, org)) == 1
