"""Concurrent requests never answer 5xx (SPEC §1 "Concurrency"): deletes racing the
delivery engine, and partial updates racing each other."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tests.conftest import Running, start_server
from tests.receivers import Receiver, receiver
from tidings.config import Settings
from tidings.domain.schemas import schema_id

ROUNDS = 3
DOOMED_QUEUES = 3
LISTENERS_PER_QUEUE = 4
MESSAGES_PER_QUEUE = 30


async def _queue(server: Running, name: str) -> str:
    r = await server.call("POST", "/queues", json={"name": name})
    assert r.status_code == 200, r.text
    queue_id: str = r.json()["queue"]["id"]
    return queue_id


async def _listener(server: Running, queue_id: str, rx: Receiver, name: str, path: str) -> str:
    r = await server.call(
        "POST",
        f"/queues/{queue_id}/listeners",
        json={"name": name, "notify_url": rx.url(path), "liveness_url": rx.url("/live")},
    )
    assert r.status_code == 200, r.text
    listener_id: str = r.json()["listener"]["id"]
    return listener_id


async def _post(server: Running, queue_id: str, data: str) -> httpx.Response:
    return await server.call("POST", f"/queues/{queue_id}/messages", json={"data": data})


def _arrived(rx: Receiver, path: str) -> set[str]:
    return {a.json()["data"] for a in rx.on(path)}


async def _round(
    server: Running, rx: Receiver, survivor: str, n: int, statuses: Counter[int]
) -> None:
    """Fill doomed queues, and while their deliveries flow delete them (queues,
    listeners, messages) and keep posting, to them and to the survivor."""
    doomed: list[tuple[str, list[str]]] = []
    for q in range(DOOMED_QUEUES):
        queue_id = await _queue(server, f"doomed-{n}-{q}")
        listeners = [
            await _listener(server, queue_id, rx, f"l{i}", "/doomed")
            for i in range(LISTENERS_PER_QUEUE)
        ]
        doomed.append((queue_id, listeners))
    posted = await asyncio.gather(
        *(
            _post(server, queue_id, f"d{n}-{queue_id}-{i}")
            for queue_id, _ in doomed
            for i in range(MESSAGES_PER_QUEUE)
        )
    )
    assert all(r.status_code == 200 for r in posted)
    message_ids = [r.json()["message"]["id"] for r in posted]
    # Deliveries are flowing: now race them.
    await rx.wait_for("/doomed", (n + 1) * 10, timeout_s=30)
    (q0, l0), (q1, l1), (q2, _) = doomed
    calls: list[Any] = []
    calls += [server.call("DELETE", f"/queues/{q0}"), server.call("DELETE", f"/queues/{q2}")]
    calls += [server.call("DELETE", f"/queues/{q1}/listeners/{lid}") for lid in l1[:2]]
    calls += [
        server.call("DELETE", f"/queues/{q1}/messages/{mid}")
        for mid in message_ids[MESSAGES_PER_QUEUE : MESSAGES_PER_QUEUE + 10]
    ]
    calls += [server.call("DELETE", f"/queues/{q0}/listeners/{lid}") for lid in l0]
    calls += [_post(server, queue_id, f"late-{n}") for queue_id, _ in doomed]
    calls += [_post(server, survivor, f"s{n}-{i}") for i in range(10)]
    answers = await asyncio.gather(*calls)
    statuses.update(r.status_code for r in answers)
    failed = [
        (r.request.method, r.request.url.path, r.text) for r in answers if r.status_code >= 500
    ]
    assert not failed, failed


@pytest.mark.timeout(180)
async def test_deletes_racing_deliveries_never_5xx_and_survivors_keep_receiving(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL, main answered 503 here ("deadlock detected" between a queue's
    delete cascading into deliveries and the recorder bumping listener counters)."""
    caplog.set_level(logging.INFO, logger="tidings.storage")
    settings = replace(settings, max_in_flight_per_listener=8)
    async with receiver() as rx, start_server(settings) as server:
        survivor = await _queue(server, "survivor")
        for i in range(2):
            await _listener(server, survivor, rx, f"keep{i}", f"/keep{i}")
        statuses: Counter[int] = Counter()
        for n in range(ROUNDS):
            await _round(server, rx, survivor, n, statuses)
            # Both surviving listeners get every message of this round, promptly.
            wanted = {f"s{n}-{i}" for i in range(10)}
            deadline = time.monotonic() + 20
            while not all(wanted <= _arrived(rx, f"/keep{i}") for i in range(2)):
                assert time.monotonic() < deadline, (
                    f"round {n}: survivors got "
                    f"{[len(wanted & _arrived(rx, f'/keep{i}')) for i in range(2)]} of 10"
                )
                await asyncio.sleep(0.05)
        # Every DELETE found its target or a cascade had taken it first.
        assert set(statuses) <= {200, 404}, statuses
    # Not even a deadlock that was run again: the lock order prevents them.
    deadlocks = [r.message for r in caplog.records if "Deadlock" in r.message]
    assert not deadlocks, deadlocks


