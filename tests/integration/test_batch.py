"""POST .../messages/batch (SPEC §9): 1..100 messages, all or nothing, one commit."""

from __future__ import annotations

from typing import Any

from tests.conftest import Running
from tests.integration.events_helpers import read_events


async def _count(server: Running, qid: str) -> int:
    r = await server.call("GET", f"/queues/{qid}/messages")
    return int(r.headers["X-Total-Count"])


async def test_a_batch_is_stored_in_order_with_one_event_each(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    items = [{"name": "a", "data": "1"}, {"data": "2"}, {"name": "a", "data": "3"}]
    r = await server.call("POST", f"/v1/queues/{qid}/messages/batch", json={"messages": items})
    assert r.status_code == 200, r.text
    answered = r.json()["messages"]
    assert [m["name"] for m in answered] == ["a", None, "a"]
    links = r.json()["_links"]
    assert links["self"]["href"] == f"{server.base_url}/v1/queues/{qid}/messages/batch"
    assert links["a"]["href"].endswith(f"/v1/queues/{qid}/messages/{answered[0]['id']}")
    assert answered[1]["id"] in links and answered[2]["id"] in links  # unnamed, name taken
    listed = (await server.call("GET", f"/queues/{qid}/messages")).json()["messages"]
    assert [(m["id"], m["data"]) for m in listed] == [
        (answered[0]["id"], "1"),
        (answered[1]["id"], "2"),
        (answered[2]["id"], "3"),
    ]
    assert len({m["created_at"] for m in listed}) == 1  # one commit, one time
    added = [e["message"]["id"] for e in await read_events(server) if e["type"] == "message_added"]
    assert added == [m["id"] for m in answered] or sorted(added) == sorted(
        m["id"] for m in answered
    )


async def test_every_listener_owes_every_message_of_a_batch(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    for name in ("x", "y"):
        url = "http://listener.invalid/" + name
        r = await server.call(
            "POST",
            f"/queues/{qid}/listeners",
            json={"name": name, "notify_url": url, "liveness_url": url},
        )
        assert r.status_code == 200, r.text
    items = [{"data": str(n)} for n in range(100)]
    r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": items})
    assert r.status_code == 200, r.text
    one = r.json()["messages"][42]["id"]
    got = (await server.call("GET", f"/queues/{qid}/messages/{one}")).json()["message"]
    assert len(got["deliveries"]) == 2


async def test_a_batch_must_hold_1_to_100_messages(server: Running, queue: dict[str, Any]) -> None:
    qid = queue["id"]
    for items in ([], [{"data": "x"}] * 101):
        r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": items})
        assert r.status_code == 400, r.text
    r = await server.call("POST", f"/queues/{qid}/messages/batch", json={})
    assert r.status_code == 400
    assert await _count(server, qid) == 0


async def test_malformed_items_are_400_naming_each_and_nothing_is_stored(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    items: list[Any] = [{"data": "ok"}, {"data": 5}, {"data": "ok"}, "text", {"name": ""}]
    r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": items})
    assert r.status_code == 400, r.text
    paths = [e["path"] for e in r.json()["errors"]]
    assert paths == ["$.messages[1].data", "$.messages[3]", "$.messages[4].name"]
    assert await _count(server, qid) == 0


async def test_one_item_breaking_the_schema_refuses_the_batch(server: Running) -> None:
    schema = {"price": {"type": "number"}}
    created = await server.call("POST", "/queues", json={"name": "s", "schema": schema})
    qid = created.json()["queue"]["id"]
    items = [{"data": '{"price": 1}'}] * 3 + [{"data": '{"price": "x"}'}, {"data": "[]"}]
    r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": items})
    assert r.status_code == 422, r.text
    paths = [e["path"] for e in r.json()["errors"]]
    assert paths == ["$.messages[3].data.price", "$.messages[4].data"]
    assert await _count(server, qid) == 0
    assert not [e for e in await read_events(server) if e["type"] == "message_added"]


async def test_a_batch_repeated_with_its_key_is_replayed(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    body = {"messages": [{"data": "1"}, {"data": "2"}]}
    headers = {"Idempotency-Key": "batch-1"}
    first = await server.call("POST", f"/queues/{qid}/messages/batch", json=body, headers=headers)
    again = await server.call(
        "POST", f"/v1/queues/{qid}/messages/batch", json=body, headers=headers
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    single = await server.call(
        "POST", f"/queues/{qid}/messages", json={"data": "1"}, headers=headers
    )
    assert single.status_code == 422  # the key belongs to the batch request
    assert await _count(server, qid) == 2


async def test_a_batch_for_an_unknown_queue_is_404(server: Running) -> None:
    r = await server.call("POST", "/queues/nope/messages/batch", json={"messages": [{"data": "x"}]})
    assert r.status_code == 404
