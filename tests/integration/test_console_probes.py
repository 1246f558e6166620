"""What the console relies on to learn what a key may change (web/console/api.js).

It sends each write it would offer with a body that is not an object (``[]``): the API
checks the key's scope before it reads a body, so a key without the scope gets 403
and a key with it gets 400, and nothing changes either way.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Running

READ_ONLY = [
    {"resource": r, "access": "read", "targets": ["*"]}
    for r in ("queues", "listeners", "messages", "events", "stats")
]


async def _post(server: Running, path: str, body: Any, key: str | None = None) -> Any:
    headers = {"X-API-KEY": key} if key else {}
    answer = await server.call("POST", path, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_write_probe_answers_403_without_scope_and_400_with_it(server: Running) -> None:
    queue = (await _post(server, "/v1/queues", {"name": "orders"}))["queue"]["id"]
    # The message first: no delivery is owed to the later listener, so no attempt records
    # an event while the test compares them.
    message = (await _post(server, f"/v1/queues/{queue}/messages", {"data": "x"}))["message"]["id"]
    body = {
        "name": "l",
        "notify_url": "http://127.0.0.1:9/n",
        "liveness_url": "http://127.0.0.1:9/l",
    }
    listener = (await _post(server, f"/v1/queues/{queue}/listeners", body))["listener"]["id"]
    read_only = (await _post(server, "/v1/api_keys", {"scopes": READ_ONLY}))["api_key"]
    default = (await _post(server, "/v1/api_keys", {}))["api_key"]  # write, not api_keys
    probes = [
        ("POST", "/queues"),
        ("PUT", f"/queues/{queue}"),
        ("POST", f"/queues/{queue}/listeners"),
        ("PUT", f"/queues/{queue}/listeners/{listener}"),
        ("POST", f"/queues/{queue}/messages"),
        ("PUT", f"/queues/{queue}/messages/{message}"),
    ]
    events = (await server.call("GET", "/v1/events", params={"limit": 1000})).json()["events"]

    async def status(method: str, path: str, key: str) -> int:
        answer = await server.call(method, path, json=[], headers={"X-API-KEY": key})
        return answer.status_code

    for method, path in probes:
        assert await status(method, path, read_only) == 403, (method, path)
        assert await status(method, path, default) == 400, (method, path)
    assert await status("POST", "/api_keys", default) == 403
    assert await status("POST", "/api_keys", server.api_key) == 400

    after = (await server.call("GET", "/v1/events", params={"limit": 1000})).json()["events"]
    assert after == events  # nothing was changed, so nothing was recorded
