"""GET /events: kinds, limit, the (stored_at, id) cursor, bad parameters, tenants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Running, start_server
from tests.integration.events_helpers import (
    add_listener,
    add_message,
    add_queue,
    org_id,
    read_events,
)
from tidings.config import Settings
from tidings.domain.clock import ManualClock
from tidings.domain.events import KINDS, EventType, kind_of
from tidings.domain.models import Scope
from tidings.domain.scopes import default_scopes

FROZEN_MS = 1_780_000_000_000


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Running]:
    """The API without the delivery engine, so the events are exactly what a test did."""
    async with start_server(settings, engine=False) as running:
        yield running


@pytest.fixture
async def frozen(settings: Settings) -> AsyncIterator[Running]:
    """A server whose clock never moves: every event lands in the same millisecond."""
    async with start_server(settings, engine=False, clock=ManualClock(FROZEN_MS)) as running:
        yield running


async def _some_of_everything(server: Running) -> None:
    queue = await add_queue(server, "q")
    await server.call("PUT", f"/queues/{queue['id']}", json={"name": "q2"})
    listener = await add_listener(server, queue["id"], "l")
    await add_message(server, queue["id"], "m")
    await server.call("DELETE", f"/queues/{queue['id']}/listeners/{listener['id']}")


async def test_kind_filter_returns_exactly_that_kind_in_order(server: Running) -> None:
    await _some_of_everything(server)
    everything = await read_events(server)
    assert await read_events(server, events="all") == everything
    assert {kind_of(EventType(e["type"])) for e in everything} == set(KINDS)
    for kind in KINDS:
        filtered = await read_events(server, events=kind)
        assert filtered == [e for e in everything if kind_of(EventType(e["type"])) == kind]
        assert filtered, kind


async def test_limit_caps_and_defaults(server: Running) -> None:
    queue = await add_queue(server, "q")
    await asyncio.gather(*(add_message(server, queue["id"]) for _ in range(105)))
    default = (await server.call("GET", "/events")).json()["events"]
    assert len(default) == 100
    two = (await server.call("GET", "/events", params={"limit": 2})).json()["events"]
    assert two == default[:2]
    everything = await read_events(server)
    assert len(everything) == 1 + 1 + 105  # api key, queue, messages


async def _pages(server: Running, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    """Follow ``_links.next`` until a short page."""
    pages = []
    url: str | None = "/v1/events"
    query: dict[str, Any] | None = {"limit": limit, **params}
    while url is not None:
        body = (await server.call("GET", url, params=query)).json()
        pages.append(body["events"])
        url, query = body["_links"].get("next", {}).get("href"), None
        assert len(pages) < 100
    return pages


async def test_cursor_walks_events_of_one_millisecond(frozen: Running) -> None:
    queues = [await add_queue(frozen, f"q{i}") for i in range(5)]
    await asyncio.gather(*(add_message(frozen, q["id"]) for q in queues for _ in range(3)))
    everything = await read_events(frozen)
    assert {e["stored_at"] for e in everything} == {FROZEN_MS}
    assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)
    assert len(everything) == 1 + 5 + 15

    for limit in (1, 3, 7):
        pages = await _pages(frozen, limit)
        assert [e for page in pages for e in page] == everything
        assert all(len(page) == limit for page in pages[:-1])
    messages = [e for page in await _pages(frozen, 4, events="messages") for e in page]
    assert messages == [e for e in everything if e["type"] == "message_added"]


async def test_cursor_is_exclusive_and_accepts_any_position(server: Running) -> None:
    await _some_of_everything(server)
    everything = await read_events(server)
    for i, event in enumerate(everything):
        after = await read_events(server, startAfter=event["stored_at"], startAfterId=event["id"])
        assert after == everything[i + 1 :]
    # A position between events (e.g. of a purged event) works as well.
    first = everything[0]
    between = await read_events(
        server, startAfter=first["stored_at"], startAfterId=first["id"] + "~"
    )
    assert between == [
        e
        for e in everything[1:]
        if (e["stored_at"], e["id"]) > (first["stored_at"], first["id"] + "~")
    ]
    assert await read_events(server, startAfter=2**62, startAfterId="z") == []
    # A cursor from before the retention period starts at its beginning.
    assert await read_events(server, startAfter=0, startAfterId="0") == everything


@pytest.mark.parametrize(
    "params",
    [
        {"events": "bogus"},
        {"events": ""},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"startAfter": "5"},
        {"startAfterId": "abc"},
        {"startAfter": "-1", "startAfterId": "abc"},
        {"startAfter": "soon", "startAfterId": "abc"},
        {"startAfter": "5", "startAfterId": ""},
        {"startAfter": "5", "startAfterId": "x" * 65},
        {"page": "2"},
        {"per_page": "10"},
    ],
)
async def test_bad_parameters_are_400(server: Running, params: dict[str, str]) -> None:
    response = await server.call("GET", "/v1/events", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["title"] == "Bad Request" and body["status"] == 400
    assert body["detail"] and body["errors"]


async def test_links_and_pretty(server: Running) -> None:
    await add_queue(server, "q")
    body = (await server.call("GET", "/v1/events", params={"limit": 1, "pretty": "true"})).json()
    assert body["_links"]["self"]["href"].startswith(f"{server.base_url}/v1/events")
    assert "startAfterId=" in body["_links"]["next"]["href"]
    last = (await server.call("GET", "/events", params={"limit": 1000})).json()
    assert "next" not in last["_links"]


async def test_other_organizations_see_nothing(server: Running) -> None:
    await _some_of_everything(server)
    key = "second-org-key-" + "y" * 30
    org, _ = await server.store.organizations.create_with_key(
        "second", key, "main", default_scopes()
    )
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-API-KEY": key}) as other:
        events = (await other.get("/events")).json()["events"]
        stats = (await other.get("/stats/messages")).json()["aggregated_api_usage_events"]
    # Its own key's event only, and stats that count nothing of the first organization.
    assert [(e["type"], e["client"]["id"]) for e in events] == [("api_key_added", org.id)]
    assert stats["last_24_hours"]["api_key_added"] == 1
    assert sum(stats["last_24_hours"].values()) == 1
    mine = await read_events(server)
    assert {e["client"]["id"] for e in mine} == {await org_id(server)}


async def test_events_and_stats_need_their_scopes(server: Running) -> None:
    org = await org_id(server)
    key = "queues-only-key-" + "z" * 30
    await server.store.api_keys.create(
        org, key, "narrow", "enabled", (Scope("queues", "write", ("*",)),)
    )
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-API-KEY": key}) as narrow:
        assert (await narrow.get("/events")).status_code == 403
        assert (await narrow.get("/stats/messages")).status_code == 403
    reader = "events-reader-key-" + "w" * 30
    await server.store.api_keys.create(
        org,
        reader,
        "reader",
        "enabled",
        (Scope("events", "read", ("*",)), Scope("stats", "read", ("*",))),
    )
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-API-KEY": reader}) as ok:
        assert (await ok.get("/events")).status_code == 200
        assert (await ok.get("/stats/messages")).status_code == 200
    assert (await server.client.get("/events", headers={"X-API-KEY": "nope"})).status_code == 401


async def test_openapi_describes_events_and_stats(server: Running) -> None:
    doc = (await server.call("GET", "/openapi.json")).json()
    get_events = doc["paths"]["/v1/events"]["get"]
    names = {p["name"] for p in get_events["parameters"]}
    assert {"events", "limit", "cursor"} <= names
    assert "page" not in names
    # The cursor's two parts go together: one object parameter spread into the query.
    (cursor,) = (p for p in get_events["parameters"] if p["name"] == "cursor")
    assert (cursor["style"], cursor["explode"]) == ("form", True)
    assert set(cursor["schema"]["properties"]) == {"startAfter", "startAfterId"}
    assert cursor["schema"]["dependentRequired"] == {
        "startAfter": ["startAfterId"],
        "startAfterId": ["startAfter"],
    }
    assert "/stats/messages" in doc["paths"]
    counts = doc["components"]["schemas"]["EventCounts"]["properties"]
    assert set(counts) == {t.value for t in EventType}
    assert (await server.call("POST", "/events")).status_code == 405
