"""Messages: CRUD, lists, schema validation of data, deliveries rows at commit."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Running


async def test_post_get_list_rename_delete_message(server: Running, queue: dict[str, Any]) -> None:
    qid = queue["id"]
    r = await server.call(
        "POST", f"/v1/queues/{qid}/messages", json={"name": "order-1", "data": '{"id": 1}'}
    )
    assert r.status_code == 200, r.text
    mid = r.json()["message"]["id"]
    assert r.json()["message"] == {"id": mid, "name": "order-1"}
    assert r.json()["_links"]["self"]["href"] == f"{server.base_url}/v1/queues/{qid}/messages/{mid}"

    got = (await server.call("GET", f"/queues/{qid}/messages/{mid}")).json()["message"]
    assert got["data"] == '{"id": 1}'
    assert got["queue_id"] == qid
    assert got["deliveries"] == []
    assert isinstance(got["created_at"], int)

    unnamed = await server.call("POST", f"/queues/{qid}/messages", json={"data": "plain text"})
    assert unnamed.json()["message"]["name"] is None

    listed = await server.call("GET", f"/queues/{qid}/messages")
    assert [m["id"] for m in listed.json()["messages"]] == [mid, unnamed.json()["message"]["id"]]
    assert listed.headers["X-Total-Count"] == "2"
    everywhere = await server.call("GET", "/messages")
    assert everywhere.headers["X-Total-Count"] == "2"

    renamed = await server.call("PUT", f"/queues/{qid}/messages/{mid}", json={"name": "n2"})
    assert renamed.json()["message"]["name"] == "n2"
    assert (await server.call("DELETE", f"/queues/{qid}/messages/{mid}")).status_code == 200
    assert (await server.call("GET", f"/queues/{qid}/messages/{mid}")).status_code == 404


async def test_message_body_errors_are_400(server: Running, queue: dict[str, Any]) -> None:
    path = f"/queues/{queue['id']}/messages"
    for body in ({}, {"data": 5}, {"data": {"a": 1}}, {"name": 3, "data": "x"}):
        r = await server.call("POST", path, json=body)
        assert r.status_code == 400, body
    assert (await server.call("GET", path)).headers["X-Total-Count"] == "0"


async def test_data_must_satisfy_queue_schema_listing_every_violation(server: Running) -> None:
    schema = {
        "user": {
            "type": "object",
            "props": {"age": {"type": "number", "min": 0}, "name": {"type": "string"}},
        },
        "kind": {"type": "string", "enum": ["a", "b"]},
    }
    qid = await server.call("POST", "/queues", json={"name": "typed", "schema": schema})
    qid = qid.json()["queue"]["id"]
    path = f"/queues/{qid}/messages"
    ok = await server.call(
        "POST", path, json={"data": '{"user": {"age": 3, "name": "x"}, "kind": "a"}'}
    )
    assert ok.status_code == 200
    bad = await server.call("POST", path, json={"data": '{"user": {"age": -1}, "kind": "c"}'})
    assert bad.status_code == 422
    paths = {e["path"] for e in bad.json()["errors"]}
    assert len(bad.json()["errors"]) >= 3, bad.json()
    assert any("age" in p for p in paths) and any("kind" in p for p in paths)
    assert any("name" in p for p in paths)
    not_json = await server.call("POST", path, json={"data": "not json"})
    assert not_json.status_code == 422
    assert (await server.call("GET", path)).headers["X-Total-Count"] == "1"


async def test_message_gets_one_delivery_per_listener_at_commit(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    body = {
        "name": "l",
        "notify_url": "http://127.0.0.1:9/n",
        "liveness_url": "http://127.0.0.1:9/l",
    }
    first = (await server.call("POST", f"/queues/{qid}/listeners", json=body)).json()
    mid = (await server.call("POST", f"/queues/{qid}/messages", json={"data": "x"})).json()
    mid = mid["message"]["id"]
    await server.call("POST", f"/queues/{qid}/listeners", json={**body, "name": "late"})
    got = (await server.call("GET", f"/queues/{qid}/messages/{mid}")).json()["message"]
    assert [d["listener_id"] for d in got["deliveries"]] == [first["listener"]["id"]]
    delivery = got["deliveries"][0]
    assert delivery["state"] in ("pending", "delivered", "missed")


async def test_concurrent_posts_all_stored(server: Running, queue: dict[str, Any]) -> None:
    path = f"/queues/{queue['id']}/messages"
    responses = await asyncio.gather(
        *(server.call("POST", path, json={"data": str(i)}) for i in range(200))
    )
    assert all(r.status_code == 200 for r in responses)
    ids = {r.json()["message"]["id"] for r in responses}
    assert len(ids) == 200
    listed = await server.call("GET", f"{path}?per_page=100")
    assert listed.headers["X-Total-Count"] == "200"


async def test_deleting_queue_removes_its_listeners_and_messages(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    body = {
        "name": "l",
        "notify_url": "http://127.0.0.1:9/n",
        "liveness_url": "http://127.0.0.1:9/l",
    }
    await server.call("POST", f"/queues/{qid}/listeners", json=body)
    await server.call("POST", f"/queues/{qid}/messages", json={"data": "x"})
    assert (await server.call("DELETE", f"/queues/{qid}")).status_code == 200
    assert (await server.call("GET", "/listeners")).headers["X-Total-Count"] == "0"
    assert (await server.call("GET", "/messages")).headers["X-Total-Count"] == "0"
    pending = await server.store.db.fetchval("SELECT count(*) FROM deliveries")
    assert pending == 0
