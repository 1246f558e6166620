"""The attempt log (SPEC §11): every attempt kept with its answer, listed through the
message and the listener, purged after TIDINGS_ATTEMPT_RETENTION; and the series of
event counts."""

from __future__ import annotations

from typing import Any

from tests.conftest import Running
from tests.integration.test_delivery import add_listener, post
from tests.polling import until
from tests.receivers import Answer, receiver
from tidings.domain.scopes import default_scopes
from tidings.storage.retention import EventRetention


async def _attempts(server: Running, path: str, **params: Any) -> list[dict[str, Any]]:
    r = await server.call("GET", path + "/attempts", params=params)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["attempts"]
    return found


async def test_each_attempt_is_logged_with_its_answer(
    server: Running, queue: dict[str, Any]
) -> None:
    def flaky(_path: str, n: int) -> Answer:
        return Answer(status=503, body=b"busy, try later") if n == 0 else Answer(body=b"thanks")

    async with receiver(hook=flaky) as rx:
        listener = await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"])
        await rx.wait_for("/hook", 2)
        mpath = f"/queues/{queue['id']}/messages/{mid}"
        await until(lambda: _count(server, mpath, 2), 5)
    first, second = await _attempts(server, mpath)
    assert first["message_id"] == second["message_id"] == mid
    assert first["listener_id"] == listener["id"]
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert first["outcome"] == "failed" and first["status"] == 503 and first["error"] is None
    assert first["response_body"] == "busy, try later"
    assert second["outcome"] == "acknowledged" and second["status"] == 200
    assert second["response_body"] == "thanks"
    assert first["started_at"] <= second["started_at"]
    assert all(isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0 for a in (first, second))
    # The listener's log holds the same attempts, paginated like every list.
    lpath = f"/queues/{queue['id']}/listeners/{listener['id']}"
    assert await _attempts(server, lpath) == [first, second]
    r = await server.call("GET", lpath + "/attempts", params={"per_page": 1, "page": 2})
    assert r.headers["X-Total-Count"] == "2"
    assert r.json()["attempts"] == [second]
    assert 'rel="prev"' in r.headers["Link"]


async def _count(server: Running, path: str, n: int) -> bool:
    return len(await _attempts(server, path)) >= n


async def test_no_answer_is_logged_with_its_error_class(
    server: Running, queue: dict[str, Any]
) -> None:
    async with receiver() as gone:
        dead = gone.url("/hook")
    # That receiver is gone: nothing listens on its port any more (its liveness URL
    # answers, so the deliveries do not wait for liveness).
    async with receiver() as alive:
        r = await server.call(
            "POST",
            f"/queues/{queue['id']}/listeners",
            json={"name": "gone", "notify_url": dead, "liveness_url": alive.url("/live")},
        )
        mid = await post(server, queue["id"])
        mpath = f"/queues/{queue['id']}/messages/{mid}"
        await until(lambda: _count(server, mpath, 1), 5)
    [attempt, *_] = await _attempts(server, mpath)
    assert r.status_code == 200
    assert attempt["outcome"] == "failed"
    assert attempt["status"] is None and attempt["response_body"] is None
    assert attempt["error"] == "connection"


async def test_attempt_lists_are_scoped_like_their_message_and_listener(
    server: Running, queue: dict[str, Any]
) -> None:
    async with receiver() as rx:
        listener = await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"])
        await rx.wait_for("/hook", 1)
    other = await server.call("POST", "/queues", json={"name": "other"})
    other_id = other.json()["queue"]["id"]
    # Unknown ids and ids under another queue are 404, as for the message itself.
    for path in (
        f"/queues/{queue['id']}/messages/nope/attempts",
        f"/queues/{other_id}/messages/{mid}/attempts",
        f"/queues/{other_id}/listeners/{listener['id']}/attempts",
    ):
        assert (await server.call("GET", path)).status_code == 404, path
    # Another organization sees none of it.
    key = "stranger-key-" + "s" * 32
    await server.store.organizations.create_with_key("stranger", key, "k", default_scopes())
    r = await server.call(
        "GET", f"/queues/{queue['id']}/messages/{mid}/attempts", headers={"X-API-KEY": key}
    )
    assert r.status_code == 404
    # A key limited to another queue's messages may not read this message's attempts.
    limited = await server.call(
        "POST",
        "/api_keys",
        json={"scopes": [{"resource": "messages", "access": "read", "targets": [other_id]}]},
    )
    r = await server.call(
        "GET",
        f"/queues/{queue['id']}/messages/{mid}/attempts",
        headers={"X-API-KEY": limited.json()["api_key"]},
    )
    assert r.status_code == 403


async def test_attempts_are_purged_after_their_retention(
    server: Running, queue: dict[str, Any]
) -> None:
    async with receiver() as rx:
        await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"])
        await rx.wait_for("/hook", 1)
    mpath = f"/queues/{queue['id']}/messages/{mid}"
    await until(lambda: _count(server, mpath, 1), 5)
    store, clock = server.store, server.store.clock
    keep = EventRetention(
        store.events, 10**12, clock=clock, attempts=store.attempts, attempt_retention_ms=60_000
    )
    assert await keep.purge_attempts(clock.now_ms()) == 0
    assert len(await _attempts(server, mpath)) == 1
    assert await keep.purge_attempts(clock.now_ms() + 61_000) == 1
    assert await _attempts(server, mpath) == []
