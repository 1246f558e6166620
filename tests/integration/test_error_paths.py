"""Every error path of the core endpoints answers the documented problem and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Running

LISTENER = {
    "name": "l",
    "notify_url": "http://127.0.0.1:9/n",
    "liveness_url": "http://127.0.0.1:9/l",
}


async def _world(server: Running) -> dict[str, str]:
    qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
    lid = (await server.call("POST", f"/queues/{qid}/listeners", json=LISTENER)).json()
    mid = (await server.call("POST", f"/queues/{qid}/messages", json={"data": "x"})).json()
    return {"q": qid, "l": lid["listener"]["id"], "m": mid["message"]["id"]}


async def _snapshot(server: Running) -> Any:
    """What a client stored (not what the engine changes by itself, like probe counts)."""
    listeners = (await server.call("GET", "/listeners")).json()["listeners"]
    messages = (await server.call("GET", "/messages")).json()["messages"]
    return (
        (await server.call("GET", "/queues")).json(),
        [(x["id"], x["name"], x["notify_url"], x["liveness_url"]) for x in listeners],
        [(m["id"], m["name"], m["data"]) for m in messages],
    )


async def test_bad_bodies_on_every_write_endpoint_are_400(server: Running) -> None:
    w = await _world(server)
    before = await _snapshot(server)
    cases: list[tuple[str, str, Any]] = [
        ("PUT", f"/queues/{w['q']}", {"name": 5}),
        ("PUT", f"/queues/{w['q']}", {"name": ""}),
        ("POST", f"/queues/{w['q']}/listeners", {**LISTENER, "notify_url": 7}),
        ("PUT", f"/queues/{w['q']}/listeners/{w['l']}", {"notify_url": "gopher://x"}),
        ("PUT", f"/queues/{w['q']}/listeners/{w['l']}", {"name": ["x"]}),
        ("POST", f"/queues/{w['q']}/listeners/{w['l']}/redeliveries", {"message_ids": "x"}),
        ("POST", f"/queues/{w['q']}/listeners/{w['l']}/redeliveries", {"message_ids": [1]}),
        ("POST", f"/queues/{w['q']}/messages", {"data": None}),
        ("PUT", f"/queues/{w['q']}/messages/{w['m']}", {}),
        ("PUT", f"/queues/{w['q']}/messages/{w['m']}", {"name": 1}),
    ]
    for method, path, body in cases:
        r = await server.call(method, path, json=body)
        assert r.status_code == 400, (method, path, body, r.text)
        problem = r.json()
        assert problem["title"] == "Bad Request" and problem["status"] == 400
        assert problem["detail"]
    for method, path, _ in cases:
        r = await server.call(
            method, path, content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400, (method, path)
    assert await _snapshot(server) == before


async def test_unknown_ids_below_a_queue_are_404(server: Running) -> None:
    w = await _world(server)
    q = w["q"]
    cases = [
        ("GET", f"/queues/{q}/schemas/{'a' * 64}"),
        ("GET", f"/queues/{q}/listeners/nope"),
        ("POST", f"/queues/{q}/listeners/nope/redeliveries"),
        ("GET", f"/queues/{q}/messages/nope"),
        ("PUT", f"/queues/{q}/messages/nope"),
        ("DELETE", f"/queues/{q}/messages/nope"),
        ("GET", f"/queues/nope/listeners/{w['l']}"),
        ("GET", f"/queues/nope/messages/{w['m']}"),
        ("POST", "/queues/nope/listeners"),
    ]
    for method, path in cases:
        kw = {"json": {"name": "x", **LISTENER}} if method in ("POST", "PUT") else {}
        r = await server.call(method, path, **kw)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["title"] == "Not Found"


async def test_wrong_methods_are_405_with_allow(server: Running) -> None:
    w = await _world(server)
    cases = {
        "/queues": ("DELETE", {"GET", "POST"}),
        f"/queues/{w['q']}": ("POST", {"GET", "PUT", "DELETE"}),
        f"/queues/{w['q']}/listeners/{w['l']}/redeliveries": ("GET", {"POST"}),
        "/messages": ("POST", {"GET"}),
        "/v1/listeners": ("DELETE", {"GET"}),
        "/health": ("POST", {"GET"}),
    }
    for path, (method, allowed) in cases.items():
        r = await server.call(method, path)
        assert r.status_code == 405, (method, path)
        assert set(r.headers["Allow"].replace(" ", "").split(",")) >= allowed
        assert r.json()["title"] == "Method Not Allowed"


async def test_schema_rules_on_update_are_422(server: Running) -> None:
    w = await _world(server)
    r = await server.call("PUT", f"/queues/{w['q']}", json={"schema": {"a": {"type": "nope"}}})
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"].startswith("$.schema.a")
    assert "schema" not in (await server.call("GET", f"/queues/{w['q']}")).json()["queue"]


async def test_health_is_503_when_the_database_is_gone(server: Running) -> None:
    if server.settings.is_sqlite:
        pytest.skip("an embedded database cannot become unreachable")
    await server.store.db.close()
    r = await server.call("GET", "/health")
    assert r.status_code == 503
    assert r.json()["title"] == "Service Unavailable"
    assert "Traceback" not in r.text
