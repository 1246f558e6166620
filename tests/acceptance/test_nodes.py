"""Two ``tidings serve`` nodes on one PostgreSQL keep every rule of SPEC §2 and §4
between them: a schema change and a key's revocation made through one hold on the
other (at once, and within 1 s), and a node that stalls mid-transaction (SIGSTOP)
never holds up ingest or delivery on the other."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.conftest import BOOTSTRAP_KEY
from tests.processes import Proc, serve
from tests.receivers import receiver

NUMBER = {"n": {"type": "number"}}
STRING = {"n": {"type": "string"}}
FITS = {"number": '{"n": 1}', "string": '{"n": "one"}'}


@asynccontextmanager
async def two_nodes(
    database_url: str, tmp_path: Path, *args: str
) -> AsyncIterator[list[tuple[Proc, httpx.AsyncClient]]]:
    """Nodes A and B on one database, each with an httpx client holding the operator key."""
    nodes: list[tuple[Proc, httpx.AsyncClient]] = []
    try:
        for name in ("a", "b"):
            proc, base = await serve(
                database_url, tmp_path / f"{name}.log", None, *args, TIDINGS_RATE_LIMIT="0"
            )
            client = httpx.AsyncClient(
                base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}, timeout=30
            )
            nodes.append((proc, client))
        yield nodes
    finally:
        for proc, client in nodes:
            await client.aclose()
            proc.signal_tree(signal.SIGCONT)
            if proc.popen.poll() is None:
                proc.terminate()


async def _ok(response: Any) -> dict[str, Any]:
    r = await response
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_schema_changed_on_one_node_is_enforced_on_the_other_at_once(
    pg_database: str, tmp_path: Path
) -> None:
    """The very next POST to B after A answered the schema's PUT meets the new schema,
    however fresh B's own view of the queue was (main: accepted for ~2 s)."""
    async with two_nodes(pg_database, tmp_path, "--no-engine") as [(_, a), (_, b)]:
        queue = await _ok(a.post("/queues", json={"name": "q", "schema": NUMBER}))
        path = f"/queues/{queue['queue']['id']}"
        old = "number"
        for _ in range(10):
            new = "string" if old == "number" else "number"
            # B holds the queue as it is now: it has just served a message to it.
            await _ok(b.post(f"{path}/messages", json={"data": FITS[old]}))
            await _ok(a.put(path, json={"schema": STRING if new == "string" else NUMBER}))
            refused = await b.post(f"{path}/messages", json={"data": FITS[old]})
            assert refused.status_code == 422, refused.text
            await _ok(b.post(f"{path}/messages", json={"data": FITS[new]}))
            old = new


REVOKE_WITHIN_S = 1.0


async def _refused_after(
    b: httpx.AsyncClient, key: str, request: tuple[str, str], refused: int, answered: float
) -> float:
    """Seconds from ``answered`` until B refuses ``key`` (``refused``); B must refuse
    it within REVOKE_WITHIN_S and keep refusing it."""
    method, path = request
    headers = {"X-API-KEY": key}
    n = 0
    while True:
        n += 1
        status = (
            await b.request(method, path, headers=headers, json={"name": f"p{n}"})
        ).status_code
        if status == refused:
            took = time.monotonic() - answered
            break
        assert status == 200, status
        assert time.monotonic() - answered < REVOKE_WITHIN_S, "still accepted on the other node"
        await asyncio.sleep(0.005)
    for _ in range(3):
        assert (
            await b.request(method, path, headers=headers, json={"name": "x"})
        ).status_code == refused
    return took


async def test_a_key_revoked_on_one_node_is_refused_on_the_other_within_a_second(
    pg_database: str, tmp_path: Path
) -> None:
    """Disabled, deleted or narrowed on A: refused on B within 1 s (SPEC §2; main: 1.6 s
    and more, through B's 5 s key cache)."""
    async with two_nodes(pg_database, tmp_path, "--no-engine") as [(_, a), (_, b)]:
        keys = []
        for name in ("disabled", "deleted", "narrowed"):
            created = await _ok(a.post("/api_keys", json={"name": name}))
            key_id = created["_links"]["self"]["href"].rsplit("/", 1)[-1]
            keys.append((f"/api_keys/{key_id}", created["api_key"]))
        read_only = [{"resource": "queues", "access": "read", "targets": ["*"]}]
        cases = [
            (a.put(keys[0][0], json={"status": "disabled"}), keys[0][1], ("GET", "/queues"), 401),
            (a.delete(keys[1][0]), keys[1][1], ("GET", "/queues"), 401),
            (a.put(keys[2][0], json={"scopes": read_only}), keys[2][1], ("POST", "/queues"), 403),
        ]
        took = []
        for change, key, request, refused in cases:
            # B knows the key: it has just accepted it.
            assert (
                await b.request(*request, headers={"X-API-KEY": key}, json={"name": key[:8]})
            ).status_code == 200
            await _ok(change)
            took.append(await _refused_after(b, key, request, refused, time.monotonic()))
        print("refused on the other node after (s):", [round(t, 3) for t in took])


