"""The load driver and the sink: post at a steady rate, record every outcome and arrival.

aiohttp on both ends (httpx is too slow a client for thousands of messages here).
The driver never retries a POST: a message is acknowledged (``200``) or counted as
not acknowledged under its outcome (``503``, ``ClientConnectorError``, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.conftest import BOOTSTRAP_KEY
from tests.faults.ledger import Arrival, Ledger

HEADERS = {"X-API-KEY": BOOTSTRAP_KEY}
# The per-key rate limit (6000/min by default) is its own protection with its own
# tests; here it would only turn the load into 429s.
UNLIMITED = {"TIDINGS_RATE_LIMIT": "0"}


@asynccontextmanager
async def sink(ledger: Ledger) -> AsyncIterator[str]:
    """A receiver answering 200 to everything; ``/<listener>`` paths name the listener."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "POST":
            h = request.headers
            ledger.record(
                Arrival(
                    request.path.strip("/"),
                    h.get("webhook-id", ""),
                    h.get("webhook-timestamp", ""),
                    h.get("webhook-signature", ""),
                    body,
                    time.monotonic(),
                )
            )
        return web.Response(text="{}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def setup_queue(
    base: str, ledger: Ledger, listeners: dict[str, str], liveness_url: str | None = None
) -> dict[str, str]:
    """Create a queue and one listener per ``name -> notify_url``; note their secrets.

    Answers ``name -> listener id``. Probes go to ``liveness_url`` when given (a
    faulty notify_url must not also make the listener ``down``)."""
    ids = {}
    async with aiohttp.ClientSession(base, headers=HEADERS) as c:
        async with c.post("/queues", json={"name": "faults-" + ledger.token}) as r:
            assert r.status == 200, await r.text()
            ledger.queue_id = (await r.json())["queue"]["id"]
        for name, url in listeners.items():
            spec = {"name": name, "notify_url": url, "liveness_url": liveness_url or url}
            async with c.post(f"/queues/{ledger.queue_id}/listeners", json=spec) as r:
                assert r.status == 200, await r.text()
                created = (await r.json())["listener"]
                ledger.secrets[name] = created["secret"]
                ids[name] = created["id"]
    return ids


@dataclass
class Driver:
    """Posts ``total`` messages at ``rate`` per second, at most ``concurrency`` at once."""

    base: str
    ledger: Ledger
    total: int
    rate: float
    concurrency: int = 64
    pad: int = 0
    timeout_s: float = 10.0
    refused_retry_s: float = 30.0  # keep trying while the server restarts
    latencies: list[tuple[float, float, int]] = field(default_factory=list)  # (at, s, status)
    first: int = 0  # message numbers start here (several drivers can share one ledger)

    async def run(self) -> None:
        gate = asyncio.Semaphore(self.concurrency)
        connector = aiohttp.TCPConnector(limit=self.concurrency, force_close=False)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(
            self.base, headers=HEADERS, connector=connector, timeout=timeout
        ) as session:
            started = time.monotonic()
            tasks = []
            for n in range(self.total):
                due = started + n / self.rate
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                await gate.acquire()
                tasks.append(asyncio.create_task(self._post(session, gate, self.first + n)))
            await asyncio.gather(*tasks)

    async def _post(self, session: aiohttp.ClientSession, gate: asyncio.Semaphore, n: int) -> None:
        path = f"/queues/{self.ledger.queue_id}/messages"
        data = self.ledger.data(n, self.pad)
        began = time.monotonic()
        status = 0
        try:
            status = await self._send(session, path, n, data)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.ledger.failed[type(exc).__name__] += 1
        finally:
            self.latencies.append((began, time.monotonic() - began, status))
            gate.release()

    async def _send(self, session: aiohttp.ClientSession, path: str, n: int, data: str) -> int:
        # A refused connection sent nothing, so trying again cannot duplicate the
        # message; anything later (reset, timeout, 5xx) is left as not acknowledged.
        deadline = time.monotonic() + self.refused_retry_s
        while True:
            try:
                async with session.post(path, json={"data": data}) as r:
                    if r.status == 200:
                        self.ledger.acked[n] = (await r.json())["message"]["id"]
                        self.ledger.acked_at[n] = time.monotonic()
                    else:
                        retry = "" if r.headers.get("Retry-After") else " without Retry-After"
                        self.ledger.failed[f"{r.status}{retry}"] += 1
                    return r.status
            except aiohttp.ClientConnectorError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


async def drain(
    ledger: Ledger, listeners: list[str], timeout_s: float, stall_s: float = 60.0
) -> float:
    """Poll until every acknowledged message reached every listener; answer the wait.

    Gives up at ``timeout_s``, or earlier once nothing new arrived for ``stall_s``
    (a backlog still being worked off keeps the drain going; a stuck one ends it).
    """
    started = last_progress = time.monotonic()
    arrived = len(ledger.arrivals)
    while any(ledger.missing(name) for name in listeners):
        now = time.monotonic()
        if len(ledger.arrivals) != arrived:
            arrived, last_progress = len(ledger.arrivals), now
        if now - started > timeout_s or now - last_progress > stall_s:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started
