"""Delayed delivery (SPEC §9): deliver_at / delay on messages and batch items."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import Running
from tests.receivers import Receiver, receiver

# Arrival times are monotonic; deliver_at is wall-clock ms.
_WALL_OFFSET_S = time.time() - time.monotonic()


async def _listener(server: Running, qid: str, rx: Receiver) -> str:
    r = await server.call(
        "POST",
        f"/queues/{qid}/listeners",
        json={"name": "l", "notify_url": rx.url("/hook"), "liveness_url": rx.url("/live")},
    )
    assert r.status_code == 200, r.text
    lid: str = r.json()["listener"]["id"]
    return lid


async def _post(server: Running, qid: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await server.call("POST", f"/queues/{qid}/messages", json=body)
    assert r.status_code == 200, r.text
    got = await server.call("GET", f"/queues/{qid}/messages/{r.json()['message']['id']}")
    message: dict[str, Any] = got.json()["message"]
    return message


async def test_a_delayed_message_goes_out_at_its_time(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    async with receiver() as rx:
        await _listener(server, qid, rx)
        delayed = await _post(server, qid, {"name": "later", "data": "d", "delay": 1.2})
        assert delayed["deliver_at"] == delayed["created_at"] + 1200
        [delivery] = delayed["deliveries"]
        assert delivery["state"] == "pending"
        assert delivery["next_attempt_at"] == delayed["deliver_at"]
        plain = await _post(server, qid, {"data": "now"})
        assert plain["deliver_at"] is None
        first, second = await rx.wait_for("/hook", 2, timeout_s=10)
        assert first.headers["webhook-id"] == plain["id"]
        assert second.headers["webhook-id"] == delayed["id"]
        arrived_ms = (second.at + _WALL_OFFSET_S) * 1000
        assert delayed["deliver_at"] - 50 <= arrived_ms <= delayed["deliver_at"] + 500


async def test_a_time_in_the_past_means_now(server: Running, queue: dict[str, Any]) -> None:
    qid = queue["id"]
    async with receiver() as rx:
        await _listener(server, qid, rx)
        message = await _post(server, qid, {"data": "x", "deliver_at": 1_000})
        assert message["deliver_at"] == message["created_at"]
        await rx.wait_for("/hook", 1, timeout_s=5)


async def test_delete_before_the_time_cancels(server: Running, queue: dict[str, Any]) -> None:
    qid = queue["id"]
    async with receiver() as rx:
        await _listener(server, qid, rx)
        doomed = await _post(server, qid, {"data": "a", "delay": 0.8})
        deleted = await server.call("DELETE", f"/queues/{qid}/messages/{doomed['id']}")
        assert deleted.status_code == 200
        later = await _post(server, qid, {"data": "b", "delay": 1.0})
        [arrival] = await rx.wait_for("/hook", 1, timeout_s=10)
        assert arrival.headers["webhook-id"] == later["id"]  # the first never went


async def test_refused_times(server: Running, queue: dict[str, Any]) -> None:
    qid = queue["id"]
    day = 86_400

    async def post(body: dict[str, Any]) -> tuple[int, list[str]]:
        r = await server.call("POST", f"/queues/{qid}/messages", json=body)
        return r.status_code, [e["path"] for e in r.json().get("errors") or []]

    assert await post({"data": "x", "delay": 1, "deliver_at": 1}) == (400, ["$.delay"])
    assert (await post({"data": "x", "delay": -1}))[0] == 400
    assert (await post({"data": "x", "deliver_at": -1}))[0] == 400
    assert (await post({"data": "x", "deliver_at": 2**64}))[0] == 400
    assert await post({"data": "x", "delay": 31 * day}) == (422, ["$.delay"])
    assert await post({"data": "x", "delay": 1e308}) == (422, ["$.delay"])
    assert await post({"data": "x", "deliver_at": 2**63 - 1}) == (422, ["$.deliver_at"])
    assert (await post({"data": "x", "delay": 29 * day}))[0] == 200
    listed = await server.call("GET", f"/queues/{qid}/messages")
    assert listed.headers["X-Total-Count"] == "1"


async def test_batch_items_carry_their_own_times(server: Running, queue: dict[str, Any]) -> None:
    qid = queue["id"]
    far = 31 * 86_400
    items = [{"data": "a", "delay": 5}, {"data": "b", "delay": far}, {"data": "c"}]
    r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": items})
    assert r.status_code == 422, r.text
    assert [e["path"] for e in r.json()["errors"]] == ["$.messages[1].delay"]
    both = [{"data": "a"}, {"data": "b", "delay": 1, "deliver_at": 5}]
    r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": both})
    assert r.status_code == 400
    assert [e["path"] for e in r.json()["errors"]] == ["$.messages[1].delay"]
    # SPEC §9: the 400 names every refused item, whichever rule of a well-formed
    # body each breaks (a type, or both times given).
    both = [{"data": 5}, {"data": "b", "delay": 1, "deliver_at": 5}, {"data": "c", "delay": "1"}]
    r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": both})
    assert r.status_code == 400
    assert [e["path"] for e in r.json()["errors"]] == [
        "$.messages[0].data",
        "$.messages[1].delay",
        "$.messages[2].delay",
    ]
    items[1] = {"data": "b", "deliver_at": 1}
    r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": items})
    assert r.status_code == 200, r.text
    listed = (await server.call("GET", f"/queues/{qid}/messages")).json()["messages"]
    created = listed[0]["created_at"]
    assert [m["deliver_at"] for m in listed] == [created + 5000, created, None]


async def test_a_listener_back_up_does_not_hurry_a_delayed_message(
    server: Running, queue: dict[str, Any]
) -> None:
    async with receiver() as rx:
        lid = await _listener(server, queue["id"], rx)
        message = await _post(server, queue["id"], {"data": "x", "delay": 600})
        assert await server.store.deliveries.wake_listener(lid, server.store.clock.now_ms()) == 0
        again = await server.call("GET", f"/queues/{queue['id']}/messages/{message['id']}")
        assert again.json()["message"]["deliveries"][0]["next_attempt_at"] == message["deliver_at"]


async def test_an_integral_float_is_a_timestamp_too(server: Running, queue: dict[str, Any]) -> None:
    qid = queue["id"]
    ok = await server.call("POST", f"/queues/{qid}/messages", json={"data": "x", "deliver_at": 5.0})
    assert ok.status_code == 200, ok.text
    for bad in (5.5, 2.0**63):
        r = await server.call(
            "POST", f"/queues/{qid}/messages", json={"data": "x", "deliver_at": bad}
        )
        assert r.status_code == 400, r.text
