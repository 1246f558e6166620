"""Queues: CRUD, unique names, schemas, and the conventions of SPEC §1 on them."""

from __future__ import annotations

from typing import Any

from tests.conftest import Running


async def test_create_get_list_update_delete_queue(server: Running) -> None:
    created = await server.call("POST", "/v1/queues", json={"name": "orders"})
    assert created.status_code == 200
    body = created.json()
    queue_id = body["queue"]["id"]
    assert body["queue"] == {
        "id": queue_id,
        "name": "orders",
        "listeners": [],
        "retention_seconds": 2_592_000,
    }
    assert body["_links"]["self"]["href"] == f"{server.base_url}/v1/queues/{queue_id}"

    got = (await server.call("GET", f"/queues/{queue_id}")).json()
    assert got["queue"]["name"] == "orders"
    assert got["_links"]["self"]["href"] == f"{server.base_url}/queues/{queue_id}"

    listed = await server.call("GET", "/v1/queues")
    assert listed.json()["queues"] == [{"id": queue_id, "name": "orders"}]
    assert listed.headers["X-Total-Count"] == "1"
    assert listed.json()["_links"]["orders"]["href"].endswith(f"/v1/queues/{queue_id}")

    renamed = await server.call("PUT", f"/v1/queues/{queue_id}", json={"name": "orders-v2"})
    assert renamed.json()["queue"]["name"] == "orders-v2"

    deleted = await server.call("DELETE", f"/v1/queues/{queue_id}")
    assert deleted.status_code == 200
    assert deleted.json() == {
        "_links": {"self": {"href": f"{server.base_url}/v1/queues/{queue_id}"}}
    }
    assert (await server.call("GET", f"/v1/queues/{queue_id}")).status_code == 404


async def test_duplicate_queue_name_is_422_and_changes_nothing(server: Running) -> None:
    assert (await server.call("POST", "/queues", json={"name": "a"})).status_code == 200
    second = await server.call("POST", "/queues", json={"name": "a"})
    assert second.status_code == 422
    assert second.json()["title"] == "Unprocessable Entity"
    assert "already exists" in second.json()["detail"]
    other = (await server.call("POST", "/queues", json={"name": "b"})).json()["queue"]["id"]
    clash = await server.call("PUT", f"/queues/{other}", json={"name": "a"})
    assert clash.status_code == 422
    assert (await server.call("GET", "/queues")).headers["X-Total-Count"] == "2"


SCHEMA: dict[str, Any] = {
    "user": {"type": "object", "props": {"age": {"type": "number", "min": 0}}},
    "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
}


async def test_schema_is_echoed_with_id_and_served_by_id(server: Running) -> None:
    import hashlib
    import json

    response = await server.call("POST", "/queues", json={"name": "typed", "schema": SCHEMA})
    assert response.status_code == 200, response.text
    queue = response.json()["queue"]
    canonical = json.dumps(SCHEMA, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert queue["schema"] == SCHEMA
    assert queue["schema_id"] == hashlib.sha256(canonical.encode()).hexdigest()
    got = await server.call("GET", f"/queues/{queue['id']}/schemas/{queue['schema_id']}")
    assert got.status_code == 200
    assert got.json()["schema"] == SCHEMA
    missing = await server.call("GET", f"/queues/{queue['id']}/schemas/{'0' * 64}")
    assert missing.status_code == 404

    removed = await server.call("PUT", f"/queues/{queue['id']}", json={"schema": None})
    assert "schema" not in removed.json()["queue"]
    assert "schema_id" not in removed.json()["queue"]


async def test_a_number_bound_of_any_size_is_a_bound(server: Running) -> None:
    """An integer bound of 401 digits is a number like any other (it was a 500)."""
    schema = {"n": {"type": "number", "max": 10**400, "min": -(10**400)}}
    r = await server.call("POST", "/v1/queues", json={"name": "big", "schema": schema})
    assert r.status_code == 200, r.text
    qid = r.json()["queue"]["id"]
    ok = await server.call("POST", f"/v1/queues/{qid}/messages", json={"data": '{"n": 1e300}'})
    assert ok.status_code == 200, ok.text
    past = await server.call("POST", f"/v1/queues/{qid}/messages", json={"data": '{"n": 1e400}'})
    assert past.status_code == 422
    assert [e["path"] for e in past.json()["errors"]] == ["$.data.n"]


async def test_malformed_schema_is_422_naming_the_path(server: Running) -> None:
    bad = {"user": {"type": "object", "props": {"age": {"type": "numbr"}}}}
    response = await server.call("POST", "/queues", json={"name": "q", "schema": bad})
    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["errors"]]
    assert any("age" in p for p in paths)
    for empty in ({}, [], "x"):
        r = await server.call("POST", "/queues", json={"name": "q", "schema": empty})
        assert r.status_code == 422, empty
    assert (await server.call("GET", "/queues")).headers["X-Total-Count"] == "0"


