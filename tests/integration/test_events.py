"""Every change records its event, in its own transaction, naming what it concerns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Running, start_server
from tests.integration.events_helpers import (
    add_listener,
    add_message,
    add_queue,
    org_id,
    read_events,
)
from tidings.config import Settings
from tidings.domain.events import EventType
from tidings.domain.ids import new_id, now_ms
from tidings.domain.models import DeliveryState, NewMessage, Publication
from tidings.storage.deliveries import AttemptResult


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Running]:
    """The API without the delivery engine, so the events are exactly what a test did."""
    async with start_server(settings, engine=False) as running:
        yield running


def _refs(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k in ("api_key", "queue", "listener", "message")}


async def test_each_change_records_one_event_with_its_references(server: Running) -> None:
    org = await org_id(server)
    before = await read_events(server)
    # The operator key that bootstrap made is the organization's first change.
    assert [e["type"] for e in before] == ["api_key_added"]
    assert before[0]["api_key"]["name"] == "operator"

    queue = await add_queue(server, "orders")
    qid = queue["id"]
    renamed = await server.call("PUT", f"/queues/{qid}", json={"name": "orders-v2"})
    assert renamed.status_code == 200
    listener = await add_listener(server, qid, "shop")
    lid = listener["id"]
    changed = await server.call("PUT", f"/queues/{qid}/listeners/{lid}", json={"name": "shop-v2"})
    assert changed.status_code == 200
    named = await add_message(server, qid, "order-1")
    unnamed = await add_message(server, qid)
    assert (await server.call("DELETE", f"/queues/{qid}/listeners/{lid}")).status_code == 200
    assert (await server.call("DELETE", f"/queues/{qid}")).status_code == 200

    events = (await read_events(server))[1:]
    q1, q2 = {"id": qid, "name": "orders"}, {"id": qid, "name": "orders-v2"}
    l1, l2 = {"id": lid, "name": "shop"}, {"id": lid, "name": "shop-v2"}
    assert [(e["type"], _refs(e)) for e in events] == [
        ("queue_added", {"queue": q1}),
        ("queue_updated", {"queue": q2}),
        ("listener_added", {"queue": q2, "listener": l1}),
        ("listener_updated", {"queue": q2, "listener": l2}),
        ("message_added", {"queue": q2, "message": {"id": named["id"], "name": "order-1"}}),
        ("message_added", {"queue": q2, "message": {"id": unnamed["id"], "name": None}}),
        ("listener_deleted", {"queue": q2, "listener": l2}),
        ("queue_deleted", {"queue": q2}),
    ]
    for event in events:
        assert event["client"] == {"id": org}
        assert isinstance(event["stored_at"], int)
        assert abs(event["stored_at"] - now_ms()) < 60_000
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)


async def test_failed_changes_record_no_event(server: Running) -> None:
    schema = {"n": {"type": "number"}}
    created = await server.call("POST", "/queues", json={"name": "typed", "schema": schema})
    qid = created.json()["queue"]["id"]
    stats_before = (await server.call("GET", "/stats/messages")).json()
    before = await read_events(server)

    duplicate = await server.call("POST", "/queues", json={"name": "typed"})
    assert duplicate.status_code == 422
    bad_data = await server.call("POST", f"/queues/{qid}/messages", json={"data": "{}"})
    assert bad_data.status_code == 422
    missing = await server.call("PUT", f"/queues/{new_id()}", json={"name": "x"})
    assert missing.status_code == 404
    gone = await server.call("DELETE", f"/queues/{qid}/listeners/{new_id()}")
    assert gone.status_code == 404

    assert await read_events(server) == before
    assert (await server.call("GET", "/stats/messages")).json() == stats_before


async def test_batched_ingest_records_one_event_per_committed_message(server: Running) -> None:
    a = await add_queue(server, "a")
    b = await add_queue(server, "b")
    posted = await asyncio.gather(
        *(add_message(server, q["id"], f"m{i}") for i in range(20) for q in (a, b))
    )
    added = [e for e in await read_events(server) if e["type"] == "message_added"]
    by_message = {e["message"]["id"]: e for e in added}
    assert len(added) == len(posted) == 40
    for message in posted:
        event = by_message[message["id"]]
        assert event["message"]["name"] == message["name"]
        assert event["queue"]["name"] in ("a", "b")


async def test_a_batch_with_a_deleted_queue_keeps_only_the_good_events(server: Running) -> None:
    org = await org_id(server)
    keep = await add_queue(server, "keep")
    doomed = await add_queue(server, "doomed")
    assert (await server.call("DELETE", f"/queues/{doomed['id']}")).status_code == 200
    batch = [
        NewMessage(new_id(), org, keep["id"], "good", "x", now_ms()),
        NewMessage(new_id(), org, doomed["id"], "orphan", "x", now_ms()),
    ]
    outcomes = await server.store.messages.insert_batch([Publication((m,)) for m in batch])
    assert outcomes[0] is None and outcomes[1] is not None
    added = [e for e in await read_events(server) if e["type"] == "message_added"]
    assert [(e["message"]["id"], e["queue"]) for e in added] == [
        (batch[0].id, {"id": keep["id"], "name": "keep"})
    ]


async def test_delivery_attempts_record_published_events(server: Running) -> None:
    queue = await add_queue(server, "orders")
    listener = await add_listener(server, queue["id"], "shop")
    message = await add_message(server, queue["id"], "order-1")
    at = now_ms() + 1_000
    claimed = await server.store.deliveries.claim(1, at, at + 30_000, 10, 4, [])
    assert [c.message_id for c in claimed] == [message["id"]]
    failed = AttemptResult(claimed[0], 500, DeliveryState.PENDING, 1, at, at + 50)
    await server.store.deliveries.record([failed])
    again = await server.store.deliveries.claim(1, at + 100, at + 30_000, 10, 4, [])
    acked = AttemptResult(again[0], 204, DeliveryState.DELIVERED, 2, at + 100, None)
    await server.store.deliveries.record([acked])

    published = [e for e in await read_events(server) if e["type"].startswith("message_pub")]
    refs = {
        "message": {"id": message["id"], "name": "order-1"},
        "queue": {"id": queue["id"], "name": "orders"},
        "listener": {"id": listener["id"], "name": "shop"},
    }
    assert [(e["type"], _refs(e)) for e in published] == [
        (EventType.MESSAGE_PUBLISHED_NOT_OK.value, refs),
        (EventType.MESSAGE_PUBLISHED_OK.value, refs),
    ]
    day = (await server.call("GET", "/stats/messages")).json()["aggregated_api_usage_events"]
    assert day["last_24_hours"]["message_published_ok"] == 1
    assert day["last_24_hours"]["message_published_not_ok"] == 1


async def test_events_survive_renames_and_deletions(server: Running) -> None:
    queue = await add_queue(server, "first")
    await server.call("PUT", f"/queues/{queue['id']}", json={"name": "second"})
    await server.call("DELETE", f"/queues/{queue['id']}")
    names = [e["queue"]["name"] for e in await read_events(server, events="queues")]
    assert names == ["first", "second", "second"]


async def test_api_key_changes_record_events(server: Running) -> None:
    created = await server.call("POST", "/v1/api_keys", json={"name": "ci"})
    assert created.status_code == 200
    key_id = created.json()["_links"]["self"]["href"].rsplit("/", 1)[1]
    changed = await server.call("PUT", f"/v1/api_keys/{key_id}", json={"name": "ci-2"})
    assert changed.status_code == 200
    disabled = await server.call("PUT", f"/v1/api_keys/{key_id}", json={"status": "disabled"})
    assert disabled.status_code == 200
    assert (await server.call("DELETE", f"/v1/api_keys/{key_id}")).status_code == 200
    refused = await server.call("PUT", f"/v1/api_keys/{key_id}", json={"name": "gone"})
    assert refused.status_code == 404

    events = [
        e for e in await read_events(server, events="api_keys") if e["api_key"]["id"] == key_id
    ]
    assert [(e["type"], e["api_key"]["name"]) for e in events] == [
        ("api_key_added", "ci"),
        ("api_key_updated", "ci-2"),
        ("api_key_updated", "ci-2"),
        ("api_key_deleted", "ci-2"),
    ]
    day = (await server.call("GET", "/stats/messages")).json()["aggregated_api_usage_events"]
    assert day["last_1_hours"]["api_key_updated"] == 2
    assert day["last_1_hours"]["api_key_deleted"] == 1


async def test_new_api_keys_record_events(server: Running) -> None:
    org = await org_id(server)
    key = await server.store.api_keys.create(org, "k" * 40, "ci", "enabled", ())
    added = [e for e in await read_events(server, events="api_keys")]
    assert [(e["type"], e["api_key"]) for e in added][-1] == (
        "api_key_added",
        {"id": key.id, "name": "ci"},
    )
