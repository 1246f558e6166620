"""Listeners: CRUD, the full shape, secrets, URL rules, and the seed page's example."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Running


def _body(name: str = "myapp.io/deletion-request-listener", port: int = 9) -> dict[str, str]:
    return {
        "name": name,
        "notify_url": f"http://127.0.0.1:{port}/deletion/listener",
        "liveness_url": f"http://127.0.0.1:{port}/live",
    }


async def test_seed_example_add_a_listener(server: Running, queue: dict[str, Any]) -> None:
    """The discue page's curl example, with a local URL in place of myapp.io."""
    response = await server.client.post(
        f"/v1/queues/{queue['id']}/listeners",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        json=_body(),
    )
    assert response.status_code == 200
    body = response.json()
    listener = body["listener"]
    assert set(listener) == {"id", "name", "secret"}
    assert listener["name"] == "myapp.io/deletion-request-listener"
    assert listener["secret"].startswith("whsec_")
    assert body["_links"]["self"]["href"] == (
        f"{server.base_url}/v1/queues/{queue['id']}/listeners/{listener['id']}"
    )


async def test_full_listener_shape_and_lists(server: Running, queue: dict[str, Any]) -> None:
    created = (await server.call("POST", f"/queues/{queue['id']}/listeners", json=_body())).json()
    lid = created["listener"]["id"]
    got = (await server.call("GET", f"/queues/{queue['id']}/listeners/{lid}")).json()["listener"]
    assert got == {
        "id": lid,
        "name": "myapp.io/deletion-request-listener",
        "queue_id": queue["id"],
        "notify_url": "http://127.0.0.1:9/deletion/listener",
        "liveness_url": "http://127.0.0.1:9/live",
        "liveness": got["liveness"],
        "messages": {"acknowledged_count": 0, "missed": [], "missed_count": 0},
        "status": "enabled",
        "health": got["health"],
        "secret": created["listener"]["secret"],
        # The options of SPEC §10, at their defaults.
        "max_in_flight": 16,
        "rate_limit": None,
        "ordered": False,
        "filter": None,
        "signature_scheme": "v1",
        "previous_secret_expires_at": None,
        "headers": {},
    }
    assert got["liveness"]["state"] in ("unknown", "down", "stable", "unstable")
    assert got["health"]["state"] == "healthy" and got["health"]["disabled_reason"] is None
    listed = (await server.call("GET", f"/queues/{queue['id']}/listeners")).json()["listeners"]
    assert [x["id"] for x in listed] == [lid]
    assert "secret" not in listed[0]
    everywhere = await server.call("GET", "/listeners")
    assert [x["id"] for x in everywhere.json()["listeners"]] == [lid]
    assert everywhere.headers["X-Total-Count"] == "1"
    q = (await server.call("GET", f"/queues/{queue['id']}")).json()
    assert q["queue"]["listeners"] == [{"id": lid, "name": "myapp.io/deletion-request-listener"}]


async def test_one_listener_reads_as_its_list_item(server: Running, queue: dict[str, Any]) -> None:
    """Every option set and every kind of value (a rate of 1/3 to all its digits, a
    name beyond ASCII, JSON options): the GET of one (read on its own path, packed
    on SQLite) shows what the list shows, plus the secret and the headers."""
    options = {
        "rate_limit": 1 / 3,
        "max_in_flight": 3,
        "ordered": True,
        "headers": {"X-Tenant": 'a "quoted" value'},
        "filter": {"names": ["order.*"]},
    }
    body = {**_body("émission/ünïcode 🚀"), **options}
    created = (await server.call("POST", f"/queues/{queue['id']}/listeners", json=body)).json()
    lid = created["listener"]["id"]
    got = (await server.call("GET", f"/queues/{queue['id']}/listeners/{lid}")).json()["listener"]
    assert {name: got[name] for name in options} == options
    assert got["name"] == "émission/ünïcode 🚀" and got["secret"] == created["listener"]["secret"]
    (listed,) = (await server.call("GET", f"/queues/{queue['id']}/listeners")).json()["listeners"]
    # (liveness left out: a probe of the closed port may land between the two reads)
    del got["liveness"], listed["liveness"]
    assert {**listed, "secret": got["secret"], "headers": got["headers"]} == got


