"""Helpers shared by the usage event tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import Running

LISTENER = {
    "notify_url": "http://127.0.0.1:9/notify",
    "liveness_url": "http://127.0.0.1:9/live",
}


async def read_events(server: Running, **params: Any) -> list[dict[str, Any]]:
    response = await server.call("GET", "/v1/events", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def org_id(server: Running) -> str:
    org = await server.store.organizations.get_by_name("default")
    assert org is not None
    return org.id


async def add_queue(server: Running, name: str) -> dict[str, Any]:
    response = await server.call("POST", "/queues", json={"name": name})
    assert response.status_code == 200, response.text
    queue: dict[str, Any] = response.json()["queue"]
    return queue


async def add_listener(server: Running, queue_id: str, name: str) -> dict[str, Any]:
    response = await server.call(
        "POST", f"/queues/{queue_id}/listeners", json={"name": name, **LISTENER}
    )
    assert response.status_code == 200, response.text
    listener: dict[str, Any] = response.json()["listener"]
    return listener


async def add_message(server: Running, queue_id: str, name: str | None = None) -> dict[str, Any]:
    response = await server.call(
        "POST", f"/queues/{queue_id}/messages", json={"name": name, "data": "x"}
    )
    assert response.status_code == 200, response.text
    message: dict[str, Any] = response.json()["message"]
    return message
