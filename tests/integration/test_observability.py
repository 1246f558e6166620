"""Request ids and Prometheus metrics against a real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Running, start_server
from tests.integration.test_delivery import add_listener, post, until
from tests.receivers import Answer, receiver
from tidings.config import Settings

TOKEN = "metrics-token-for-tests-0123456789"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(server: Running) -> str:
    r = await server.call("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_request_id_is_echoed_or_made_up(server: Running) -> None:
    r = await server.call("GET", "/v1/queues", headers={"X-Request-Id": "trace-42.a"})
    assert r.headers["x-request-id"] == "trace-42.a"
    for insane in ("bad id", "x" * 129, "a\tb", "<script>\u00e9"):
        headers = {"X-Request-Id": insane.encode("utf-8")}
        made_up = await server.call("GET", "/v1/queues", headers=headers)
        assert len(made_up.headers["x-request-id"]) == 16, insane
    # Answers made before routing carry one too.
    for r in (
        await server.call("GET", "/nowhere"),
        await server.call("GET", "/v1/queues", headers={"Accept": "text/html"}),
    ):
        assert r.status_code in (404, 406)
        assert r.headers["x-request-id"]


async def test_metrics_are_off_unless_configured(server: Running) -> None:
    r = await server.call("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404
    assert r.json()["title"] == "Not Found"


async def test_metrics_need_the_token(settings: Settings) -> None:
    async with start_server(replace(settings, metrics_token=TOKEN)) as server:
        assert (await server.call("GET", "/metrics")).status_code == 401
        wrong = await server.call("GET", "/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        assert "tidings_http_requests_total" in await scrape(server)


async def test_metrics_follow_requests_messages_and_deliveries(settings: Settings) -> None:
    async with (
        start_server(replace(settings, metrics_token=TOKEN)) as server,
        receiver(fail=lambda _p, _n: Answer(500)) as rx,
    ):
        before = await scrape(server)
        assert value(before, "tidings_messages_ingested_total") == 0
        q = (await server.call("POST", "/v1/queues", json={"name": "m"})).json()["queue"]["id"]
        await add_listener(server, q, rx, name="ok", notify="/hook")
        await add_listener(server, q, rx, name="bad", notify="/fail")
        for _ in range(3):
            await post(server, q)
        await rx.wait_for("/hook", 3)
        await rx.wait_for("/fail", 3 * 4)  # 1 attempt + 3 retries each, then missed

        async def settled() -> bool:
            text = await scrape(server)
            return value(text, "tidings_deliveries", state="missed") == 3

        await until(settled)
        text = await scrape(server)
        route = "/queues/{queue_id}/messages"  # both /v1 and root paths
        assert value(text, "tidings_messages_ingested_total") == 3
        assert value(text, "tidings_http_requests_total", method="POST", route=route, status="200")
        assert (
            value(text, "tidings_http_request_duration_seconds_count", method="POST", route=route)
            == 3
        )
        assert value(text, "tidings_ingest_commit_batch_size_sum") == 3
        assert value(text, "tidings_delivery_attempts_total", outcome="acknowledged") == 3
        assert value(text, "tidings_delivery_attempts_total", outcome="rejected") == 12
        assert (
            value(text, "tidings_delivery_attempt_duration_seconds_count", outcome="rejected") == 12
        )
        assert value(text, "tidings_deliveries", state="pending") == 0
        assert (
            sum(
                value(text, "tidings_listeners", liveness=s)
                for s in ("unknown", "stable", "unstable", "down")
            )
            == 2
        )
        # A path nobody routes is one series, not one per path.
        await server.call("GET", "/nope/1")
        await server.call("GET", "/nope/2")
        text = await scrape(server)
        assert (
            value(
                text, "tidings_http_requests_total", method="GET", route="unmatched", status="404"
            )
            == 2
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_metrics_on_a_separate_address(settings: Settings) -> None:
    address = f"127.0.0.1:{_free_port()}"
    async with start_server(replace(settings, metrics_address=address)) as server:
        q: dict[str, Any] = (await server.call("POST", "/queues", json={"name": "x"})).json()
        await post(server, q["queue"]["id"])
        # Not on the API port without a token...
        assert (await server.call("GET", "/metrics")).status_code == 404
        # ...but on its own address.
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://{address}/metrics")
        assert r.status_code == 200
        assert value(r.text, "tidings_messages_ingested_total") == 1


async def test_metrics_count_listener_health(settings: Settings) -> None:
    """Listeners by health state, breaker trips and the engine's disables (SPEC §11)."""
    short = replace(settings, metrics_token=TOKEN, breaker_threshold=2, breaker_cooldown_s=60)
    async with (
        start_server(short) as server,
        receiver(fail=lambda _p, _n: Answer(500), gone=lambda _p, _n: Answer(410)) as rx,
    ):
        q = (await server.call("POST", "/v1/queues", json={"name": "m"})).json()["queue"]["id"]
        await add_listener(server, q, rx, name="ok", notify="/hook")
        await add_listener(server, q, rx, name="bad", notify="/fail")
        await add_listener(server, q, rx, name="gone", notify="/gone")
        for _ in range(2):
            await post(server, q)

        async def settled() -> bool:
            text = await scrape(server)
            return value(text, "tidings_listener_health", state="failing") == 1 and (
                value(text, "tidings_listener_health", state="disabled") == 1
            )

        await until(settled)
        text = await scrape(server)
        assert value(text, "tidings_listener_health", state="healthy") == 1
        assert value(text, "tidings_breaker_trips_total") == 1
        assert value(text, "tidings_listener_disables_total", reason="gone") == 1
