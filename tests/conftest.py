"""Shared fixtures: real databases (SQLite files, a fresh PostgreSQL database per
run and worker) and a real tidings server on 127.0.0.1 for each test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from tidings.config import Settings
from tidings.domain.clock import SYSTEM_CLOCK, Clock
from tidings.domain.networks import parse_networks
from tidings.runtime import Runtime
from tidings.storage.migrate import upgrade
from tidings.storage.store import Store
from tidings.storage.tables import metadata

# Every test in these directories starts processes (the `process` tier).
_PROCESS_DIRS = frozenset({"acceptance", "browser", "contract", "faults"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name in _PROCESS_DIRS:
            item.add_marker(pytest.mark.process)


PG_ADMIN_URL = os.environ.get("TIDINGS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BOOTSTRAP_KEY = "test-operator-key-" + "x" * 20

_pg_url: str | None = None
# One TLS context for every test client: loading the CA bundle costs ~50 ms of CPU,
# and httpx would do it for each client it makes.
TLS = ssl.create_default_context()


def _pg_database_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"tidings_test_{os.getpid()}_{worker}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database for this run (and xdist worker), migrated once.

    Without a reachable PostgreSQL the PostgreSQL half of the suite is skipped, so
    the README's test command works anywhere; CI sets TIDINGS_TEST_REQUIRE_PG=1.
    """
    name = _pg_database_name()
    try:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("TIDINGS_TEST_REQUIRE_PG") == "1":
            raise
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _empty(url: str) -> None:
    """Delete every row, children first. DELETE, not TRUNCATE: a TRUNCATE makes new
    files for every table and index, 0.2 s and more per test where this takes ms."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "; ".join(f"DELETE FROM {t.name}" for t in reversed(metadata.sorted_tables))
        )
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tidings.db'}"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_empty(url))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file (per run and xdist worker), copied rather than migrated
    again for every test: the SQLite counterpart of the migrated ``pg_url``."""
    path = tmp_path_factory.mktemp("template") / "tidings.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    """Test settings on a migrated, empty database (``database_url`` alone is a
    database nobody created yet, on SQLite)."""
    if database_url.startswith("sqlite"):
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, database_url.removeprefix("sqlite:///"))
    return Settings(
        database_url=database_url,
        bootstrap_api_key=BOOTSTRAP_KEY,
        allowed_networks=parse_networks("127.0.0.0/8,::1/128"),
        retry_schedule_s=(0.05, 0.1, 0.2),
        delivery_timeout_s=2.0,
        liveness_interval_s=0.5,
        liveness_timeout_s=1.0,
        # Every test client comes from 127.0.0.1 and some send many bad keys on
        # purpose; the lockout tests set their own small threshold.
        lockout_threshold=10_000,
        # Many tests fail attempts on purpose to see retries and missed messages; the
        # circuit breaker's tests set their own threshold.
        breaker_threshold=10_000,
    )


@dataclass
class Running:
    """A tidings server on 127.0.0.1 and a client with the operator key."""

    base_url: str
    api_key: str
    client: httpx.AsyncClient
    store: Store
    settings: Settings
    app: Any
    runtime: Runtime

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self.client.request(method, path, **kw)


def free_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it every keep-alive response waits ~40 ms (Nagle
    # against delayed ACKs).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class _Server(uvicorn.Server):
    """uvicorn that stops as soon as it is told to. Its main loop looks at
    ``should_exit`` every 0.1 s and its shutdown pauses 0.1 s for busy connections:
    waits that every test paid, and the test's client has closed its connection."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = asyncio.Event()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # the ticks keep their housekeeping
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 0.1)

    def stop(self) -> None:
        self.should_exit = True
        self.stopping.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for connection in list(self.server_state.connections):
            connection.shutdown()  # an idle keep-alive connection closes at once
        await asyncio.sleep(0)  # their transports report the close
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)  # something is busy: uvicorn's patient way
            return
        for server in self.servers:
            server.close()
            await server.wait_closed()
        await self.lifespan.shutdown()


@asynccontextmanager
async def start_server(
    settings: Settings, *, engine: bool = True, clock: Clock = SYSTEM_CLOCK
) -> AsyncIterator[Running]:
    """Run the real app on uvicorn inside the test's event loop, built by the same
    runtime as ``tidings serve`` (``clock``: the one every service reads)."""
    runtime = Runtime(settings, api=True, engine=engine, clock=clock)
    app = runtime.asgi_app()
    sock = free_socket()
    # proxy_headers=False: uvicorn would otherwise take X-Forwarded-For from 127.0.0.1
    # itself; like granian under `tidings serve`, only TIDINGS_TRUSTED_PROXIES decides.
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", access_log=False, proxy_headers=False
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    host, port = sock.getsockname()
    base = f"http://{host}:{port}"
    client = httpx.AsyncClient(
        base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}, timeout=10, verify=TLS
    )
    try:
        yield Running(base, BOOTSTRAP_KEY, client, runtime.store, settings, app, runtime)
    finally:
        await client.aclose()
        server.stop()
        await task
        sock.close()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Running]:
    async with start_server(settings) as running:
        yield running


@pytest.fixture
async def idle(settings: Settings) -> AsyncIterator[Running]:
    """A server without an engine: the test plays the engines."""
    async with start_server(settings, engine=False) as running:
        yield running


@pytest.fixture
async def queue(server: Running) -> dict[str, Any]:
    response = await server.call("POST", "/v1/queues", json={"name": "orders"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["queue"]
    return body