async def test_listeners_read_in_one_turn_each_get_their_own(
    server: Running, queue: dict[str, Any]
) -> None:
    """Reads of several listeners asked in one turn of the loop run as one statement on
    SQLite (storage/sqlite.py ``_Inline``, with the packed row): each gets its own."""
    rates = [0.25, 1 / 3, 7.5, None]
    ids = []
    for i, rate in enumerate(rates):
        body = {**_body(f"l{i}"), "rate_limit": rate}
        created = await server.call("POST", f"/queues/{queue['id']}/listeners", json=body)
        ids.append(created.json()["listener"]["id"])
    org = await server.store.organizations.get_by_name("default")
    assert org is not None
    read = await asyncio.gather(
        *(server.store.listeners.get(org.id, queue["id"], lid) for lid in [*ids, *ids])
    )
    assert [(x.id, x.name, x.options.rate_limit) for x in read] == 2 * [
        (lid, f"l{i}", rate) for i, (lid, rate) in enumerate(zip(ids, rates, strict=True))
    ]


async def test_update_and_delete_listener(server: Running, queue: dict[str, Any]) -> None:
    lid = await server.call("POST", f"/queues/{queue['id']}/listeners", json=_body())
    lid = lid.json()["listener"]["id"]
    path = f"/queues/{queue['id']}/listeners/{lid}"
    r = await server.call(
        "PUT", path, json={"name": "renamed", "notify_url": "http://127.0.0.1:10/n"}
    )
    assert r.status_code == 200
    assert r.json()["listener"] == {"id": lid, "name": "renamed"}
    got = (await server.call("GET", path)).json()["listener"]
    assert got["notify_url"] == "http://127.0.0.1:10/n"
    assert got["liveness_url"] == "http://127.0.0.1:9/live"
    assert (await server.call("DELETE", path)).status_code == 200
    assert (await server.call("GET", path)).status_code == 404
    assert (await server.call("DELETE", path)).status_code == 404


async def test_listener_requires_all_fields_and_valid_urls(
    server: Running, queue: dict[str, Any]
) -> None:
    path = f"/queues/{queue['id']}/listeners"
    for missing in ("name", "notify_url", "liveness_url"):
        body = _body()
        del body[missing]
        assert (await server.call("POST", path, json=body)).status_code == 400, missing
    for url in ("ftp://127.0.0.1/x", "not a url", "/relative", "http://"):
        body = {**_body(), "notify_url": url}
        assert (await server.call("POST", path, json=body)).status_code == 400, url
    assert (await server.call("GET", path)).headers["X-Total-Count"] == "0"


async def test_private_destinations_are_422_without_allow_list(
    server: Running, queue: dict[str, Any]
) -> None:
    from dataclasses import replace

    from tidings.destinations import DestinationPolicy

    # The test server allows 127/8; swap in the default policy.
    state = server.app.state.tidings
    state.services = replace(state.services, destinations=DestinationPolicy(()))
    path = f"/queues/{queue['id']}/listeners"
    for url in (
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://169.254.169.254/x",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
    ):
        r = await server.call("POST", path, json={**_body(), "notify_url": url})
        assert r.status_code == 422, (url, r.text)
        assert "TIDINGS_ALLOWED_NETWORKS" in r.json()["detail"]
    r = await server.call(
        "POST",
        path,
        json={
            **_body(),
            "notify_url": "http://does-not-resolve.invalid/x",
            "liveness_url": "http://does-not-resolve.invalid/live",
        },
    )
    assert r.status_code == 200


async def test_unknown_listener_is_404(server: Running, queue: dict[str, Any]) -> None:
    path = f"/queues/{queue['id']}/listeners/nope"
    for method in ("GET", "PUT", "DELETE"):
        kw: dict[str, Any] = {"json": {"name": "x"}} if method == "PUT" else {}
        assert (await server.call(method, path, **kw)).status_code == 404
