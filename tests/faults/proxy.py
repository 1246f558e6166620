"""A small asyncio TCP fault proxy between tidings and a receiver (no toxiproxy here).

Modes:

* ``pass``: forward both ways;
* ``latency``: forward, holding the answer back ``delay_s``;
* ``blackhole``: read the request, never answer, never close;
* ``reset``: read the request, then close with a TCP RST;
* ``drip``: answer one byte every ``delay_s``, forever;
* ``huge``: a status line, then an endless body as fast as the socket takes it;
* ``bomb``: ``Content-Encoding: gzip`` over 64 MiB of zeros (64 KiB on the wire).

The body faults answer ``500``: they test that tidings neither hangs on nor
buffers an answer. (Status decides acknowledgement; a ``2xx`` with such a body
would be a delivery, read only up to the sender's cap.)
Every connection is logged as (opened, closed by tidings) so tests can check how
long tidings held it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
import time
from dataclasses import dataclass, field
from functools import cache

MODES = ("pass", "latency", "blackhole", "reset", "drip", "huge", "bomb")


@cache
def _bomb() -> bytes:
    return gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)


@dataclass
class FaultProxy:
    mode: str
    upstream: tuple[str, int] | None = None
    delay_s: float = 0.2
    connections: list[tuple[float, float | None]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> FaultProxy:
        assert self.mode in MODES, self.mode
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def held_s(self) -> list[float]:
        """How long each finished connection stayed open."""
        return [end - start for start, end in self.connections if end is not None]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = len(self.connections)
        self.connections.append((time.monotonic(), None))
        try:
            await getattr(self, "_" + self.mode)(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.connections[index] = (self.connections[index][0], time.monotonic())
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _pass(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward until tidings closes its side (the answer may still be on its way)."""
        assert self.upstream is not None
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        answer = asyncio.create_task(_pipe(up_reader, writer, self._answer_delay()))
        try:
            await _pipe(reader, up_writer, 0.0)
        finally:
            answer.cancel()
            up_writer.close()

    def _answer_delay(self) -> float:
        return self.delay_s if self.mode == "latency" else 0.0

    _latency = _pass

    async def _blackhole(self, reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # swallow everything, answer nothing, until closed
            pass

    async def _reset(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        # SO_LINGER with a zero timeout turns close() into a RST.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _drip(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        while True:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(self.delay_s)

    async def _huge(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10000000000\r\n\r\n")
        chunk = b"z" * 65536
        while True:
            writer.write(chunk)
            await writer.drain()

    async def _bomb(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = _bomb()
        writer.write(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        writer.write(body)
        await writer.drain()
        await reader.read()  # hold the connection until tidings drops it (it should, at once)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    first = True
    while data := await reader.read(65536):
        if first and delay:
            await asyncio.sleep(delay)
        first = False
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()
