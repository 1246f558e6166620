"""The delivery engine's attempts show up as message_published_* events and in stats."""

from __future__ import annotations

from typing import Any

from tests.conftest import Running
from tests.integration.events_helpers import add_message, read_events
from tests.polling import until
from tests.receivers import Answer, receiver


async def _published(server: Running) -> list[dict[str, Any]]:
    return [e for e in await read_events(server) if e["type"].startswith("message_published")]


async def test_each_attempt_records_one_event(server: Running, queue: dict[str, Any]) -> None:
    flaky = lambda _p, n: Answer(500 if n < 2 else 200)  # noqa: E731
    async with receiver(hook=flaky) as rx:
        created = await server.call(
            "POST",
            f"/queues/{queue['id']}/listeners",
            json={"name": "shop", "notify_url": rx.url("/hook"), "liveness_url": rx.url("/live")},
        )
        listener = created.json()["listener"]
        message = await add_message(server, queue["id"], "order-1")
        await rx.wait_for("/hook", 3)
        published: list[dict[str, Any]] = []

        async def three_published() -> bool:
            published[:] = await _published(server)
            return len(published) >= 3

        await until(three_published, message=lambda: published)

    assert [e["type"] for e in published] == [
        "message_published_not_ok",
        "message_published_not_ok",
        "message_published_ok",
    ]
    for event in published:
        assert event["message"] == {"id": message["id"], "name": "order-1"}
        assert event["queue"] == {"id": queue["id"], "name": queue["name"]}
        assert event["listener"] == {"id": listener["id"], "name": "shop"}
    day = (await server.call("GET", "/stats/messages")).json()["aggregated_api_usage_events"]
    assert day["last_1_hours"]["message_published_not_ok"] == 2
    assert day["last_1_hours"]["message_published_ok"] == 1
    assert day["last_1_hours"]["message_added"] == 1
