"""Query parameters at the edge (SPEC §1): every integer a client can send, however
large, is a 200 or a 400 (never a 5xx); `pretty` is a strict boolean; a parameter
given twice is refused; both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Running, start_server
from tests.integration.events_helpers import add_listener, add_message
from tidings.config import Settings

HUGE = "561859945824189415424"  # > 2**64
ENORMOUS = "9" * 5000  # past Python's int() digit limit


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Running]:
    """The API without the delivery engine: the listener's attempts (to a closed port)
    would add events while a test compares two reads of them."""
    async with start_server(settings, engine=False) as running:
        yield running


@pytest.fixture
async def world(server: Running, queue: dict[str, Any]) -> dict[str, str]:
    await add_listener(server, queue["id"], "l")
    await add_message(server, queue["id"])
    return {"queue_id": queue["id"]}


LISTS = (
    "/queues",
    "/listeners",
    "/messages",
    "/api_keys",
    "/queues/{queue_id}/listeners",
    "/queues/{queue_id}/messages",
)


@pytest.mark.parametrize("prefix", ["/v1", ""])
async def test_a_page_past_any_result_is_an_empty_200(
    server: Running, world: dict[str, str], prefix: str
) -> None:
    for path in LISTS:
        url = prefix + path.format(**world)
        first = await server.call("GET", url, params={"per_page": "100"})
        (listed,) = (v for k, v in first.json().items() if k != "_links")
        total = len(listed)
        assert total >= 1 and first.headers["X-Total-Count"] == str(total)
        # Just past the end, and far past it: the same total, and "last" is the last
        # page that holds items (not the page asked for, nor one computed from it).
        cases = [(str(total + 1), "1", total)] + [
            (page, "100", 1) for page in (HUGE, ENORMOUS, str(2**63), str(2**62))
        ]
        for page, per_page, last in cases:
            r = await server.call("GET", url, params={"page": page, "per_page": per_page})
            assert r.status_code == 200, (url, page[:30], r.text)
            (items,) = (v for k, v in r.json().items() if k != "_links")
            assert items == []
            assert r.headers["X-Total-Count"] == str(total), (url, page[:30])
            assert f'page={last}&per_page={per_page}>; rel="last"' in r.headers["Link"]
            assert 'rel="first"' in r.headers["Link"]
            assert f'page={last}&per_page={per_page}>; rel="prev"' in r.headers["Link"]


async def test_out_of_range_or_malformed_integers_are_400(
    server: Running, world: dict[str, str]
) -> None:
    bad = {
        "page": ("0", "-1", "-" + HUGE, "1.5", "1e3", "x", "", " 1", "+1", "1_0", "\u0661"),
        "per_page": ("0", "101", HUGE, ENORMOUS, "-" + HUGE, "10.0", "ten"),
    }
    for path in LISTS:
        url = path.format(**world)
        for name, values in bad.items():
            for value in values:
                r = await server.call("GET", url, params={name: value})
                assert r.status_code == 400, (url, name, value[:30], r.text)
                assert r.json()["errors"][0]["path"] == f"$.query.{name}"


async def test_events_huge_integers(server: Running, world: dict[str, str]) -> None:
    events = (await server.call("GET", "/events")).json()["events"]
    assert events
    last = events[-1]
    for after in ("4820680088022323052937216", ENORMOUS, str(2**63), str(2**63 - 1)):
        r = await server.call(
            "GET", "/v1/events", params={"startAfter": after, "startAfterId": last["id"]}
        )
        assert r.status_code == 200, (after[:30], r.text)
        assert r.json()["events"] == []
    for params in (
        {"limit": HUGE},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": ENORMOUS},
        {"startAfter": "-" + HUGE, "startAfterId": last["id"]},
        {"startAfter": "-1", "startAfterId": last["id"]},
        {"startAfter": "1.5", "startAfterId": last["id"]},
    ):
        r = await server.call("GET", "/events", params=params)
        assert r.status_code == 400, (params, r.text)
    # Zero is the start of time: everything comes back.
    r = await server.call("GET", "/events", params={"startAfter": "0", "startAfterId": "0"})
    assert r.json()["events"] == events


async def test_pretty_is_a_strict_boolean(server: Running, world: dict[str, str]) -> None:
    plain = await server.call("GET", "/queues")
    assert (await server.call("GET", "/queues?pretty=false")).text == plain.text
    pretty = await server.call("GET", "/queues?pretty=true")
    assert "\n  " in pretty.text and pretty.json() == plain.json()
    for value in ("null", "1", "0", "TRUE", "yes", "", "true "):
        r = await server.call("GET", "/queues", params={"pretty": value})
        assert r.status_code == 400, (value, r.text)
        assert r.json()["errors"] == [
            {"path": "$.query.pretty", "message": "must be true or false"}
        ]
    # Writes refuse it before changing anything.
    r = await server.call("POST", "/queues?pretty=null", json={"name": "never"})
    assert r.status_code == 400
    names = [q["name"] for q in (await server.call("GET", "/queues")).json()["queues"]]
    assert "never" not in names


async def test_pretty_indents_error_answers_too(server: Running, world: dict[str, str]) -> None:
    """SPEC §1: ``?pretty=true`` returns the same body indented, problems included."""
    qid = world["queue_id"]
    cases = [
        ("GET", "/queues/nope", {}, 404),
        ("GET", "/queues?page=0", {}, 400),
        ("GET", "/queues", {"X-API-KEY": "wrong"}, 401),
        ("GET", "/no/such/path", {}, 404),
        ("DELETE", "/queues", {}, 405),
        ("GET", "/queues", {"Accept": "text/html"}, 406),
        ("POST", f"/queues/{qid}/messages", {"Content-Type": "text/plain"}, 415),
    ]
    for method, path, headers, status in cases:
        sep = "&" if "?" in path else "?"
        plain = await server.call(method, path, headers=headers, content=b"x")
        pretty = await server.call(method, f"{path}{sep}pretty=true", headers=headers, content=b"x")
        assert plain.status_code == pretty.status_code == status, (path, pretty.text)
        assert "\n" not in plain.text and "\n  " in pretty.text, (path, pretty.text)
        assert pretty.json() == plain.json()
        assert pretty.headers["content-type"] == "application/json"
        assert int(pretty.headers["content-length"]) == len(pretty.content)
        if status == 405:
            assert pretty.headers["allow"] == plain.headers["allow"]


async def test_a_parameter_given_twice_is_400(server: Running, world: dict[str, str]) -> None:
    for url in (
        "/queues?pretty=true&pretty=true",
        "/queues?page=1&page=2",
        "/queues?per_page=5&per_page=5",
        "/events?limit=5&limit=6",
        "/events?events=all&events=queues",
        "/events?startAfter=1&startAfter=2&startAfterId=a",
        f"/queues/{world['queue_id']}?pretty=false&pretty=false",
    ):
        r = await server.call("GET", url)
        assert r.status_code == 400, (url, r.text)
        assert "more than once" in r.json()["detail"]
    # Parameters the endpoint does not take are ignored (cache busters and the like).
    assert (await server.call("GET", "/queues?_=123&_=456")).status_code == 200