STOPS = 5
STOP_S = 4.0  # longer than any lock a stalled node may hold (1 s idle cut-off)


class _Traffic:
    """Messages posted in a loop to one node, with each one's start and latency."""

    def __init__(self, base: str, queue_path: str) -> None:
        self.base = base
        self.path = f"{queue_path}/messages"
        self.done = False
        self.results: list[tuple[float, float, int]] = []  # (started, seconds, status)
        self.acked: set[str] = set()

    async def run(self, clients: int) -> None:
        timeout = aiohttp.ClientTimeout(total=60)
        headers = {"X-API-KEY": BOOTSTRAP_KEY}
        async with aiohttp.ClientSession(self.base, headers=headers, timeout=timeout) as s:
            await asyncio.gather(*(self._loop(s) for _ in range(clients)))

    async def _loop(self, session: aiohttp.ClientSession) -> None:
        while not self.done:
            started = time.monotonic()
            try:
                async with session.post(self.path, json={"data": "x"}) as r:
                    status = r.status
                    if status == 200:
                        self.acked.add((await r.json())["message"]["id"])
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            self.results.append((started, time.monotonic() - started, status))
            await asyncio.sleep(0.01)


@pytest.mark.timeout(180)
async def test_a_node_stopped_at_random_points_never_stalls_the_other(
    pg_database: str, tmp_path: Path
) -> None:
    """B is stopped (SIGSTOP) at random moments while both nodes ingest and deliver,
    for STOP_S each time. Meanwhile A answers every POST, none of them waiting for B
    to come back, and A's engine keeps delivering (main: a POST on A hung until B
    resumed, behind B's probe claim holding listener rows FOR UPDATE)."""
    rng = random.Random()
    async with receiver() as rx, two_nodes(pg_database, tmp_path) as nodes:
        (_, a), (b_proc, b) = nodes
        queue = await _ok(a.post("/queues", json={"name": "q"}))
        path = f"/queues/{queue['queue']['id']}"
        for name in ("one", "two"):
            await _ok(
                a.post(
                    f"{path}/listeners",
                    json={
                        "name": name,
                        "notify_url": rx.url(f"/{name}"),
                        "liveness_url": rx.url("/live"),
                    },
                )
            )
        on_a, on_b = _Traffic(str(a.base_url), path), _Traffic(str(b.base_url), path)
        traffic = [asyncio.create_task(t.run(clients=2)) for t in (on_a, on_b)]
        windows: list[tuple[float, float]] = []
        try:
            for _ in range(STOPS):
                await asyncio.sleep(rng.uniform(0.3, 1.5))  # a random point in B's work
                stopped = time.monotonic()
                b_proc.signal_tree(signal.SIGSTOP)
                await asyncio.sleep(STOP_S)
                b_proc.signal_tree(signal.SIGCONT)
                windows.append((stopped, time.monotonic()))
            await asyncio.sleep(1)
        finally:
            on_a.done = on_b.done = True
            b_proc.signal_tree(signal.SIGCONT)
            await asyncio.gather(*traffic)

        statuses = Counter(status for _, _, status in on_a.results)
        assert set(statuses) == {200}, statuses
        during = [
            seconds
            for started, seconds, _ in on_a.results
            if any(lo - seconds <= started <= hi for lo, hi in windows)
        ]
        quiet = [s for started, s, _ in on_a.results if started > windows[-1][1] + 0.5]
        # A's engine delivered while B was stopped, in every window.
        arrivals = [x.at for x in rx.arrivals if x.path in ("/one", "/two")]
        per_window = [sum(1 for at in arrivals if lo <= at <= hi) for lo, hi in windows]
        median = sorted(during)[len(during) // 2]
        print(
            f"A: {len(on_a.results)} POSTs, worst {max(during):.3f} s while B was stopped"
            f" (median {median:.3f} s), worst {max(quiet, default=0):.3f} s after;"
            f" B: {dict(Counter(s for _, _, s in on_b.results))};"
            f" deliveries per stop window: {per_window}"
        )
        assert max(during) < STOP_S, "a POST on A waited for B to come back"
        assert all(per_window), per_window
        # Everything A acknowledged arrives at both listeners.
        deadline = time.monotonic() + 60
        while not all(
            on_a.acked <= {x.headers["webhook-id"] for x in rx.on(p)} for p in ("/one", "/two")
        ):
            assert time.monotonic() < deadline, "a message acknowledged by A was not delivered"
            await asyncio.sleep(0.1)
