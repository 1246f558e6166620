"""Listener health (SPEC §11) on both databases, with short settings: the circuit
breaker (failing, cool-down doubling, one trial, healthy), 410 Gone, manual and
automatic disable, deliveries kept while disabled, health events."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import Running, start_server
from tests.integration.test_delivery import add_listener, message, post
from tests.polling import until
from tests.receivers import Answer, Receiver, receiver
from tidings.config import Settings
from tidings.domain.scopes import default_scopes


class Switch:
    """A receiver's notify endpoint that fails (with ``status``) until turned up."""

    def __init__(self, status: int = 500) -> None:
        self.status = status
        self.up = False

    def __call__(self, _path: str, _n: int) -> Answer:
        return Answer() if self.up else Answer(status=self.status, body=b"down for maintenance")


@pytest.fixture
def short(settings: Settings) -> Settings:
    return replace(
        settings,
        breaker_threshold=3,
        breaker_cooldown_s=0.3,
        retry_schedule_s=(0.05, 0.1, 0.2),
        liveness_interval_s=0.2,
    )


@pytest.fixture
async def server(short: Settings) -> AsyncIterator[Running]:
    async with start_server(short) as running:
        yield running


async def _listener(server: Running, queue_id: str, listener_id: str) -> dict[str, Any]:
    r = await server.call("GET", f"/queues/{queue_id}/listeners/{listener_id}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()["listener"]
    return found


async def _health_events(server: Running, listener_id: str) -> list[dict[str, Any]]:
    r = await server.call("GET", "/events", params={"events": "listeners", "limit": 1000})
    return [
        e
        for e in r.json()["events"]
        if e["type"] not in ("listener_added", "listener_updated")
        and e["listener"]["id"] == listener_id
    ]


async def _state(server: Running, queue_id: str, listener_id: str) -> str:
    state: str = (await _listener(server, queue_id, listener_id))["health"]["state"]
    return state


async def _states(server: Running, queue_id: str, mids: list[str]) -> set[str]:
    found = set()
    for mid in mids:
        found |= {d["state"] for d in (await message(server, queue_id, mid))["deliveries"]}
    return found


def _hook_times(rx: Receiver) -> list[float]:
    return [a.at for a in rx.on("/hook")]


async def test_breaker_opens_waits_with_growing_cooldowns_and_closes_on_a_trial(
    server: Running, queue: dict[str, Any]
) -> None:
    switch = Switch()
    async with receiver(hook=switch) as rx:
        listener = await add_listener(server, queue["id"], rx)
        lid, qid = listener["id"], queue["id"]
        mids = [await post(server, qid) for _ in range(5)]
        await until(lambda: _is(server, qid, lid, "failing"), 10)
        got = await _listener(server, qid, lid)
        assert got["status"] == "enabled"
        assert got["health"]["consecutive_failures"] >= 3
        assert got["health"]["failing_since"] is not None
        assert got["health"]["last_failure_at"] is not None
        # While failing: single trials, cool-downs doubling (0.3, 0.6, 1.2 s), and
        # no delivery spends its schedule into "missed".
        tripped = len(rx.on("/hook"))
        await until(lambda: len(rx.on("/hook")) >= tripped + 3, 10)
        trials = _hook_times(rx)[tripped - 1 :]
        gaps = [b - a for a, b in itertools.pairwise(trials)]
        assert gaps[0] >= 0.3 * 0.9 and gaps[1] >= 0.6 * 0.9 and gaps[2] >= 1.2 * 0.9, gaps
        assert await _states(server, qid, mids) == {"pending"}
        switch.up = True
        await until(lambda: _states_are(server, qid, mids, {"delivered"}), 10)
    got = await _listener(server, qid, lid)
    assert got["health"]["state"] == "healthy"
    assert got["health"]["consecutive_failures"] == 0
    assert got["health"]["failing_since"] is None
    assert got["health"]["last_success_at"] is not None
    kinds = [e["type"] for e in await _health_events(server, lid)]
    assert kinds == ["listener_failing", "listener_recovered"]
    # The trials were attempts like any other: logged, and counted on their delivery.
    r = await server.call(
        "GET", f"/queues/{qid}/listeners/{lid}/attempts", params={"per_page": 100}
    )
    assert int(r.headers["X-Total-Count"]) == len(rx.on("/hook"))
    stats = (await server.call("GET", "/stats/messages")).json()["aggregated_api_usage_events"]
    assert stats["last_1_hours"]["listener_failing"] == 1
    assert stats["last_1_hours"]["listener_recovered"] == 1


async def _is(server: Running, qid: str, lid: str, state: str) -> bool:
    return await _state(server, qid, lid) == state


async def _states_are(server: Running, qid: str, mids: list[str], states: set[str]) -> bool:
    return await _states(server, qid, mids) == states


async def test_410_gone_disables_and_enabling_sends_everything_kept(
    server: Running, queue: dict[str, Any]
) -> None:
    switch = Switch(status=410)
    async with receiver(hook=switch) as rx:
        listener = await add_listener(server, queue["id"], rx)
        lid, qid = listener["id"], queue["id"]
        first = await post(server, qid)
        await until(lambda: _is(server, qid, lid, "disabled"), 10)
        got = await _listener(server, qid, lid)
        assert got["status"] == "disabled"
        assert got["health"]["disabled_reason"] == "gone"
        # New messages still owe it a delivery, which waits: no attempts, no probes.
        later = [await post(server, qid) for _ in range(3)]
        hooks, probes = len(rx.on("/hook")), len(rx.on("/live"))
        await _pause(1.0)
        assert (len(rx.on("/hook")), len(rx.on("/live"))) == (hooks, probes)
        assert await _states(server, qid, [first, *later]) == {"pending"}
        switch.up = True
        r = await server.call("PUT", f"/queues/{qid}/listeners/{lid}", json={"status": "enabled"})
        assert r.status_code == 200, r.text
        await until(lambda: _states_are(server, qid, [first, *later], {"delivered"}), 10)
    got = await _listener(server, qid, lid)
    assert got["status"] == "enabled"
    assert got["health"]["state"] == "healthy" and got["health"]["disabled_reason"] is None
    events = await _health_events(server, lid)
    assert [(e["type"], e.get("reason")) for e in events] == [
        ("listener_disabled", "gone"),
        ("listener_enabled", None),
    ]


async def _pause(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_manual_disable_and_enable(server: Running, queue: dict[str, Any]) -> None:
    async with receiver() as rx:
        listener = await add_listener(server, queue["id"], rx)
        lid, qid = listener["id"], queue["id"]
        path = f"/queues/{qid}/listeners/{lid}"
        r = await server.call("PUT", path, json={"status": "disabled"})
        assert r.status_code == 200, r.text
        got = await _listener(server, qid, lid)
        assert got["status"] == "disabled"
        assert got["health"] == {**got["health"], "state": "disabled", "disabled_reason": "manual"}
        # A second PUT of the same status changes nothing and records no event.
        assert (await server.call("PUT", path, json={"status": "disabled"})).status_code == 200
        mid = await post(server, qid)
        await _pause(0.5)
        assert rx.on("/hook") == []
        assert await _states(server, qid, [mid]) == {"pending"}
        listed = (await server.call("GET", f"/queues/{qid}/listeners")).json()["listeners"]
        assert listed[0]["status"] == "disabled"
        r = await server.call("PUT", path, json={"status": "enabled", "name": "back"})
        assert r.status_code == 200 and r.json()["listener"]["name"] == "back"
        await rx.wait_for("/hook", 1)
        await until(lambda: _states_are(server, qid, [mid], {"delivered"}), 5)
    events = await _health_events(server, lid)
    assert [(e["type"], e.get("reason")) for e in events] == [
        ("listener_disabled", "manual"),
        ("listener_enabled", None),
    ]
    for bad in ("paused", None, 1):
        r = await server.call("PUT", path, json={"status": bad})
        assert r.status_code == 400, bad


async def test_failing_too_long_disables(short: Settings, queue_name: str = "q") -> None:
    settings = replace(short, breaker_cooldown_s=0.1, disable_after_s=0.5)
    async with start_server(settings) as server, receiver(hook=Switch()) as rx:
        qid = (await server.call("POST", "/queues", json={"name": queue_name})).json()["queue"][
            "id"
        ]
        listener = await add_listener(server, qid, rx)
        lid = listener["id"]
        mids = [await post(server, qid) for _ in range(3)]
        await until(lambda: _is(server, qid, lid, "disabled"), 10)
        got = await _listener(server, qid, lid)
        assert got["health"]["disabled_reason"] == "failing"
        assert await _states(server, qid, mids) == {"pending"}
        events = await _health_events(server, lid)
        assert [(e["type"], e.get("reason")) for e in events] == [
            ("listener_failing", None),
            ("listener_disabled", "failing"),
        ]


async def _org_id(server: Running) -> str:
    org = await server.store.organizations.get_by_name("default")
    assert org is not None
    return org.id


async def test_the_alerts_queue_is_set_on_the_organization(
    server: Running, queue: dict[str, Any]
) -> None:
    org = await _org_id(server)
    path = f"/api_clients/{org}"
    r = await server.call("PUT", path, json={"alerts_queue_id": queue["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["api_client"] == {"id": org, "name": "default", "alerts_queue_id": queue["id"]}
    # The name alone leaves it; null removes it.
    r = await server.call("PUT", path, json={"name": "renamed"})
    assert r.json()["api_client"]["alerts_queue_id"] == queue["id"]
    r = await server.call("PUT", path, json={"alerts_queue_id": None})
    assert r.json()["api_client"]["alerts_queue_id"] is None
    # Only one of the organization's own queues.
    other_key = "other-org-key-" + "x" * 30
    await server.store.organizations.create_with_key("other", other_key, "k", default_scopes())
    r = await server.call(
        "POST", "/queues", json={"name": "theirs"}, headers={"X-API-KEY": other_key}
    )
    for bad in ("no-such-queue", r.json()["queue"]["id"]):
        r = await server.call("PUT", path, json={"alerts_queue_id": bad})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["path"] == "$.alerts_queue_id"


async def test_health_events_are_posted_into_the_alerts_queue_without_loops(
    server: Running, queue: dict[str, Any]
) -> None:
    org = await _org_id(server)
    alerts = (await server.call("POST", "/queues", json={"name": "alerts"})).json()["queue"]
    r = await server.call("PUT", f"/api_clients/{org}", json={"alerts_queue_id": alerts["id"]})
    assert r.status_code == 200
    gone = Switch(status=410)
    async with receiver(hook=gone) as rx, receiver() as pager_rx:
        pager = await add_listener(server, alerts["id"], pager_rx, name="pager")
        listener = await add_listener(server, queue["id"], rx)
        await post(server, queue["id"])
        [alert] = await pager_rx.wait_for("/hook", 1)
        # The pager's own health events are not posted into its queue.
        r = await server.call(
            "PUT", f"/queues/{alerts['id']}/listeners/{pager['id']}", json={"status": "disabled"}
        )
        assert r.status_code == 200
        r = await server.call(
            "PUT", f"/queues/{alerts['id']}/listeners/{pager['id']}", json={"status": "enabled"}
        )
        gone.up = True
        r = await server.call(
            "PUT", f"/queues/{queue['id']}/listeners/{listener['id']}", json={"status": "enabled"}
        )
        await pager_rx.wait_for("/hook", 2)
    body = alert.json()
    assert body["name"] == "listener_disabled"
    assert body["queue"] == {"id": alerts["id"], "name": "alerts"}
    event = __import__("json").loads(body["data"])
    assert event["type"] == "listener_disabled" and event["reason"] == "gone"
    assert event["listener"] == {"id": listener["id"], "name": "l"}
    assert event["queue"] == {"id": queue["id"], "name": queue["name"]}
    assert event["client"] == {"id": org}
    # It is the event itself, as GET /events shows it.
    shown = await _health_events(server, listener["id"])
    assert shown[0] == event
    r = await server.call("GET", f"/queues/{alerts['id']}/messages", params={"per_page": 100})
    names = [m["name"] for m in r.json()["messages"]]
    assert names == ["listener_disabled", "listener_enabled"]


DOWN_S = 8.0  # "ten minutes", at these settings: past two whole retry schedules


async def test_a_receiver_down_for_long_loses_nothing_and_is_not_hammered(
    settings: Settings,
) -> None:
    """Breaker threshold 3, cool-down 1 s, a retry schedule that would be exhausted in
    3 s: a receiver down for DOWN_S gets every message once it is back, none missed,
    and the attempts made while it was down stay within the cool-downs' bound."""
    cap = 4
    short = replace(
        settings,
        breaker_threshold=3,
        breaker_cooldown_s=1.0,
        retry_schedule_s=(0.5, 1.0, 1.5),
        max_in_flight_per_listener=cap,
    )
    switch = Switch(status=503)
    async with start_server(short) as server, receiver(hook=switch) as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        listener = await add_listener(server, qid, rx)
        loop = asyncio.get_running_loop()
        down_at = loop.time()
        mids = []
        while loop.time() - down_at < DOWN_S:  # messages keep coming while it is down
            mids.append(await post(server, qid))
            await asyncio.sleep(0.4)
        up_at = server.store.clock.now_ms()
        switch.up = True
        await until(lambda: _states_are(server, qid, mids, {"delivered"}), 20)
        got = await _listener(server, qid, listener["id"])
        r = await server.call(
            "GET", f"/queues/{qid}/listeners/{listener['id']}/attempts", params={"per_page": 100}
        )
    assert got["messages"]["missed_count"] == 0 and got["health"]["state"] == "healthy"
    attempts = r.json()["attempts"]
    while_down = [a for a in attempts if a["started_at"] < up_at]
    assert all(a["outcome"] == "failed" and a["status"] == 503 for a in while_down)
    # Trials after cool-downs of 1, 2, 4 s fit in 8 s: at most 3 (one more for timing).
    trials = 1 + max(k for k in range(10) if sum(2**i for i in range(k)) <= DOWN_S)
    bound = short.breaker_threshold + cap + trials
    print(
        f"down {DOWN_S:g} s: {len(mids)} messages, {len(while_down)} attempts while down"
        f" (bound {bound}; without the breaker {len(mids) * 4} and every one missed),"
        f" {len(attempts) - len(while_down)} after it came back"
    )
    assert len(while_down) <= bound
    assert len({a["message_id"] for a in attempts if a["outcome"] == "acknowledged"}) == len(mids)
