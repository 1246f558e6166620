"""Integer fields take whole numbers written with a fraction or an exponent (157.0,
1.57e2), as JSON Schema and so /openapi.json's ``"type": "integer"`` do; anything
else in them is a 400 naming the field, and the rest of the body keeps its meaning.

Found by schemathesis with more examples than CI runs: ``max_in_flight: 157.0`` was
refused with a 400 although the published schema allows it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Running


async def _listener(server: Running, qid: str, **fields: Any) -> Any:
    body = {
        "name": "l",
        "notify_url": "http://127.0.0.1:9/n",
        "liveness_url": "http://127.0.0.1:9/l",
        **fields,
    }
    return await server.call("POST", f"/queues/{qid}/listeners", json=body)


async def _raw(server: Running, method: str, path: str, body: str) -> Any:
    headers = {"content-type": "application/json"}
    return await server.call(method, path, content=body.encode(), headers=headers)


async def test_whole_floats_fill_integer_fields(server: Running, queue: dict[str, Any]) -> None:
    qid = queue["id"]
    created = await _listener(server, qid, max_in_flight=157.0, rate_limit=7.5)
    assert created.status_code == 200, created.text
    lid = created.json()["listener"]["id"]
    path = f"/queues/{qid}/listeners/{lid}"
    got = (await server.call("GET", path)).json()["listener"]
    # The float field beside it keeps its fraction: only whole numbers became ints.
    assert (got["max_in_flight"], got["rate_limit"]) == (157, 7.5)

    updated = await _raw(server, "PUT", path, '{"max_in_flight": 1.2e1}')
    assert updated.status_code == 200, updated.text
    assert (await server.call("GET", path)).json()["listener"]["max_in_flight"] == 12

    rotated = await server.call("POST", f"{path}/secret", json={"grace_seconds": 60.0})
    assert rotated.status_code == 200, rotated.text
    expires = (await server.call("GET", path)).json()["listener"]["previous_secret_expires_at"]
    assert expires is not None

    batch = await server.call(
        "POST",
        f"/queues/{qid}/messages/batch",
        json={"messages": [{"data": "x", "deliver_at": 5.0}]},
    )
    assert batch.status_code == 200, batch.text


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"max_in_flight": 2.5}', "$.max_in_flight"),
        ('{"max_in_flight": 300.0}', "$.max_in_flight"),  # whole, but past the bound
        ('{"max_in_flight": 1e999}', "$.max_in_flight"),  # infinite as a double
        ('{"max_in_flight": 1e999999999}', "$.max_in_flight"),  # no int is built for it
        ('{"max_in_flight": 4.0, "rate_limit": 1e999}', "$.rate_limit"),  # not made null
        ('{"max_in_flight": 4.0, "ordered": 1.0}', "$.ordered"),
    ],
)
async def test_other_numbers_in_integer_fields_are_400s_that_change_nothing(
    server: Running, queue: dict[str, Any], body: str, path: str
) -> None:
    qid = queue["id"]
    lid = (await _listener(server, qid, max_in_flight=3)).json()["listener"]["id"]
    at = f"/queues/{qid}/listeners/{lid}"

    async def options() -> list[Any]:
        shown = (await server.call("GET", at)).json()["listener"]
        return [shown[k] for k in ("name", "max_in_flight", "rate_limit", "ordered")]

    before = await options()
    r = await _raw(server, "PUT", at, body)
    assert r.status_code == 400, r.text
    assert [e["path"] for e in r.json()["errors"]] == [path]
    assert await options() == before == ["l", 3, None, False]


async def test_a_batch_names_the_item_whose_integer_is_not_whole(
    server: Running, queue: dict[str, Any]
) -> None:
    body = {"messages": [{"data": "a", "deliver_at": 5.0}, {"data": "b", "deliver_at": 5.5}]}
    r = await server.call("POST", f"/queues/{queue['id']}/messages/batch", json=body)
    assert r.status_code == 400, r.text
    assert [e["path"] for e in r.json()["errors"]] == ["$.messages[1].deliver_at"]
    listed = await server.call("GET", f"/queues/{queue['id']}/messages")
    assert listed.json()["messages"] == []
