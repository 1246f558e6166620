"""Idempotency-Key on POST .../messages (SPEC §9): replay, misuse, concurrency, expiry."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
from msgspec.structs import replace

from tests.conftest import Running, start_server
from tidings.config import Settings
from tidings.domain.clock import ManualClock
from tidings.domain.ids import new_id
from tidings.domain.models import NewMessage, Publication, RememberedAnswer
from tidings.domain.scopes import default_scopes
from tidings.storage.idempotency import KeyTaken
from tidings.storage.retention import EventRetention


async def _count(server: Running, qid: str) -> int:
    r = await server.call("GET", f"/queues/{qid}/messages")
    return int(r.headers["X-Total-Count"])


def _post(
    server: Running, qid: str, key: str | bytes, body: dict[str, Any], v1: bool = False
) -> Any:
    prefix = "/v1" if v1 else ""
    return server.call(
        "POST", f"{prefix}/queues/{qid}/messages", json=body, headers={"Idempotency-Key": key}
    )


async def test_a_repeat_replays_the_first_answer_and_stores_nothing(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    first = await _post(server, qid, "order-17", {"name": "n", "data": "x"})
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = await _post(server, qid, "order-17", {"name": "n", "data": "x"})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content  # status and body, byte for byte
    # The same endpoint with /v1 is the same endpoint.
    v1 = await _post(server, qid, "order-17", {"name": "n", "data": "x"}, v1=True)
    assert v1.headers["Idempotent-Replayed"] == "true"
    assert v1.json() == first.json()
    assert await _count(server, qid) == 1
    # A request without a key is never a repeat.
    plain = await server.call("POST", f"/queues/{qid}/messages", json={"name": "n", "data": "x"})
    assert plain.json()["message"]["id"] != first.json()["message"]["id"]
    assert await _count(server, qid) == 2


async def test_the_same_key_with_another_request_is_refused(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    assert (await _post(server, qid, "k", {"data": "x"})).status_code == 200
    other_body = await _post(server, qid, "k", {"data": "y"})
    assert other_body.status_code == 422, other_body.text
    assert "different request" in other_body.json()["detail"]
    other_queue = (await server.call("POST", "/queues", json={"name": "other"})).json()["queue"]
    elsewhere = await _post(server, other_queue["id"], "k", {"data": "x"})
    assert elsewhere.status_code == 422
    assert await _count(server, qid) == 1
    assert await _count(server, other_queue["id"]) == 0


async def test_only_200_answers_are_remembered(server: Running) -> None:
    schema = {"price": {"type": "number"}}
    queue = (await server.call("POST", "/queues", json={"name": "q", "schema": schema})).json()
    qid = queue["queue"]["id"]
    refused = await _post(server, qid, "retry-me", {"data": '{"price": "free"}'})
    assert refused.status_code == 422
    malformed = await _post(server, qid, "retry-me", {"data": 5})
    assert malformed.status_code == 400
    fixed = await _post(server, qid, "retry-me", {"data": '{"price": 3}'})
    assert fixed.status_code == 200, fixed.text
    assert "Idempotent-Replayed" not in fixed.headers
    assert await _count(server, qid) == 1


async def test_keys_are_per_organization(server: Running, queue: dict[str, Any]) -> None:
    other_key = "other-org-key-" + "q" * 30
    await server.store.organizations.create_with_key("other", other_key, "k", default_scopes())
    assert (await _post(server, queue["id"], "shared", {"data": "x"})).status_code == 200
    headers = {"X-API-KEY": other_key, "Idempotency-Key": "shared"}
    theirs = (await server.call("POST", "/queues", json={"name": "t"}, headers=headers)).json()
    r = await server.call(
        "POST", f"/queues/{theirs['queue']['id']}/messages", json={"data": "x"}, headers=headers
    )
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers


async def test_a_malformed_key_is_400(server: Running, queue: dict[str, Any]) -> None:
    for key in ("", "x" * 256, "caf\u00e9".encode(), b"a\tb"):
        r = await _post(server, queue["id"], key, {"data": "x"})
        assert r.status_code == 400, (key, r.text)
    assert (await _post(server, queue["id"], "a ~!" + "x" * 251, {"data": "x"})).status_code == 200


async def test_ten_concurrent_identical_requests_store_one_message(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    limits = httpx.Limits(max_connections=10)
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"X-API-KEY": server.api_key}, limits=limits
    ) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"/queues/{qid}/messages",
                    json={"data": "once"},
                    headers={"Idempotency-Key": "ten"},
                )
                for _ in range(10)
            )
        )
    assert {a.status_code for a in answers} <= {200, 409}
    fresh = [a for a in answers if a.status_code == 200 and "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1
    for a in answers:
        if a.status_code == 409:
            assert a.headers["Retry-After"] == "1"
        else:
            assert a.json() == fresh[0].json()
    assert await _count(server, qid) == 1


async def test_a_key_is_forgotten_after_its_ttl(settings: Settings) -> None:
    clock = ManualClock(1_780_000_000_000)
    short = dataclasses.replace(settings, idempotency_ttl_s=60.0)
    async with start_server(short, engine=False, clock=clock) as server:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        first = await _post(server, qid, "k", {"data": "x"})
        clock.advance(59_000)
        assert (await _post(server, qid, "k", {"data": "x"})).headers["Idempotent-Replayed"]
        clock.advance(1_000)
        later = await _post(server, qid, "k", {"data": "x"})
        assert later.status_code == 200 and "Idempotent-Replayed" not in later.headers
        assert later.json()["message"]["id"] != first.json()["message"]["id"]
        assert await _count(server, qid) == 2
        # The new answer is the one remembered now.
        clock.advance(1_000)
        again = await _post(server, qid, "k", {"data": "x"})
        assert again.json() == later.json()
        purged = await server.store.idempotency.purge(clock.now_ms() + 60_000, 100)
        assert purged == 1


async def test_a_key_committed_by_another_node_stores_nothing(
    server: Running, queue: dict[str, Any]
) -> None:
    """Two nodes that took the same key at once: the later commit stores nothing."""
    org = (await server.store.organizations.get_by_name("default")).id  # type: ignore[union-attr]
    now = server.store.clock.now_ms()

    def publication() -> Publication:
        message = NewMessage(new_id(), org, queue["id"], None, "x", now)
        answer = RememberedAnswer(org, "node-race", "f", 200, "{}", now, now + 60_000)
        return Publication((message,), answer)

    first, second = publication(), publication()
    assert await server.store.messages.insert_batch([first]) == [None]
    (outcome,) = await server.store.messages.insert_batch([second])
    assert isinstance(outcome, KeyTaken)
    assert await _count(server, queue["id"]) == 1
    # Within one commit as well: the first of the two keeps the key.
    third, fourth = publication(), publication()
    assert third.answer is not None and fourth.answer is not None
    third = replace(third, answer=replace(third.answer, key="k2"))
    fourth = replace(fourth, answer=replace(fourth.answer, key="k2"))
    outcomes = await server.store.messages.insert_batch([third, fourth])
    assert outcomes[0] is None and isinstance(outcomes[1], KeyTaken)
    assert await _count(server, queue["id"]) == 2


async def test_the_background_purge_deletes_expired_keys(settings: Settings) -> None:
    clock = ManualClock(1_780_000_000_000)
    short = dataclasses.replace(settings, idempotency_ttl_s=60.0)
    async with start_server(short, engine=False, clock=clock) as server:
        qid = (await server.call("POST", "/queues", json={"name": "q"})).json()["queue"]["id"]
        for key in ("a", "b"):
            await _post(server, qid, key, {"data": key})
        clock.advance(30_000)
        await _post(server, qid, "c", {"data": "c"})
        clock.advance(30_000)  # a and b expire now, c in 30 s
        retention = EventRetention(
            server.store.events, 86_400_000, clock=clock, idempotency=server.store.idempotency
        )
        await retention.run_once()
        left = await server.store.db.fetch("SELECT key FROM idempotency_keys ORDER BY key")
        assert [r["key"] for r in left] == ["c"]
