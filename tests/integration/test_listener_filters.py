"""Listener filters and static headers (SPEC §10) through the API and real receivers,
on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import Running
from tests.integration.test_delivery import message, post
from tests.polling import until
from tests.receivers import Answer, receiver


async def _listener(server: Running, queue_id: str, url: str, **options: Any) -> dict[str, Any]:
    r = await server.call(
        "POST",
        f"/queues/{queue_id}/listeners",
        json={"name": "l", "notify_url": url + "/hook", "liveness_url": url + "/live", **options},
    )
    assert r.status_code == 200, r.text
    listener: dict[str, Any] = r.json()["listener"]
    return listener


async def test_filter_decides_at_commit_which_messages_get_a_delivery(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    spec = {"names": ["order.*"], "data": {"customer.country": "DE", "total": {"$gte": 10}}}
    async with receiver() as rx:
        picky = await _listener(server, qid, rx.base_url, filter=spec)
        every = await _listener(server, qid, rx.base_url)
        wanted = await post(
            server, qid, '{"customer": {"country": "DE"}, "total": 12}', "order.paid"
        )
        wrong_name = await post(
            server, qid, '{"customer": {"country": "DE"}, "total": 12}', "refund"
        )
        wrong_data = await post(
            server, qid, '{"customer": {"country": "FR"}, "total": 12}', "order.x"
        )
        not_json = await post(server, qid, "plain text", "order.y")
        await rx.wait_for("/hook", 5)  # four for `every`, one for `picky`
        await until(lambda: len(rx.on("/hook")) >= 5)
    for mid in (wrong_name, wrong_data, not_json):
        owed = {d["listener_id"] for d in (await message(server, qid, mid))["deliveries"]}
        assert owed == {every["id"]}  # no delivery entry at all for the filtered listener
    owed = {d["listener_id"] for d in (await message(server, qid, wanted))["deliveries"]}
    assert owed == {every["id"], picky["id"]}
    shown = (await server.call("GET", f"/queues/{qid}/listeners/{picky['id']}")).json()
    assert shown["listener"]["filter"] == spec

    # A PUT changes the filter for messages committed afterwards; null removes it.
    path = f"/queues/{qid}/listeners/{picky['id']}"
    assert (await server.call("PUT", path, json={"filter": {"names": ["refund"]}})).is_success
    refund = await post(server, qid, "{}", "refund")
    owed = {d["listener_id"] for d in (await message(server, qid, refund))["deliveries"]}
    assert picky["id"] in owed
    assert (await server.call("PUT", path, json={"filter": None})).is_success
    anything = await post(server, qid, "{}", None)
    owed = {d["listener_id"] for d in (await message(server, qid, anything))["deliveries"]}
    assert picky["id"] in owed


async def test_a_filtered_listeners_missed_deliveries_are_its_organizations(
    server: Running, queue: dict[str, Any]
) -> None:
    """The filtered fan-out stores each delivery under its message's organization
    (PostgreSQL builds it from the batch, SQLite from the rows): the listener's missed
    messages are listed and redelivered for that organization."""
    qid = queue["id"]
    async with receiver(hook=lambda _p, _n: Answer(503)) as rx:
        picky = await _listener(server, qid, rx.base_url, filter={"names": ["order.*"]})
        now = await post(server, qid, "{}", "order.paid")
        path = f"/queues/{qid}/listeners/{picky['id']}"

        async def missed() -> bool:
            got = (await server.call("GET", path)).json()["listener"]["messages"]
            return bool(got["missed"] == [now])

        await until(missed)
        again = await server.call("POST", path + "/redeliveries", json={})
        assert again.json()["redelivery"] == {"message_ids": [now]}


async def test_filters_compile_once_per_listener_version(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    spec = {"data": {"n": {"$gt": 0}}}
    listener = await _listener(server, qid, "http://127.0.0.1:9", filter=spec)
    cache = server.store.messages._filters
    before = cache.compilations
    for n in range(5):
        await post(server, qid, f'{{"n": {n}}}')
    assert cache.compilations == before + 1
    path = f"/queues/{qid}/listeners/{listener['id']}"
    assert (await server.call("PUT", path, json={"filter": spec})).is_success
    await post(server, qid, '{"n": 1}')
    assert cache.compilations == before + 2  # a new version compiles once more


async def test_malformed_filter_is_400_naming_its_path(
    server: Running, queue: dict[str, Any]
) -> None:
    path = f"/queues/{queue['id']}/listeners"
    urls = {"notify_url": "http://127.0.0.1:9/n", "liveness_url": "http://127.0.0.1:9/l"}
    bad = {"data": {"total": {"$gt": "10"}}}
    r = await server.call("POST", path, json={"name": "l", **urls, "filter": bad})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["path"] == "$.filter.data.total.$gt"
    listener = await _listener(server, queue["id"], "http://127.0.0.1:9")
    r = await server.call("PUT", f"{path}/{listener['id']}", json={"filter": {"names": []}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["path"] == "$.filter.names"
    # A bound no double holds (an integer of 401 digits) is a 400 too, never a 500.
    huge = {"data": {"total": {"$gt": 10**400}}}
    r = await server.call("POST", path, json={"name": "h", **urls, "filter": huge})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["path"] == "$.filter.data.total.$gt"
    r = await server.call("PUT", f"{path}/{listener['id']}", json={"filter": huge})
    assert r.status_code == 400, r.text
    got = await server.call("GET", f"{path}/{listener['id']}")
    assert got.json()["listener"]["filter"] is None
    # A literal nested past 32 levels (it overflowed the stack at every commit).
    deep: Any = 1
    for _ in range(400):
        deep = [deep]
    for method, where, body in (
        ("POST", path, {"name": "d", **urls, "filter": {"data": {"a": {"$eq": deep}}}}),
        ("PUT", f"{path}/{listener['id']}", {"filter": {"data": {"a": deep}}}),
    ):
        r = await server.call(method, where, json=body)
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["path"].startswith("$.filter.data.a")
    got = await server.call("GET", f"{path}/{listener['id']}")
    assert got.json()["listener"]["filter"] is None
    assert [x["name"] for x in (await server.call("GET", path)).json()["listeners"]] == ["l"]


async def test_a_publication_that_breaks_its_group_commit_fails_alone(
    server: Running, queue: dict[str, Any]
) -> None:
    """Publications share a group commit; one that makes it fail with a defect (here a
    listener row whose stored filter is not JSON: no request can store one) answers
    the error alone, and the others sharing its commit are stored all the same."""
    poisoned = queue["id"]
    listener = await _listener(server, poisoned, "http://127.0.0.1:9", filter={"names": ["*"]})
    await server.store.db.write(
        "UPDATE listeners SET filter = 'not json', options_version = options_version + 1"
        " WHERE id = $1 RETURNING id",
        listener["id"],
    )
    r = await server.call("POST", "/queues", json={"name": "healthy"})
    healthy = r.json()["queue"]["id"]

    async def publish(qid: str, n: int) -> int:
        r = await server.call("POST", f"/queues/{qid}/messages", json={"data": str(n)})
        return r.status_code

    statuses = await asyncio.gather(
        *(publish(poisoned if n % 5 == 0 else healthy, n) for n in range(40))
    )
    assert {statuses[n] for n in range(0, 40, 5)} == {500}
    assert [s for n, s in enumerate(statuses) if n % 5] == [200] * 32
    listed = await server.call("GET", f"/queues/{healthy}/messages?per_page=100")
    assert listed.headers["X-Total-Count"] == "32"
    assert (await server.call("GET", f"/queues/{poisoned}/messages")).json()["messages"] == []


async def test_headers_are_sent_with_deliveries_not_probes(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    headers = {"Authorization": "Bearer s3cret", "X-Tenant": "acme"}
    async with receiver() as rx:
        listener = await _listener(server, qid, rx.base_url, headers=headers)
        await post(server, qid)
        [arrival] = await rx.wait_for("/hook", 1)
        [probe, *_] = await rx.wait_for("/live", 1)
    assert arrival.headers["Authorization"] == "Bearer s3cret"
    assert arrival.headers["X-Tenant"] == "acme"
    assert "Authorization" not in probe.headers and "X-Tenant" not in probe.headers
    path = f"/queues/{qid}/listeners/{listener['id']}"
    assert (await server.call("GET", path)).json()["listener"]["headers"] == headers
    # Lists never show them; a PUT replaces the whole map.
    listed = (await server.call("GET", f"/queues/{qid}/listeners")).json()["listeners"][0]
    assert "headers" not in listed
    assert (await server.call("PUT", path, json={"headers": {"X-Only": "1"}})).is_success
    assert (await server.call("GET", path)).json()["listener"]["headers"] == {"X-Only": "1"}


async def test_headers_hidden_from_read_only_keys(server: Running, queue: dict[str, Any]) -> None:
    listener = await _listener(server, queue["id"], "http://127.0.0.1:9", headers={"X-A": "b"})
    scopes = [{"resource": r, "access": "read", "targets": ["*"]} for r in ("queues", "listeners")]
    created = await server.call("POST", "/api_keys", json={"scopes": scopes})
    key = created.json()["api_key"]
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-API-KEY": key}) as client:
        r = await client.get(f"/queues/{queue['id']}/listeners/{listener['id']}")
    assert r.status_code == 200
    assert r.json()["listener"]["secret"] is None
    assert "headers" not in r.json()["listener"]


async def test_refused_headers_are_400(server: Running, queue: dict[str, Any]) -> None:
    path = f"/queues/{queue['id']}/listeners"
    urls = {"notify_url": "http://127.0.0.1:9/n", "liveness_url": "http://127.0.0.1:9/l"}
    refused: list[dict[str, str]] = [
        {"Host": "x"},
        {"content-TYPE": "x"},
        {"Content-Length": "1"},
        {"Transfer-Encoding": "chunked"},
        {"Connection": "close"},
        {"Webhook-Signature": "v1,forged"},
        {"webhook-anything": "x"},
        {"Bad Name": "x"},
        {"X-A": "1", "x-a": "2"},
        {"X-A": "tab\there"},
        {"X-A": "x" * 1025},
        {f"X-{i}": "1" for i in range(21)},
    ]
    for headers in refused:
        r = await server.call("POST", path, json={"name": "l", **urls, "headers": headers})
        assert r.status_code == 400, (headers, r.text)
    ok = {f"X-{i}": "v" * 1024 for i in range(20)}
    r = await server.call("POST", path, json={"name": "l", **urls, "headers": ok})
    assert r.status_code == 200, r.text