async def test_bad_bodies_are_400(server: Running) -> None:
    cases = [
        b"{",
        b'{"name": 5}',
        b"{}",
        b'{"name": ""}',
        b'{"name": "' + b"x" * 257 + b'"}',
        b"[]",
        b'"\xff"',
    ]
    for raw in cases:
        r = await server.call(
            "POST", "/queues", content=raw, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400, (raw, r.text)
        assert r.json()["title"] == "Bad Request"
    assert (await server.call("GET", "/queues")).headers["X-Total-Count"] == "0"


async def test_unknown_queue_is_404_everywhere(server: Running) -> None:
    for method, path in [
        ("GET", "/queues/nope"),
        ("PUT", "/queues/nope"),
        ("DELETE", "/queues/nope"),
        ("GET", "/queues/nope/listeners"),
        ("GET", "/queues/nope/messages"),
        ("POST", "/queues/nope/messages"),
    ]:
        kw: dict[str, Any] = (
            {"json": {"name": "x", "data": "x"}} if method in ("PUT", "POST") else {}
        )
        r = await server.call(method, path, **kw)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json() == {"title": "Not Found", "status": 404, "detail": r.json()["detail"]}


async def test_a_queue_lists_its_listeners_oldest_first_and_no_others(server: Running) -> None:
    qid = (await server.call("POST", "/v1/queues", json={"name": "q"})).json()["queue"]["id"]
    other = (await server.call("POST", "/v1/queues", json={"name": "o"})).json()["queue"]["id"]
    hook = "http://127.0.0.1:9/hook"
    made = []
    for name in ("zeta", "alpha", "mid"):  # names out of order: the order is by age
        for queue_id in (qid, other):
            r = await server.call(
                "POST",
                f"/v1/queues/{queue_id}/listeners",
                json={"name": name, "notify_url": hook, "liveness_url": hook},
            )
            assert r.status_code == 200, r.text
            if queue_id == qid:
                made.append({"id": r.json()["listener"]["id"], "name": name})
    got = (await server.call("GET", f"/v1/queues/{qid}")).json()
    assert got["queue"]["listeners"] == made
    assert [k for k in got["_links"] if k in ("zeta", "alpha", "mid")] == ["zeta", "alpha", "mid"]


async def test_a_listener_named_like_a_sub_resource_is_linked_by_its_id(server: Running) -> None:
    """SPEC §1: links are keyed by the item's name, by id where the name collides; the
    queue's own links (self, listeners, messages, schema) keep their meaning."""
    schema = {"n": {"type": "number"}}
    r = await server.call("POST", "/v1/queues", json={"name": "q", "schema": schema})
    queue = r.json()["queue"]
    here = f"{server.base_url}/v1/queues/{queue['id']}"
    hook = "http://127.0.0.1:9/hook"
    ids = {}
    for name in ("messages", "listeners", "schema", "self", "plain"):
        r = await server.call(
            "POST",
            f"/v1/queues/{queue['id']}/listeners",
            json={"name": name, "notify_url": hook, "liveness_url": hook},
        )
        assert r.status_code == 200, r.text
        ids[name] = r.json()["listener"]["id"]
    links = {k: v["href"] for k, v in (await server.call("GET", here)).json()["_links"].items()}
    assert links == {
        "self": here,
        "listeners": f"{here}/listeners",
        "messages": f"{here}/messages",
        "schema": f"{here}/schemas/{queue['schema_id']}",
        "plain": f"{here}/listeners/{ids['plain']}",
        **{
            ids[n]: f"{here}/listeners/{ids[n]}"
            for n in ("messages", "listeners", "schema", "self")
        },
    }
