"""Real HTTP receivers on 127.0.0.1 for delivery tests (aiohttp.web), plus a drip server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.polling import until


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    def json(self) -> Any:
        import json

        return json.loads(self.body)


# A behaviour maps (path, number of earlier arrivals on that path) to an answer.
Behaviour = Callable[[str, int], "Answer"]


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hold: asyncio.Event | None = None  # answer only once this is set
    body: bytes = b"{}"


@dataclass
class Receiver:
    base_url: str
    arrivals: list[Arrival]
    behaviour: dict[str, Behaviour]

    def url(self, path: str) -> str:
        return self.base_url + path

    def on(self, path: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.path == path]

    async def wait_for(self, path: str, count: int, timeout_s: float = 10.0) -> list[Arrival]:
        await until(
            lambda: len(self.on(path)) >= count,
            timeout_s,
            step_s=0.01,
            message=lambda: f"{path}: {len(self.on(path))} of {count} arrivals",
        )
        return self.on(path)


@asynccontextmanager
async def receiver(**behaviour: Behaviour) -> AsyncIterator[Receiver]:
    """Paths answer 200 unless a behaviour is given for them (keys: path without '/')."""
    arrivals: list[Arrival] = []
    table = {"/" + k.replace("__", "/"): v for k, v in behaviour.items()}

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        earlier = sum(1 for a in arrivals if a.path == request.path)
        arrivals.append(Arrival(request.path, dict(request.headers), body, time.monotonic()))
        answer = table.get(request.path, lambda _p, _n: Answer())(request.path, earlier)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        if answer.hold is not None:
            await answer.hold.wait()
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)

    server = _Server(handle, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Receiver(f"http://127.0.0.1:{port}", arrivals, table)
    finally:
        await runner.cleanup()
        for transport in server.transports:
            transport.abort()
        await asyncio.sleep(0)  # the loop closes an aborted socket on its next turn


class _Server(web.Server):
    """aiohttp's low-level server, holding every connection it accepts until the
    receiver closes, and then aborting any still open: one the server let go of without
    closing would be collected mid-test as an "unclosed transport" ResourceWarning,
    which the suite fails on (CI, once: two of a receiver whose sender was killed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transports: list[asyncio.Transport] = []

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.transports.append(transport)


@asynccontextmanager
async def drip_server(interval_s: float = 0.5) -> AsyncIterator[tuple[str, list[float]]]:
    """Answers every request one byte at a time, forever; yields (url, connect times)."""
    connected: list[float] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.append(time.monotonic())
        try:
            await reader.readuntil(b"\r\n\r\n")
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(interval_s)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/drip", connected
    finally:
        server.close()
