"""The client address behind reverse proxies (SPEC §2, TIDINGS_TRUSTED_PROXIES): the
lockout and the access log use the rightmost X-Forwarded-For address that is not a
trusted proxy, and only when the TCP peer is one. Both backends (lockouts are rows)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.conftest import BOOTSTRAP_KEY, Running, start_server
from tests.processes import serve
from tidings.config import Settings
from tidings.domain.networks import parse_networks

WRONG = "wrong-key-" + "w" * 30
ALICE, BOB = "203.0.113.5", "198.51.100.7"


def _locking(settings: Settings, *proxies: str) -> Settings:
    # Tests reach the server from 127.0.0.1: with 127.0.0.0/8 trusted, that is "the proxy".
    return replace(
        settings,
        lockout_threshold=3,
        lockout_window_s=60.0,
        lockout_seconds=60.0,
        trusted_proxies=parse_networks(",".join(proxies)),
    )


async def _status(srv: Running, forwarded: str | None, key: str | None = None) -> int:
    headers = {"X-API-KEY": key or srv.api_key}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return (await srv.call("GET", "/v1/queues", headers=headers)).status_code


async def _fail(srv: Running, forwarded: str | None, times: int = 3) -> None:
    for _ in range(times):
        assert await _status(srv, forwarded, WRONG) == 401


async def test_lockout_behind_a_trusted_proxy_is_per_forwarded_client(
    settings: Settings,
) -> None:
    async with start_server(_locking(settings, "127.0.0.0/8", "10.0.0.0/8")) as srv:
        await _fail(srv, ALICE)
        assert await _status(srv, ALICE) == 403
        # Bob, behind the same proxy, is not locked out ...
        assert await _status(srv, BOB) == 200
        # ... and Alice cannot dodge the lock by making up addresses on the left: the
        # rightmost address our proxies did not add is hers.
        assert await _status(srv, f"{BOB}, {ALICE}") == 403
        assert await _status(srv, f"1.2.3.4, {ALICE}, 10.1.2.3") == 403  # a second proxy hop
        assert await _status(srv, f"{ALICE}, {BOB}") == 200
        # Several header lines are one list, in order.
        headers = [("X-API-KEY", srv.api_key), ("X-Forwarded-For", BOB)]
        headers.append(("X-Forwarded-For", ALICE))
        assert (await srv.client.get("/queues", headers=headers)).status_code == 403
        # IPv6 clients are grouped by /64, as for direct ones.
        await _fail(srv, "2001:db8:1:2::1")
        assert await _status(srv, "2001:db8:1:2::ffff") == 403
        assert await _status(srv, "2001:db8:1:3::1") == 200


async def test_only_proxies_in_the_chain_all_trusted_means_the_leftmost(
    settings: Settings,
) -> None:
    async with start_server(_locking(settings, "127.0.0.0/8", "10.0.0.0/8")) as srv:
        await _fail(srv, "10.9.9.9, 10.0.0.1")
        assert await _status(srv, "10.9.9.9") == 403
        assert await _status(srv, "10.0.0.1") == 200
        # No header from a trusted peer: the peer itself.
        await _fail(srv, None)
        assert await _status(srv, None) == 403
        assert await _status(srv, BOB) == 200


async def test_malformed_forwarded_entries(settings: Settings) -> None:
    """A malformed entry where the client should be: the trusted proxy that wrote it is
    all we know, so that proxy's address is the client (never the made-up text)."""
    async with start_server(_locking(settings, "127.0.0.0/8", "10.0.0.0/8")) as srv:
        await _fail(srv, "unknown, 10.0.0.7")
        assert await _status(srv, "10.0.0.7") == 403
        assert await _status(srv, "garbage, 10.0.0.7") == 403
        assert await _status(srv, "10.0.0.8") == 200
        # Junk left of the real client is never looked at; ports and brackets are taken.
        assert await _status(srv, f"not-an-ip, {BOB}") == 200
        await _fail(srv, f"{ALICE}:4711")
        assert await _status(srv, ALICE) == 403
        assert await _status(srv, "[2001:db8::1]:443") == 200
        # Empty entries are skipped: a header of commas only is no header, i.e. the peer.
        await _fail(srv, None)
        assert await _status(srv, ", ,") == 403
        assert await _status(srv, BOB) == 200


@pytest.mark.parametrize("proxies", [(), ("10.0.0.0/8",)], ids=["no setting", "other peer"])
async def test_forwarded_for_is_ignored_unless_the_peer_is_trusted(
    settings: Settings, proxies: tuple[str, ...]
) -> None:
    async with start_server(_locking(settings, *proxies)) as srv:
        await _fail(srv, ALICE)
        # The lock is on 127.0.0.1, whatever anyone claims to forward.
        assert await _status(srv, BOB) == 403
        assert await _status(srv, None) == 403


@pytest.fixture
def access_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("tidings.access")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def test_the_access_log_names_the_same_client(
    settings: Settings, access_log: list[logging.LogRecord]
) -> None:
    async with start_server(_locking(settings, "127.0.0.0/8")) as srv:
        await srv.call("GET", "/queues", headers={"X-Forwarded-For": f"9.9.9.9, {ALICE}"})
        await srv.call("GET", "/nowhere", headers={"X-Forwarded-For": BOB})
        await srv.call("GET", "/queues")
    clients = [getattr(r, "client", None) for r in access_log]
    assert clients == [ALICE, BOB, "127.0.0.1"]
    async with start_server(_locking(settings)) as srv:
        await srv.call("GET", "/queues", headers={"X-Forwarded-For": ALICE})
    assert getattr(access_log[-1], "client", None) == "127.0.0.1"


@pytest.mark.process
async def test_tidings_serve_trusts_only_the_setting(database_url: str, tmp_path: Path) -> None:
    """The same through the production server (granian), which must not apply
    X-Forwarded-For on its own."""
    lockout = {"TIDINGS_LOCKOUT_THRESHOLD": "2", "TIDINGS_LOCKOUT_SECONDS": "60"}
    for proxies, bob_after in (("", 403), ("127.0.0.1/32", 200)):
        proc, base = await serve(
            database_url, tmp_path / "serve.log", None, TIDINGS_TRUSTED_PROXIES=proxies, **lockout
        )
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:

                async def get(key: str, forwarded: str) -> int:
                    headers = {"X-API-KEY": key, "X-Forwarded-For": forwarded}
                    return (await client.get("/v1/queues", headers=headers)).status_code

                for _ in range(2):
                    assert await get(WRONG, ALICE) == 401
                assert await get(BOOTSTRAP_KEY, ALICE) == 403
                assert await get(BOOTSTRAP_KEY, BOB) == bob_after, proxies
        finally:
            proc.terminate()
        # The first round locked out 127.0.0.1; the second never counts that address.
