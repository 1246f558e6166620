"""The typed client publishes under Idempotency-Keys and retries safely (SPEC §9)."""

from __future__ import annotations

import asyncio

from tests.conftest import Running
from tidings_client import AsyncClient, NewMessage, calls


async def _org(server: Running) -> str:
    org = await server.store.organizations.get_by_name("default")
    assert org is not None
    return org.id


async def test_a_publish_call_sent_twice_stores_one_message(server: Running) -> None:
    async with AsyncClient(server.base_url, server.api_key) as tidings:
        queue = await tidings.create_queue("orders")
        call = calls.post_message(queue.id, "once", name="n")
        assert "Idempotency-Key" in call.headers
        first, again = await tidings.run(call), await tidings.run(call)
        assert first.id == again.id
        other = await tidings.post_message(queue.id, "once", name="n")  # a new key
        assert other.id != first.id
        mine = await tidings.post_message(queue.id, "x", idempotency_key="order-1")
        assert (await tidings.post_message(queue.id, "x", idempotency_key="order-1")) == mine
        assert (await tidings.list_messages(queue.id)).total == 3


async def test_a_batch_answers_in_order(server: Running) -> None:
    async with AsyncClient(server.base_url, server.api_key) as tidings:
        queue = await tidings.create_queue("orders")
        posted = await tidings.post_messages(
            queue.id, [NewMessage("1", name="a"), NewMessage("2"), NewMessage("3", name="c")]
        )
        assert [p.name for p in posted] == ["a", None, "c"]
        listed = await tidings.list_messages(queue.id)
        assert [m.data for m in listed.items] == ["1", "2", "3"]


async def test_a_publish_in_progress_elsewhere_is_retried_until_answered(
    server: Running,
) -> None:
    async with AsyncClient(server.base_url, server.api_key) as tidings:
        queue = await tidings.create_queue("orders")
        # The key is in progress on the server: the first answer is 409 + Retry-After 1.
        with server.store.idempotency.hold(await _org(server), "busy"):
            task = asyncio.create_task(tidings.post_message(queue.id, "x", idempotency_key="busy"))
            await asyncio.sleep(0.3)
            assert not task.done()
        posted = await task
        assert (await tidings.get_message(queue.id, posted.id)).data == "x"


async def test_retention_and_delays_through_the_client(server: Running) -> None:
    async with AsyncClient(server.base_url, server.api_key) as tidings:
        kept = await tidings.create_queue("kept", retention_seconds=None)
        assert kept.retention_seconds is None
        queue = await tidings.create_queue("short", retention_seconds=60)
        assert queue.retention_seconds == 60
        changed = await tidings.update_queue(queue.id, retention_seconds=120)
        assert changed.retention_seconds == 120 and changed.name == "short"
        later = await tidings.post_message(queue.id, "x", delay=30)
        message = await tidings.get_message(queue.id, later.id)
        assert message.deliver_at == message.created_at + 30_000
        [item] = await tidings.post_messages(queue.id, [NewMessage("y", deliver_at=1)])
        got = await tidings.get_message(queue.id, item.id)
        assert got.deliver_at == got.created_at
