"""API keys and api clients (SPEC §2, §3): shown once, redacted, scoped, revocable."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import BOOTSTRAP_KEY, Running
from tests.integration.test_access import every, make_key
from tests.polling import until
from tidings.domain.scopes import PROTECTED, RESOURCES


def as_key(key: str) -> dict[str, str]:
    return {"X-API-KEY": key}


async def test_key_is_shown_once_then_redacted(server: Running) -> None:
    before = int(time.time() * 1000)
    created = await server.call("POST", "/v1/api_keys", json={"name": "ci"})
    assert created.status_code == 200
    full = created.json()["api_key"]
    assert len(full) >= 32
    href = created.json()["_links"]["self"]["href"]
    key_id = href.rsplit("/", 1)[1]
    assert href == f"{server.base_url}/v1/api_keys/{key_id}"

    got = await server.call("GET", f"/v1/api_keys/{key_id}")
    assert got.status_code == 200
    key = got.json()["api_key"]
    assert key == {
        "id": key_id,
        "name": "ci",
        "status": "enabled",
        "scopes": [
            {"resource": r, "access": "write", "targets": ["*"]}
            for r in RESOURCES
            if r not in PROTECTED
        ],
        "created_at": key["created_at"],
        "updated_at": key["created_at"],
        "last_used_at": None,
        "key": full[:3],
    }
    assert key["created_at"] >= before
    listed = await server.call("GET", "/v1/api_keys")
    assert listed.headers["X-Total-Count"] == "2"  # the operator's and this one
    assert full not in listed.text and full not in got.text
    assert listed.json()["_links"]["ci"]["href"] == href
    assert [k["key"] for k in listed.json()["api_keys"]] == [BOOTSTRAP_KEY[:3], full[:3]]

    # Using it is recorded (off the request path, at most once a minute).
    assert (await server.call("GET", "/queues", headers=as_key(full))).status_code == 200

    async def recorded() -> bool:
        got = await server.call("GET", f"/api_keys/{key_id}")
        return got.json()["api_key"]["last_used_at"] is not None

    await until(recorded, 10)


async def test_key_without_name_has_null_name(server: Running) -> None:
    key_id, _ = await make_key(server, {})
    key = (await server.call("GET", f"/api_keys/{key_id}")).json()
    assert key["api_key"]["name"] is None
    assert key["_links"]["self"]["href"].endswith(key_id)


async def test_disable_enable_and_delete_take_effect_at_once(server: Running) -> None:
    key_id, full = await make_key(server, {"name": "app"})
    assert (await server.call("GET", "/queues", headers=as_key(full))).status_code == 200

    disabled = await server.call("PUT", f"/api_keys/{key_id}", json={"status": "disabled"})
    assert disabled.json()["api_key"]["status"] == "disabled"
    assert disabled.json()["api_key"]["name"] == "app"  # untouched fields stay
    refused = await server.call("GET", "/queues", headers=as_key(full))
    assert refused.status_code == 401
    assert refused.json() == {
        "title": "Unauthorized",
        "status": 401,
        "detail": "This API key is unknown or disabled.",
    }

    await server.call("PUT", f"/api_keys/{key_id}", json={"status": "enabled"})
    assert (await server.call("GET", "/queues", headers=as_key(full))).status_code == 200

    deleted = await server.call("DELETE", f"/api_keys/{key_id}")
    assert deleted.status_code == 200
    assert deleted.json() == {"_links": {"self": {"href": f"{server.base_url}/api_keys/{key_id}"}}}
    assert (await server.call("GET", "/queues", headers=as_key(full))).status_code == 401
    assert (await server.call("GET", f"/api_keys/{key_id}")).status_code == 404
    assert (await server.call("DELETE", f"/api_keys/{key_id}")).status_code == 404


async def test_created_disabled_key_is_refused(server: Running) -> None:
    _, full = await make_key(server, {"status": "disabled"})
    assert (await server.call("GET", "/queues", headers=as_key(full))).status_code == 401


async def test_scopes_replace_the_whole_list_at_once(server: Running) -> None:
    key_id, full = await make_key(server, {})
    assert (
        await server.call("POST", "/queues", headers=as_key(full), json={"name": "a"})
    ).is_success
    read_only = [{"resource": "queues", "access": "read", "targets": ["*"]}]
    updated = await server.call("PUT", f"/api_keys/{key_id}", json={"scopes": read_only})
    assert updated.json()["api_key"]["scopes"] == read_only
    assert (await server.call("GET", "/queues", headers=as_key(full))).status_code == 200
    denied = await server.call("POST", "/queues", headers=as_key(full), json={"name": "b"})
    assert denied.status_code == 403
    assert "write scope for queues" in denied.json()["detail"]
    assert (await server.call("GET", "/messages", headers=as_key(full))).status_code == 403
    assert (await server.call("GET", "/queues")).headers["X-Total-Count"] == "1"

    # An empty list leaves a key that may do nothing.
    await server.call("PUT", f"/api_keys/{key_id}", json={"scopes": []})
    assert (await server.call("GET", "/queues", headers=as_key(full))).status_code == 403


async def test_protected_scopes_are_422_and_change_nothing(server: Running) -> None:
    for resource in sorted(PROTECTED):
        scopes = [
            {"resource": "queues", "access": "read", "targets": ["*"]},
            {"resource": resource, "access": "read", "targets": ["*"]},
        ]
        created = await server.call("POST", "/api_keys", json={"scopes": scopes})
        assert created.status_code == 422
        assert created.json()["errors"] == [
            {
                "path": "$.scopes[1].resource",
                "message": f"{resource} cannot be granted through the API",
            }
        ]
    assert (await server.call("GET", "/api_keys")).headers["X-Total-Count"] == "1"

    key_id, _ = await make_key(server, {"name": "plain"})
    bad = [{"resource": "api_keys", "access": "write", "targets": ["*"]}]
    assert (
        await server.call("PUT", f"/api_keys/{key_id}", json={"scopes": bad, "name": "x"})
    ).status_code == 422
    key = (await server.call("GET", f"/api_keys/{key_id}")).json()["api_key"]
    assert key["name"] == "plain"
    assert all(s["resource"] not in PROTECTED for s in key["scopes"])


async def test_malformed_scopes_are_400(server: Running) -> None:
    bodies: list[Any] = [
        {"scopes": [{"resource": "nope", "access": "read", "targets": ["*"]}]},
        {"scopes": [{"resource": "queues", "access": "admin", "targets": ["*"]}]},
        {"scopes": [{"resource": "queues", "access": "read", "targets": []}]},
        {"scopes": [{"resource": "queues", "access": "read"}]},
        {"scopes": [{"resource": "queues", "access": "read", "targets": ["*"], "x": 1}]},
        {"scopes": "all"},
        {"status": "paused"},
        {"name": ""},
    ]
    for body in bodies:
        response = await server.call("POST", "/api_keys", json=body)
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["path"].startswith("$."), body
    assert (await server.call("GET", "/api_keys")).headers["X-Total-Count"] == "1"


async def test_key_limited_to_a_queue(server: Running) -> None:
    mine = (await server.call("POST", "/queues", json={"name": "mine"})).json()["queue"]["id"]
    other = (await server.call("POST", "/queues", json={"name": "other"})).json()["queue"]["id"]
    listener = {"notify_url": "http://127.0.0.1:9/n", "liveness_url": "http://127.0.0.1:9/l"}
    for queue_id in (mine, other):
        for i in range(2):
            await server.call("POST", f"/queues/{queue_id}/messages", json={"data": f"{i}"})
        await server.call(
            "POST", f"/queues/{queue_id}/listeners", json={"name": queue_id, **listener}
        )
    _, full = await make_key(server, {"scopes": every("write", [mine])})
    key = as_key(full)

    queues = await server.call("GET", "/queues", headers=key)
    assert queues.json()["queues"] == [{"id": mine, "name": "mine"}]
    assert queues.headers["X-Total-Count"] == "1"
    messages = await server.call("GET", "/messages", headers=key)
    assert {m["queue_id"] for m in messages.json()["messages"]} == {mine}
    assert messages.headers["X-Total-Count"] == "2"
    listeners = await server.call("GET", "/listeners", headers=key)
    assert [ls["queue_id"] for ls in listeners.json()["listeners"]] == [mine]

    events = (await server.call("GET", "/events", headers=key)).json()["events"]
    assert {e["type"] for e in events} >= {"queue_added", "listener_added", "message_added"}
    assert {e["queue"]["id"] for e in events} == {mine}
    everything = (await server.call("GET", "/events")).json()["events"]
    assert {e["queue"]["id"] for e in everything if "queue" in e} == {mine, other}
    # Counts cover the whole organization: not for a key limited to some queues.
    assert (await server.call("GET", "/stats/messages", headers=key)).status_code == 403

    posted = await server.call("POST", f"/queues/{mine}/messages", headers=key, json={"data": "x"})
    assert posted.status_code == 200
    refused = await server.call(
        "POST", f"/queues/{other}/messages", headers=key, json={"data": "x"}
    )
    assert refused.status_code == 403
    # New queues would fall outside the key's targets.
    assert (
        await server.call("POST", "/queues", headers=key, json={"name": "new"})
    ).status_code == 403
    assert (await server.call("GET", "/queues")).headers["X-Total-Count"] == "2"


async def test_key_limited_to_one_listener_sees_only_it(server: Running) -> None:
    queue = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
    body = {"notify_url": "http://127.0.0.1:9/n", "liveness_url": "http://127.0.0.1:9/l"}
    ids = [
        (await server.call("POST", f"/queues/{queue}/listeners", json={"name": n, **body})).json()[
            "listener"
        ]["id"]
        for n in ("a", "b")
    ]
    scopes = [{"resource": "listeners", "access": "read", "targets": [ids[1]]}]
    _, full = await make_key(server, {"scopes": scopes})
    listed = await server.call("GET", "/listeners", headers=as_key(full))
    assert [ls["id"] for ls in listed.json()["listeners"]] == [ids[1]]
    got = await server.call("GET", f"/queues/{queue}/listeners/{ids[1]}", headers=as_key(full))
    assert got.status_code == 200
    denied = await server.call("GET", f"/queues/{queue}/listeners/{ids[0]}", headers=as_key(full))
    assert denied.status_code == 403
    # The queue's own list is a request on the whole queue.
    assert (
        await server.call("GET", f"/queues/{queue}/listeners", headers=as_key(full))
    ).status_code == 403


async def test_api_clients_create_and_rename(server: Running) -> None:
    await server.call("POST", "/queues", json={"name": "ours"})
    created = await server.call("POST", "/v1/api_clients", json={"name": "acme"})
    assert created.status_code == 200
    client = created.json()["api_client"]
    assert client["name"] == "acme"
    assert created.json()["_links"]["self"]["href"].endswith(f"/v1/api_clients/{client['id']}")
    theirs = as_key(created.json()["api_key"])
    assert (await server.call("GET", "/queues", headers=theirs)).json()["queues"] == []
    # The new organization's key is an operator key: it may manage keys.
    assert (await server.call("GET", "/api_keys", headers=theirs)).headers["X-Total-Count"] == "1"

    duplicate = await server.call("POST", "/api_clients", json={"name": "acme"})
    assert duplicate.status_code == 422
    renamed = await server.call(
        "PUT", f"/api_clients/{client['id']}", headers=theirs, json={"name": "acme-2"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["api_client"] == {
        "id": client["id"],
        "name": "acme-2",
        "alerts_queue_id": None,
    }
    # Another organization's id is answered like an unknown one.
    foreign = await server.call("PUT", f"/api_clients/{client['id']}", json={"name": "x"})
    unknown = await server.call("PUT", "/api_clients/nope", json={"name": "x"})
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()
    clash = await server.call(
        "PUT", f"/api_clients/{client['id']}", headers=theirs, json={"name": "default"}
    )
    assert clash.status_code == 422


async def test_openapi_documents_key_endpoints(server: Running) -> None:
    spec = (await server.call("GET", "/openapi.json")).json()
    for path in ("/v1/api_keys", "/api_keys/{api_key_id}", "/api_clients"):
        assert path in spec["paths"]
    scope = spec["components"]["schemas"]["ScopeIn"]
    assert set(scope["properties"]["resource"]["enum"]) == set(RESOURCES)
