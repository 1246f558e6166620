"""The signing secret goes only to keys with write access to the listener (SPEC §3):
a read-only key sees ``"secret": null`` and could not forge deliveries. Both backends."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Running
from tidings.client import AsyncClient
from tidings.domain.scopes import PROTECTED, RESOURCES

_URLS = {"notify_url": "http://127.0.0.1:9/n", "liveness_url": "http://127.0.0.1:9/l"}


async def _key(server: Running, scopes: list[dict[str, Any]]) -> httpx.AsyncClient:
    created = await server.call("POST", "/api_keys", json={"scopes": scopes})
    assert created.status_code == 200, created.text
    headers = {"X-API-KEY": created.json()["api_key"]}
    return httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=10)


def _every(access: str, targets: list[str]) -> list[dict[str, Any]]:
    return [
        {"resource": r, "access": access, "targets": targets}
        for r in RESOURCES
        if r not in PROTECTED
    ]


async def test_secret_only_for_write_access(server: Running, queue: dict[str, Any]) -> None:
    path = f"/queues/{queue['id']}/listeners"
    made = [(await server.call("POST", path, json={"name": n, **_URLS})).json() for n in "ab"]
    (a, secret_a), (b, _) = ((m["listener"]["id"], m["listener"]["secret"]) for m in made)
    read_only = _every("read", ["*"])
    # Write on listener b only, read on everything else.
    write_b = [*read_only, {"resource": "listeners", "access": "write", "targets": [b]}]
    # Write on the listener's queue counts as write on the listener (SPEC §2 targets).
    write_queue = [
        *read_only,
        {"resource": "listeners", "access": "write", "targets": [queue["id"]]},
    ]
    cases = [
        (_every("write", ["*"]), secret_a),
        (write_queue, secret_a),
        (read_only, None),
        (write_b, None),
        # Only the two scopes the dashboard key had.
        (
            [
                {"resource": "queues", "access": "read", "targets": ["*"]},
                {"resource": "listeners", "access": "read", "targets": ["*"]},
            ],
            None,
        ),
    ]
    for scopes, expected in cases:
        async with await _key(server, scopes) as client:
            for prefix in ("/v1", ""):
                got = await client.get(f"{prefix}{path}/{a}")
                assert got.status_code == 200, got.text
                listener = got.json()["listener"]
                assert "secret" in listener, scopes
                assert listener["secret"] == expected, scopes
                # Nothing else gives it away.
                for url in (path, "/listeners", f"/queues/{queue['id']}"):
                    assert secret_a not in (await client.get(prefix + url)).text, url
    # The operator key sees it, as before.
    operator = (await server.call("GET", f"{path}/{a}")).json()["listener"]
    assert operator["secret"] == secret_a
    # The typed client says the same: ``secret`` is None for a read-only key.
    reader = (await server.call("POST", "/api_keys", json={"scopes": read_only})).json()
    async with AsyncClient(server.base_url, reader["api_key"]) as tidings:
        assert (await tidings.get_listener(queue["id"], a)).secret is None
    async with AsyncClient(server.base_url, server.api_key) as tidings:
        assert (await tidings.get_listener(queue["id"], a)).secret == secret_a


async def test_openapi_says_secret_may_be_null(server: Running) -> None:
    doc = (await server.call("GET", "/openapi.json")).json()
    operation = doc["paths"]["/v1/queues/{queue_id}/listeners/{listener_id}"]["get"]
    envelope = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schemas = doc["components"]["schemas"]
    listener_ref = schemas[envelope.rsplit("/", 1)[1]]["properties"]["listener"]["$ref"]
    listener = schemas[listener_ref.rsplit("/", 1)[1]]
    assert "secret" in listener["required"]
    assert {"type": "null"} in listener["properties"]["secret"]["anyOf"]
    # The list items carry no secret at all.
    lists = doc["paths"]["/v1/listeners"]["get"]["responses"]["200"]["content"]
    items_ref = schemas[lists["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    item = schemas[items_ref["properties"]["listeners"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert "secret" not in item["properties"]
