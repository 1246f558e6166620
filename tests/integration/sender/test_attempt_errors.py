"""The attempt log's ``error`` and ``response_body`` (SPEC §11), from real requests:
each error class comes from what failed (the exception's type), never its text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from tests.conftest import free_socket
from tests.receivers import Answer, receiver
from tidings.delivery.sender import Sender
from tidings.destinations import DestinationPolicy
from tidings.domain.models import AttemptError
from tidings.domain.networks import parse_networks
from tidings.storage.attempts import body_text

LOCAL = DestinationPolicy(parse_networks("127.0.0.0/8"))


@asynccontextmanager
async def raw_server(
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()


async def _send(url: str, policy: DestinationPolicy = LOCAL, deadline_s: float = 2.0) -> object:
    sender = Sender(policy, 4)
    try:
        return await sender.request("POST", url, deadline_s, b"{}")
    finally:
        await sender.close()


async def test_an_answer_keeps_its_status_and_first_1024_bytes_as_text() -> None:
    body = b"\xff\xfebad " + b"x" * 3000
    async with receiver(hook=lambda _p, _n: Answer(status=500, body=body)) as rx:
        answer = await _send(rx.url("/hook"))
    assert answer.status == 500 and answer.failure is None  # type: ignore[attr-defined]
    kept = answer.body  # type: ignore[attr-defined]
    assert kept == body[:1024]
    text = body_text(kept)
    assert text is not None and text.startswith("\ufffd\ufffdbad xxx") and len(text) == 1024


async def test_nul_bytes_are_replaced_so_both_databases_keep_the_same_text() -> None:
    assert body_text(b"a\x00b") == "a\ufffdb"
    assert body_text(b"") == ""
    assert body_text(None) is None


async def test_a_redirect_is_a_failure_of_its_own_class() -> None:
    moved = Answer(status=302, headers={"Location": "http://127.0.0.1:1/x"})
    async with receiver(hook=lambda _p, _n: moved) as rx:
        answer = await _send(rx.url("/hook"))
    assert answer.status == 302  # type: ignore[attr-defined]
    assert answer.failure is AttemptError.REDIRECT  # type: ignore[attr-defined]


async def test_a_closed_port_is_a_connection_error() -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    answer = await _send(f"http://127.0.0.1:{port}/hook")
    assert answer.status is None  # type: ignore[attr-defined]
    assert answer.failure is AttemptError.CONNECTION  # type: ignore[attr-defined]
    assert answer.body is None  # type: ignore[attr-defined]


async def test_no_answer_in_time_is_a_timeout() -> None:
    async with receiver(hook=lambda _p, _n: Answer(delay_s=2)) as rx:
        answer = await _send(rx.url("/hook"), deadline_s=0.2)
    assert answer.failure is AttemptError.TIMEOUT  # type: ignore[attr-defined]


async def test_an_address_the_policy_refuses_is_address_refused() -> None:
    async with receiver() as rx:
        literal = await _send(rx.url("/hook"), DestinationPolicy(()))
        port = rx.base_url.rsplit(":", 1)[1]
        named = await _send(f"http://localhost:{port}/hook", DestinationPolicy(()))
    assert literal.failure is AttemptError.ADDRESS_REFUSED  # type: ignore[attr-defined]
    assert named.failure is AttemptError.ADDRESS_REFUSED  # type: ignore[attr-defined]


async def test_tls_to_a_plain_http_server_is_a_tls_error() -> None:
    async with receiver() as rx:
        answer = await _send(rx.url("/hook").replace("http://", "https://"))
    assert answer.failure is AttemptError.TLS  # type: ignore[attr-defined]


async def test_a_malformed_status_line_is_an_invalid_response() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HELLO THERE\r\n\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(garbage) as url:
        answer = await _send(url)
    assert answer.status is None  # type: ignore[attr-defined]
    assert answer.failure is AttemptError.INVALID_RESPONSE  # type: ignore[attr-defined]
