"""The delivery engine against real receivers on 127.0.0.1 (SPEC §5 and §7)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import standardwebhooks

from tests.conftest import Running, start_server
from tests.polling import until
from tests.receivers import Answer, Receiver, drip_server, receiver
from tidings.config import Settings
from tidings.delivery.engine import Engine
from tidings.delivery.sender import Sender
from tidings.storage.listeners import INLINE_MISSED


async def add_listener(
    server: Running,
    queue_id: str,
    rx: Receiver,
    name: str = "l",
    notify: str = "/hook",
    live: str = "/live",
) -> dict[str, Any]:
    r = await server.call(
        "POST",
        f"/queues/{queue_id}/listeners",
        json={"name": name, "notify_url": rx.url(notify), "liveness_url": rx.url(live)},
    )
    assert r.status_code == 200, r.text
    listener: dict[str, Any] = r.json()["listener"]
    return listener


async def post(
    server: Running, queue_id: str, data: str = '{"n": 1}', name: str | None = "m"
) -> str:
    r = await server.call("POST", f"/queues/{queue_id}/messages", json={"name": name, "data": data})
    assert r.status_code == 200, r.text
    message_id: str = r.json()["message"]["id"]
    return message_id


async def message(server: Running, queue_id: str, message_id: str) -> dict[str, Any]:
    r = await server.call("GET", f"/queues/{queue_id}/messages/{message_id}")
    body: dict[str, Any] = r.json()["message"]
    return body


async def test_request_body_headers_and_signature(server: Running, queue: dict[str, Any]) -> None:
    async with receiver() as rx:
        listener = await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"], data='{"order": 7}', name="order-7")
        [arrival] = await rx.wait_for("/hook", 1)
    assert arrival.headers["Content-Type"] == "application/json"
    assert arrival.headers["webhook-id"] == mid
    assert abs(int(arrival.headers["webhook-timestamp"]) - time.time()) < 5
    body = arrival.json()
    assert body == {
        "id": mid,
        "name": "order-7",
        "queue": {"id": queue["id"], "name": queue["name"]},
        "data": '{"order": 7}',
        "created_at": body["created_at"],
    }
    assert isinstance(body["created_at"], int)
    # The receiver verifies us with the stock package and the secret we handed out.
    verified = standardwebhooks.Webhook(listener["secret"]).verify(arrival.body, arrival.headers)
    assert verified["id"] == mid
    bad = dict(arrival.headers, **{"webhook-signature": "v1,AAAA"})
    try:
        standardwebhooks.Webhook(listener["secret"]).verify(arrival.body, bad)
        raise AssertionError("a forged signature verified")
    except standardwebhooks.WebhookVerificationError:
        pass


async def test_fan_out_and_late_listeners(server: Running, queue: dict[str, Any]) -> None:
    async with receiver() as rx:
        for i in range(3):
            await add_listener(server, queue["id"], rx, f"l{i}", notify=f"/hook{i}")
        ids = [await post(server, queue["id"], data=str(n)) for n in range(5)]
        late = await add_listener(server, queue["id"], rx, "late", notify="/late")
        for i in range(3):
            got = await rx.wait_for(f"/hook{i}", 5)
            assert sorted(a.headers["webhook-id"] for a in got) == sorted(ids)
        await asyncio.sleep(0.3)
        assert rx.on("/late") == []
    got = (await server.call("GET", f"/queues/{queue['id']}/listeners")).json()["listeners"]
    acked = {x["name"]: x["messages"]["acknowledged_count"] for x in got}
    assert acked == {"l0": 5, "l1": 5, "l2": 5, "late": 0}
    assert late["id"] not in {
        d["listener_id"] for d in (await message(server, queue["id"], ids[0]))["deliveries"]
    }


async def test_retry_after_5xx_until_success(server: Running, queue: dict[str, Any]) -> None:
    flaky = lambda _p, n: Answer(500 if n < 2 else 200)  # noqa: E731
    async with receiver(hook=flaky) as rx:
        await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"])
        arrivals = await rx.wait_for("/hook", 3)
    assert {a.headers["webhook-id"] for a in arrivals} == {mid}
    timestamps = [a.at for a in arrivals]
    assert timestamps[1] - timestamps[0] >= 0.05 * 0.8 - 0.01

    async def delivered() -> bool:
        d = (await message(server, queue["id"], mid))["deliveries"][0]
        return bool(d["state"] == "delivered")

    await until(delivered)
    d = (await message(server, queue["id"], mid))["deliveries"][0]
    assert d["attempts"] == 3 and d["last_status"] == 200 and d["next_attempt_at"] is None


async def test_exhaustion_missed_then_redelivered(server: Running, queue: dict[str, Any]) -> None:
    failing = {"ok": False}
    behaviour = lambda _p, _n: Answer(200 if failing["ok"] else 503)  # noqa: E731
    async with receiver(hook=behaviour) as rx:
        listener = await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"])
        path = f"/queues/{queue['id']}/listeners/{listener['id']}"

        async def missed() -> bool:
            got = (await server.call("GET", path)).json()["listener"]["messages"]
            return bool(got["missed"] == [mid])

        await until(missed)
        assert len(rx.on("/hook")) == 4  # schedule of 3 delays => 4 attempts
        got = (await server.call("GET", path)).json()["listener"]["messages"]
        assert got == {"acknowledged_count": 0, "missed": [mid], "missed_count": 1}
        d = (await message(server, queue["id"], mid))["deliveries"][0]
        assert d["state"] == "missed" and d["attempts"] == 4 and d["last_status"] == 503

        failing["ok"] = True
        ignored = await server.call("POST", path + "/redeliveries", json={"message_ids": ["nope"]})
        assert ignored.json()["redelivery"] == {"message_ids": []}
        again = await server.call("POST", path + "/redeliveries", json={})
        assert again.status_code == 200
        assert again.json()["redelivery"] == {"message_ids": [mid]}
        await rx.wait_for("/hook", 5)

        async def recovered() -> bool:
            got = (await server.call("GET", path)).json()["listener"]["messages"]
            return bool(got == {"acknowledged_count": 1, "missed": [], "missed_count": 0})

        await until(recovered)


async def test_a_listener_shows_every_missed_message_past_the_inline_read(
    server: Running, queue: dict[str, Any]
) -> None:
    # GET of one listener reads up to INLINE_MISSED missed ids on the event loop's
    # thread and the whole list elsewhere past that: both must show all of them.
    count = INLINE_MISSED + 6
    async with receiver(hook=lambda _p, _n: Answer(503)) as rx:
        listener = await add_listener(server, queue["id"], rx)
        ids = sorted(await asyncio.gather(*(post(server, queue["id"]) for _ in range(count))))
        path = f"/queues/{queue['id']}/listeners/{listener['id']}"

        async def all_missed() -> bool:
            got = (await server.call("GET", path)).json()["listener"]["messages"]
            return bool(got["missed_count"] == count)

        await until(all_missed, 30)
        got = (await server.call("GET", path)).json()["listener"]["messages"]
        assert got == {"acknowledged_count": 0, "missed": ids, "missed_count": count}
        listed = (await server.call("GET", f"/queues/{queue['id']}/listeners")).json()
        assert listed["listeners"][0]["messages"]["missed"] == ids


async def test_retry_after_is_honoured(settings: Settings) -> None:
    # Without Retry-After the retry would come after 0.05 s; capped at the largest
    # delay, 60 s. Timing against the clock is the unit tests' (virtual time): here
    # only "neither of those" is asserted, which load cannot break.
    slow_schedule = replace(settings, retry_schedule_s=(0.05, 60.0))
    behaviour = lambda _p, n: Answer(429, {"Retry-After": "1"}) if n == 0 else Answer(200)  # noqa: E731
    async with start_server(slow_schedule) as server, receiver(hook=behaviour) as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        await add_listener(server, qid, rx)
        await post(server, qid)
        first, second = await rx.wait_for("/hook", 2, timeout_s=30)
    assert second.at - first.at >= 1.0 - 0.01


async def test_an_answer_with_a_junk_retry_after_is_recorded(
    server: Running, queue: dict[str, Any]
) -> None:
    """A receiver's Retry-After (past datetime's years here) never stops an answer
    from being recorded: a 503 is one failed attempt, the 200 after it acknowledges
    the delivery at once (it raised, the lease ran out, and the 200 was sent again
    every ~31 s, never recorded)."""
    junk = {"Retry-After": "1 Jan 99999999999999999999 00:00:00 GMT"}
    answers = lambda _p, n: Answer(503 if n == 0 else 200, junk)  # noqa: E731
    async with receiver(hook=answers) as rx:
        await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"])

        async def delivered() -> bool:
            d = (await message(server, queue["id"], mid))["deliveries"][0]
            return bool(d["state"] == "delivered")

        await until(delivered, 10)
        d = (await message(server, queue["id"], mid))["deliveries"][0]
        assert (d["attempts"], d["last_status"]) == (2, 200)
        assert len(rx.on("/hook")) == 2


async def test_redirects_are_not_followed(server: Running, queue: dict[str, Any]) -> None:
    moved = lambda _p, _n: Answer(302, {"Location": "/elsewhere"})  # noqa: E731
    async with receiver(hook=moved) as rx:
        await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"])

        async def failed_once() -> bool:
            d = (await message(server, queue["id"], mid))["deliveries"][0]
            return bool(d["attempts"] >= 1)

        await until(failed_once)
        d = (await message(server, queue["id"], mid))["deliveries"][0]
        assert d["last_status"] == 302 and d["state"] != "delivered"
        assert rx.on("/elsewhere") == []


async def test_slow_listener_does_not_delay_fast_one(settings: Settings) -> None:
    """Event-driven: the slow listener never answers while the fast one gets all 20
    (had the fast one queued behind it, it would get none until the slow one's
    attempts ended, 30 s away), and the slow one never has more than its cap open."""
    capped = replace(settings, delivery_timeout_s=30.0, max_in_flight_per_listener=2)
    never = asyncio.Event()
    held = lambda _p, _n: Answer(200, hold=never)  # noqa: E731
    async with start_server(capped) as server, receiver(slow=held) as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        await add_listener(server, qid, rx, "slow", notify="/slow")
        await add_listener(server, qid, rx, "fast", notify="/fast")
        try:
            for n in range(20):
                await post(server, qid, data=str(n))
            await rx.wait_for("/fast", 20, timeout_s=20)
            await rx.wait_for("/slow", 2, timeout_s=20)
            assert len(rx.on("/slow")) == 2  # the cap, every one of them still open
        finally:
            never.set()


async def test_drip_receiver_is_cut_at_the_deadline(settings: Settings) -> None:
    quick_timeout = replace(settings, delivery_timeout_s=1.0)
    async with start_server(quick_timeout) as server, drip_server(0.2) as (url, connected):
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        r = await server.call(
            "POST",
            f"/queues/{qid}/listeners",
            json={"name": "drip", "notify_url": url, "liveness_url": url},
        )
        assert r.status_code == 200
        mid = await post(server, qid)

        async def attempted() -> bool:
            d = (await message(server, qid, mid))["deliveries"][0]
            return bool(d["attempts"] >= 1)

        await until(attempted, timeout_s=5)
        d = (await message(server, qid, mid))["deliveries"][0]
        assert d["last_status"] is None and d["state"] == "pending"
        first_connect = min(connected)
        # The attempt was recorded about one deadline after it started, not 200 s later.
        # (The drip would take 200 s; the margin is for a loaded machine.)
        assert d["last_attempt_at"] / 1000 - time.time() + time.monotonic() - first_connect < 10


async def test_liveness_states_pause_and_resume(settings: Settings) -> None:
    fast_probes = replace(settings, liveness_interval_s=0.1, retry_schedule_s=(0.05,))
    alive = {"up": True}
    live = lambda _p, _n: Answer(200 if alive["up"] else 503)  # noqa: E731
    hook = lambda _p, _n: Answer(200 if alive["up"] else 503)  # noqa: E731
    async with start_server(fast_probes) as server, receiver(live=live, hook=hook) as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        listener = await add_listener(server, qid, rx)
        path = f"/queues/{qid}/listeners/{listener['id']}"

        async def state(expected: str) -> bool:
            got = (await server.call("GET", path)).json()["listener"]["liveness"]
            return bool(got["state"] == expected)

        await until(lambda: state("stable"))
        alive["up"] = False
        await until(lambda: state("down"))
        got = (await server.call("GET", path)).json()["listener"]["liveness"]
        assert got["failure_count"] >= 3 and got["success_count"] >= 1

        before = len(rx.on("/hook"))
        mid = await post(server, qid)
        await asyncio.sleep(0.5)  # many retry periods: nothing may be spent while down
        assert len(rx.on("/hook")) == before
        d = (await message(server, qid, mid))["deliveries"][0]
        assert d["state"] == "pending" and d["attempts"] == 0

        alive["up"] = True
        await rx.wait_for("/hook", before + 1, timeout_s=5)

        async def delivered() -> bool:
            d = (await message(server, qid, mid))["deliveries"][0]
            return bool(d["state"] == "delivered")

        await until(delivered)


async def test_deleting_message_cancels_its_retries(server: Running, queue: dict[str, Any]) -> None:
    async with receiver(hook=lambda _p, _n: Answer(500)) as rx:
        await add_listener(server, queue["id"], rx)
        mid = await post(server, queue["id"])
        await rx.wait_for("/hook", 1)
        await server.call("DELETE", f"/queues/{queue['id']}/messages/{mid}")
        seen = len(rx.on("/hook"))
        await asyncio.sleep(0.6)
        assert len(rx.on("/hook")) <= seen + 1  # at most the attempt already in flight


async def test_listeners_take_turns_under_backlog(settings: Settings) -> None:
    """With more backlogged listeners than slots, every listener is served early on,
    not only the first ones in the table."""
    few_slots = replace(settings, max_in_flight=4, max_in_flight_per_listener=2)
    slowish = lambda _p, _n: Answer(200, delay_s=0.05)  # noqa: E731
    paths = [f"/l{i}" for i in range(8)]
    behaviours = {p.strip("/"): slowish for p in paths}
    async with start_server(few_slots, engine=False) as server, receiver(**behaviours) as rx:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        for path in paths:
            await add_listener(server, qid, rx, path.strip("/"), notify=path)
        for n in range(8):  # the whole backlog first, whatever the machine's speed
            await post(server, qid, data=str(n))
        policy = server.app.state.tidings.services.destinations
        engine = Engine(server.store, few_slots, Sender(policy, 8))
        await engine.start()
        try:
            firsts = [(await rx.wait_for(path, 1, timeout_s=10))[0].at for path in paths]
            lasts = [(await rx.wait_for(path, 8, timeout_s=30))[-1].at for path in paths]
        finally:
            await engine.stop()
    # In table order the last listener would start only after the first drained. An
    # order, not a ratio of durations: a loaded machine cannot change it.
    assert max(firsts) < min(lasts), (firsts, lasts)


async def test_a_message_read_alone_shows_its_deliveries_as_the_list_does(
    server: Running, queue: dict[str, Any]
) -> None:
    # A message and its deliveries come from one statement (a JSON array per dialect)
    # whether read alone or in a page: both answer the same, in listener order, with
    # delivered, missed and pending (with its time) side by side.
    async with receiver(down=lambda _p, _n: Answer(503)) as rx:
        for name, notify in (("a", "/ok"), ("b", "/down"), ("c", "/ok")):
            await add_listener(server, queue["id"], rx, name, notify=notify)
        now_id = await post(server, queue["id"])
        r = await server.call(
            "POST", f"/queues/{queue['id']}/messages", json={"data": "later", "delay": 600}
        )
        later_id = r.json()["message"]["id"]

        async def settled() -> bool:
            states = [
                d["state"] for d in (await message(server, queue["id"], now_id))["deliveries"]
            ]
            return sorted(states) == ["delivered", "delivered", "missed"]

        await until(settled)
    listed = (await server.call("GET", f"/queues/{queue['id']}/messages")).json()["messages"]
    for mid in (now_id, later_id):
        alone = await message(server, queue["id"], mid)
        assert alone == next(m for m in listed if m["id"] == mid)
        deliveries = alone["deliveries"]
        assert [d["listener_id"] for d in deliveries] == sorted(
            d["listener_id"] for d in deliveries
        )
        assert len(deliveries) == 3
    now, later = [await message(server, queue["id"], i) for i in (now_id, later_id)]
    by_state = {d["state"]: d for d in now["deliveries"]}
    assert by_state["missed"]["attempts"] == 4 and by_state["missed"]["last_status"] == 503
    assert by_state["delivered"]["last_status"] == 200
    assert all(d["next_attempt_at"] is None for d in now["deliveries"])
    assert all(
        d["state"] == "pending"
        and d["attempts"] == 0
        and d["next_attempt_at"] >= later["created_at"]
        for d in later["deliveries"]
    )
