"""Shared fixtures: real databases (SQLite files, a fresh PostgreSQL database per
run and worker) and a real tidings server on 127.0.0.1 for each test."""

from __future__ import annotations

import asyncio
import os
import socket
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

PG_ADMIN_URL = os.environ.get("TIDINGS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BOOTSTRAP_KEY = "test-operator-key-" + "x" * 20

_pg_url: str | None = None


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


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        await conn.execute(f"TRUNCATE {tables} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tidings.db'}"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
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
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    host, port = sock.getsockname()
    base = f"http://{host}:{port}"
    client = httpx.AsyncClient(base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}, timeout=10)
    try:
        yield Running(base, BOOTSTRAP_KEY, client, runtime.store, settings, app, runtime)
    finally:
        await client.aclose()
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Running]:
    async with start_server(settings) as running:
        yield running


@pytest.fixture
async def queue(server: Running) -> dict[str, Any]:
    response = await server.call("POST", "/v1/queues", json={"name": "orders"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["queue"]
    return body
