"""The typed client against a real server: the README walk-through, pages, errors."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import Running
from tests.receivers import receiver
from tidings_client import AsyncClient, Client, TidingsClientError, verify_webhook


async def test_readme_walk_through_with_the_async_client(server: Running) -> None:
    async with receiver() as rx, AsyncClient(server.base_url, server.api_key) as tidings:
        assert await tidings.health() == "ok"
        queue = await tidings.create_queue("orders")
        assert queue.name == "orders" and queue.listeners == []
        listener = await tidings.create_listener(
            queue.id, "shop", rx.url("/hooks"), rx.url("/live")
        )
        assert listener.secret.startswith("whsec_")
        posted = await tidings.post_message(queue.id, '{"id": 1}', name="order-1")
        assert posted.name == "order-1"

        # The delivery that results verifies with the listener's secret.
        [arrival] = await rx.wait_for("/hooks", 1)
        payload = verify_webhook(listener.secret, arrival.headers, arrival.body)
        assert payload["id"] == posted.id and payload["data"] == '{"id": 1}'

        messages = await tidings.list_messages(queue.id)
        assert [m.id for m in messages.items] == [posted.id] and messages.total == 1
        listeners = await tidings.list_listeners(queue.id)
        assert [item.name for item in listeners.items] == ["shop"]
        got = await tidings.get_queue(queue.id)
        assert [s.id for s in got.listeners] == [listener.id]

        # Every other endpoint of the table, once.
        assert (await tidings.get_listener(queue.id, listener.id)).secret == listener.secret
        renamed = await tidings.update_listener(queue.id, listener.id, name="shop2")
        assert renamed.name == "shop2"
        assert (await tidings.rename_message(queue.id, posted.id, "n2")).name == "n2"
        assert (await tidings.get_message(queue.id, posted.id)).queue_id == queue.id
        assert await tidings.redeliver(queue.id, listener.id) == []
        schema = {"id": {"type": "number"}}
        typed = await tidings.update_queue(queue.id, schema=schema)
        assert typed.schema_id is not None
        assert await tidings.get_schema(queue.id, typed.schema_id) == schema
        assert (await tidings.update_queue(queue.id, schema=None)).schema_id is None
        assert [q.id async for q in tidings.iter_queues()] == [queue.id]
        assert len([m async for m in tidings.iter_messages()]) == 1
        assert len([item async for item in tidings.iter_listeners()]) == 1
        await tidings.delete_message(queue.id, posted.id)
        await tidings.delete_listener(queue.id, listener.id)
        await tidings.delete_queue(queue.id)
        with pytest.raises(TidingsClientError) as gone:
            await tidings.get_queue(queue.id)
        assert gone.value.status == 404 and gone.value.title == "Not Found"


def _sync_walk(base_url: str, api_key: str) -> None:
    with Client(base_url, api_key) as tidings:
        queue = tidings.create_queue("paged")
        ids = [tidings.post_message(queue.id, str(n)).id for n in range(25)]
        first = tidings.list_messages(queue.id, per_page=10)
        assert first.total == 25 and first.next is not None and first.prev is None
        assert [m.id for m in tidings.iter_messages(queue.id, per_page=10)] == ids
        pages = list(tidings.pages(tidings_calls().list_messages(queue.id, 1, 10)))
        assert [len(p.items) for p in pages] == [10, 10, 5]

        # _links are absolute and followable; other origins are refused.
        body = tidings.follow(f"{base_url}/v1/queues/{queue.id}")
        assert body["queue"]["id"] == queue.id
        with pytest.raises(ValueError, match="another origin"):
            tidings.follow("http://example.com/v1/queues")

        with pytest.raises(TidingsClientError) as bad:
            tidings.create_queue("paged")
        assert bad.value.status == 422 and bad.value.detail
        with pytest.raises(TidingsClientError) as schema:
            tidings.create_queue("x" * 300)
        assert schema.value.status == 400 and schema.value.errors
        assert "400 Bad Request" in str(schema.value)
    with Client(base_url, "wrong-key") as anonymous, pytest.raises(TidingsClientError) as denied:
        anonymous.list_queues()
    assert denied.value.status == 401


def tidings_calls():  # type: ignore[no-untyped-def]
    from tidings_client import calls

    return calls


async def test_sync_client_pages_links_and_errors(server: Running) -> None:
    # The sync client blocks: run it off the loop that serves it.
    await asyncio.to_thread(_sync_walk, server.base_url, server.api_key)


def test_problem_errors_carry_the_body() -> None:
    err = TidingsClientError("Unprocessable Entity", 422, "Bad name.", [{"path": "$.name"}])
    assert json.loads(json.dumps(err.errors)) == [{"path": "$.name"}]
    assert str(err).startswith("422 Unprocessable Entity: Bad name.")


def _operator_walk(base_url: str, api_key: str) -> None:
    with Client(base_url, api_key) as operator:
        queue = operator.create_queue("keys")
        created = operator.create_api_key(
            name="producer",
            scopes=[{"resource": "messages", "access": "write", "targets": [queue.id]}],
        )
        shown = operator.get_api_key(created.id)
        assert shown.name == "producer" and shown.key == created.key[:3]
        assert [s.resource for s in shown.scopes] == ["messages"]
        assert created.id in [k.id for k in operator.iter_api_keys(per_page=1)]
        assert operator.update_api_key(created.id, name="p2").name == "p2"
        with Client(base_url, created.key) as producer:
            producer.post_message(queue.id, "hello")
            with pytest.raises(TidingsClientError) as forbidden:
                producer.create_queue("nope")
            assert forbidden.value.status == 403
        operator.update_api_key(created.id, status="disabled")
        operator.delete_api_key(created.id)

        org = operator.create_api_client("second org")
        assert org.api_client.name == "second org" and org.api_key
        with Client(base_url, org.api_key) as other:
            assert other.list_queues().total == 0  # another tenant sees nothing
            renamed = other.update_api_client(org.api_client.id, "second")
            assert renamed.name == "second"

        kinds = [e.type for e in operator.iter_events(batch=2)]
        assert {"queue_added", "api_key_added", "message_added"} <= set(kinds)
        queues_only = operator.list_events(events="queues")
        assert {e.type for e in queues_only} == {"queue_added"}
        stats = operator.message_stats()
        assert stats.last_24_hours.message_added == 1


async def test_keys_organizations_events_and_stats(server: Running) -> None:
    await asyncio.to_thread(_operator_walk, server.base_url, server.api_key)


async def test_listener_health_through_the_client(server: Running) -> None:
    """The attempt log, status, health, the series and the alerts queue (SPEC §11)."""
    async with receiver() as rx, AsyncClient(server.base_url, server.api_key) as tidings:
        queue = await tidings.create_queue("health")
        listener = await tidings.create_listener(queue.id, "l", rx.url("/hook"), rx.url("/live"))
        posted = await tidings.post_message(queue.id, "{}")
        await rx.wait_for("/hook", 1)
        for _ in range(200):  # the outcome is written by the engine's next batch
            attempts = await tidings.message_attempts(queue.id, posted.id)
            if attempts.total:
                break
            await asyncio.sleep(0.1)
        [attempt] = attempts.items
        assert attempt.outcome == "acknowledged" and attempt.status == 200
        assert attempt.response_body == "{}" and attempt.attempt == 1
        mine = await tidings.listener_attempts(queue.id, listener.id)
        assert [a.id for a in mine.items] == [attempt.id]

        await tidings.update_listener(queue.id, listener.id, status="disabled")
        got = await tidings.get_listener(queue.id, listener.id)
        assert got.status == "disabled" and got.health.state == "disabled"
        assert got.health.disabled_reason == "manual"
        await tidings.update_listener(queue.id, listener.id, status="enabled")
        assert (await tidings.get_listener(queue.id, listener.id)).health.state == "healthy"
        events = await tidings.list_events("listeners")
        assert [e.reason for e in events if e.type == "listener_disabled"] == ["manual"]

        series = await tidings.message_series(hours=1)
        assert series.step_ms == 60_000 and sum(series.counts["listener_enabled"]) == 1
        assert (await tidings.message_stats()).last_1_hours.listener_disabled == 1

        org = events[0].client.id
        client = await tidings.update_api_client(org, alerts_queue_id=queue.id)
        assert client.alerts_queue_id == queue.id
        cleared = await tidings.update_api_client(org, alerts_queue_id=None)
        assert cleared.alerts_queue_id is None