PUT_ROUNDS = 30


async def _put(server: Running, path: str, body: dict[str, Any]) -> None:
    r = await server.call("PUT", path, json=body)
    assert r.status_code == 200, (path, body, r.text)


async def _get(server: Running, path: str, kind: str) -> dict[str, Any]:
    r = await server.call("GET", path)
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()[kind]
    return found


async def test_concurrent_partial_updates_of_different_fields_both_take_effect(
    server: Running,
) -> None:
    """Two PUTs at once, each changing one field of the same resource: neither undoes
    the other (queues, listeners, API keys), round after round."""
    queue_id = await _queue(server, "q")
    q = f"/queues/{queue_id}"
    r = await server.call(
        "POST",
        f"{q}/listeners",
        json={
            "name": "l",
            "notify_url": "http://127.0.0.1:9/n",
            "liveness_url": "http://127.0.0.1:9/l",
        },
    )
    listener = f"{q}/listeners/{r.json()['listener']['id']}"
    r = await server.call("POST", "/api_keys", json={"name": "k"})
    key = "/api_keys/" + r.json()["_links"]["self"]["href"].rsplit("/", 1)[-1]
    for n in range(PUT_ROUNDS):
        schema = {"n": {"type": "number", "max": n}}
        status = "disabled" if n % 2 else "enabled"
        await asyncio.gather(
            _put(server, q, {"name": f"q{n}"}),
            _put(server, q, {"schema": schema}),
            _put(server, listener, {"name": f"l{n}"}),
            _put(server, listener, {"notify_url": f"http://127.0.0.1:9/n{n}"}),
            _put(server, key, {"name": f"k{n}"}),
            _put(server, key, {"status": status}),
        )
        got = await _get(server, q, "queue")
        assert (got["name"], got["schema"]) == (f"q{n}", schema), n
        got = await _get(server, listener, "listener")
        assert (got["name"], got["notify_url"]) == (f"l{n}", f"http://127.0.0.1:9/n{n}"), n
        got = await _get(server, key, "api_key")
        assert (got["name"], got["status"]) == (f"k{n}", status), n


async def test_a_message_checked_against_a_replaced_schema_is_checked_again(
    server: Running,
) -> None:
    """The node's view of a queue may be stale (another node's change, its notification
    still on the way). A message that passes the stale schema is caught in its own
    transaction and checked again against the committed one (SPEC §4: refused); one
    that fails the stale schema is confirmed against the committed one (accepted)."""
    number = {"n": {"type": "number"}}
    r = await server.call("POST", "/queues", json={"name": "s", "schema": number})
    queue_id = r.json()["queue"]["id"]
    path = f"/queues/{queue_id}/messages"
    assert (await server.call("POST", path, json={"data": '{"n": 1}'})).status_code == 200
    # Changed behind the node's back: no notification, so its cached queue is stale.
    string = {"n": {"type": "string"}}
    await server.store.db.write(
        "UPDATE queues SET schema = $1, schema_id = $2 WHERE id = $3",
        json.dumps(string),
        schema_id(string),
        queue_id,
    )
    refused = await server.call("POST", path, json={"data": '{"n": 2}'})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["path"] == "$.data.n"
    assert (await server.call("POST", path, json={"data": '{"n": "two"}'})).status_code == 200
    listed = (await server.call("GET", path, params={"per_page": 100})).json()["messages"]
    assert [m["data"] for m in listed] == ['{"n": 1}', '{"n": "two"}']
