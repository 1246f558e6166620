"""Lockout per client address (SPEC §2) and rate limit per key (SPEC §1), on small settings."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest

from tests.conftest import Running, start_server
from tests.polling import until
from tidings.config import Settings
from tidings.domain.clock import ManualClock

WRONG = {"X-API-KEY": "wrong-key-" + "w" * 30}
# Time stands still unless a test moves it (the rate windows and lockouts read the
# runtime's clock), at the start of a rate-limit window of any length up to 2 s.
START = 1_900_000_000_000


def lockout_settings(settings: Settings) -> Settings:
    return replace(settings, lockout_threshold=3, lockout_window_s=1.0, lockout_seconds=1.5)


async def test_lockout_threshold_window_and_cool_down(settings: Settings) -> None:
    clock = ManualClock(START)
    async with start_server(lockout_settings(settings), clock=clock) as srv:
        # Two failures, then the window passes: they no longer count.
        for _ in range(2):
            assert (await srv.call("GET", "/queues", headers=WRONG)).status_code == 401
        clock.advance(1_050)  # past the 1 s lockout window
        for _ in range(2):
            assert (await srv.call("GET", "/queues", headers=WRONG)).status_code == 401
        assert (await srv.call("GET", "/queues")).status_code == 200

        # The third failure within the window is still answered 401 ...
        missing = await srv.call("GET", "/queues", headers={"X-API-KEY": ""})
        assert missing.status_code == 401
        # ... and from then on the address is refused, valid key included.
        refused = await srv.call("GET", "/queues")
        assert refused.status_code == 403
        assert refused.json()["title"] == "Forbidden"
        assert "failed authentications" in refused.json()["detail"]
        assert refused.headers["Retry-After"] == "2"  # 1.5 s, rounded up
        assert (await srv.call("GET", "/queues", headers=WRONG)).status_code == 403
        # Health stays open for load balancers.
        assert (await srv.call("GET", "/health")).status_code == 200

        clock.advance(1_499)  # the cool-down is 1.5 s
        assert (await srv.call("GET", "/queues")).status_code == 403
        clock.advance(1)
        assert (await srv.call("GET", "/queues")).status_code == 200
        # After the cool-down the count starts from zero.
        for _ in range(2):
            assert (await srv.call("GET", "/queues", headers=WRONG)).status_code == 401
        assert (await srv.call("GET", "/queues")).status_code == 200


async def test_disabled_keys_count_as_failed_authentications(settings: Settings) -> None:
    async with start_server(lockout_settings(settings)) as srv:
        created = await srv.call("POST", "/api_keys", json={"status": "disabled"})
        disabled = {"X-API-KEY": created.json()["api_key"]}
        for _ in range(3):
            assert (await srv.call("GET", "/queues", headers=disabled)).status_code == 401
        assert (await srv.call("GET", "/queues")).status_code == 403


async def test_lockout_holds_across_nodes(settings: Settings) -> None:
    if settings.is_sqlite:
        pytest.skip("nodes share PostgreSQL")
    config = replace(lockout_settings(settings), lockout_seconds=30.0)
    async with start_server(config) as a, start_server(config) as b:
        # Failures on both nodes add up.
        assert (await a.call("GET", "/queues", headers=WRONG)).status_code == 401
        assert (await b.call("GET", "/queues", headers=WRONG)).status_code == 401
        assert (await a.call("GET", "/queues", headers=WRONG)).status_code == 401
        assert (await a.call("GET", "/queues")).status_code == 403

        async def b_refuses() -> bool:
            return (await b.call("GET", "/queues")).status_code == 403

        # Node b learns of the lock at its next sync (every 0.25 s).
        assert await until(b_refuses, 2) < 1.0


# --- rate limit -----------------------------------------------------------------


def _headers(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return (
        int(h["X-RateLimit-Limit"]),
        int(h["X-RateLimit-Remaining"]),
        int(h["X-RateLimit-Reset"]),
    )


async def test_rate_limit_headers_429_and_window_reset(settings: Settings) -> None:
    window = 2
    config = replace(settings, rate_limit_per_minute=3, rate_limit_window_s=window)
    clock = ManualClock(START)  # the start of a window: windows are aligned on the epoch
    async with start_server(config, clock=clock) as srv:
        first = await srv.call("GET", "/queues")
        limit, remaining, reset = _headers(first)
        assert (limit, remaining, reset) == (3, 2, START // 1000 + window)
        assert _headers(await srv.call("GET", "/queues"))[1] == 1
        # Errors of an authenticated caller count and carry the headers too.
        missing = await srv.call("GET", "/queues/nope")
        assert missing.status_code == 404
        assert _headers(missing) == (3, 0, reset)

        clock.advance(500)
        over = await srv.call("GET", "/queues")
        assert over.status_code == 429
        assert over.json()["title"] == "Too Many Requests"
        assert _headers(over) == (3, 0, reset)
        assert over.headers["Retry-After"] == "2"  # 1.5 s to the reset, rounded up
        # Nothing happened: a refused create creates nothing.
        refused = await srv.call("POST", "/queues", json={"name": "late"})
        assert refused.status_code == 429

        clock.advance(1_499)
        assert (await srv.call("GET", "/queues")).status_code == 429
        clock.advance(1)  # the next window
        again = await srv.call("GET", "/queues")
        assert again.status_code == 200
        assert again.json()["queues"] == []
        assert _headers(again) == (3, 2, reset + window)


async def test_rate_limit_is_per_key(settings: Settings) -> None:
    config = replace(settings, rate_limit_per_minute=2, rate_limit_window_s=3600)
    async with start_server(config, clock=ManualClock(START)) as srv:
        other = (await srv.call("POST", "/api_keys", json={})).json()["api_key"]
        assert (await srv.call("GET", "/queues")).status_code == 200  # 2nd of the operator
        assert (await srv.call("GET", "/queues")).status_code == 429
        for expected in (1, 0):
            response = await srv.call("GET", "/queues", headers={"X-API-KEY": other})
            assert response.status_code == 200
            assert _headers(response)[1] == expected


async def test_no_rate_headers_when_limit_is_off_or_caller_unknown(server: Running) -> None:
    assert "X-RateLimit-Limit" in (await server.call("GET", "/queues")).headers
    unknown = await server.call("GET", "/queues", headers=WRONG)
    assert unknown.status_code == 401
    assert "X-RateLimit-Limit" not in unknown.headers
    assert "X-RateLimit-Limit" not in (await server.call("GET", "/health")).headers
    async with start_server(replace(server.settings, rate_limit_per_minute=0)) as srv:
        for _ in range(3):
            response = await srv.call("GET", "/queues")
            assert response.status_code == 200
            assert not any(h.lower().startswith("x-ratelimit") for h in response.headers)


async def test_rate_limit_holds_across_nodes(settings: Settings) -> None:
    if settings.is_sqlite:
        pytest.skip("nodes share PostgreSQL")
    window = 3600
    config = replace(settings, rate_limit_per_minute=5, rate_limit_window_s=window)
    clock = ManualClock(START)
    async with start_server(config, clock=clock) as a, start_server(config, clock=clock) as b:
        for _ in range(3):
            assert (await a.call("GET", "/queues")).status_code == 200
        key = await a.store.api_keys.find_by_key(a.api_key)
        assert key is not None
        start = START // 1000 // window * window

        async def written() -> bool:
            hits = await a.store.db.fetchval(
                "SELECT hits FROM rate_counters WHERE key_id = $1 AND window_start = $2",
                key.id,
                start,
            )
            return bool(hits == 3)

        await until(written, 2)
        # Node b starts from the shared count: 3 used, so 2 left.
        assert _headers(await b.call("GET", "/queues"))[1] == 1
        assert _headers(await b.call("GET", "/queues"))[1] == 0
        assert (await b.call("GET", "/queues")).status_code == 429
        # A burst over both nodes at once admits the limit, not a limit per node
        # (SPEC §2; before, each node counted alone between its syncs).
        clock.advance(window * 1000)
        answers = await asyncio.gather(
            *((a if n % 2 else b).call("GET", "/queues") for n in range(30))
        )
        assert sorted(r.status_code for r in answers) == [200] * 5 + [429] * 25
