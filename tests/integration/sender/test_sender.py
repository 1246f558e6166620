"""The delivery client (tidings/delivery/sender.py) against real servers on 127.0.0.1:
answer framings, the body cap, the keep-alive pool and its retry-once, TLS, deadlines,
and that no socket outlives a request that was cut or the sender's close()."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trustme

from tests.polling import until
from tests.sockets import socket_inodes, tcp_inodes
from tidings.delivery.sender import (
    KEPT_BODY_BYTES,
    MAX_ANSWER_BYTES,
    MAX_RESPONSE_BYTES,
    USER_AGENT,
    Response,
    Sender,
)
from tidings.destinations import DestinationPolicy
from tidings.domain.models import AttemptError
from tidings.domain.networks import parse_networks

LOCAL = DestinationPolicy(parse_networks("127.0.0.0/8"))


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Request:
    connection: int  # which connection it came on, from 0
    number: int  # its place on that connection, from 0
    head: bytes
    body: bytes


@dataclass
class Reply:
    data: bytes | None = OK  # None: close the connection without answering
    close: bool = False  # close the connection once written
    delay_s: float = 0.0  # before answering
    drip_s: float = 0.0  # write the answer a byte at a time, this far apart


@dataclass
class Gauge:
    open_now: int = 0
    most_open: int = 0


@dataclass
class Canned:
    url: str
    port: int
    gauge: Gauge
    requests: list[Request] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def canned(
    reply: Callable[[Request], Reply],
    ssl_context: ssl.SSLContext | None = None,
    gauge: Gauge | None = None,
) -> AsyncIterator[Canned]:
    """An HTTP/1.1 server that answers each request with the bytes ``reply`` gives;
    ``gauge`` counts its open connections (pass one to several servers for a sum)."""
    state = Canned("", 0, gauge or Gauge())

    handlers: set[asyncio.Task[object]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        handlers.add(handler)
        connection, state.connections = state.connections, state.connections + 1
        state.gauge.open_now += 1
        state.gauge.most_open = max(state.gauge.most_open, state.gauge.open_now)
        try:
            for number in range(1000):
                request = Request(connection, number, *await _read_request(reader))
                state.requests.append(request)
                answer = reply(request)
                if answer.delay_s and await _closed_within(reader, answer.delay_s):
                    break
                if answer.data is None:
                    break
                await _write(writer, answer.data, answer.drip_s)
                if answer.close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the server's teardown below: the handler ends quietly
        finally:
            state.gauge.open_now -= 1
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ssl_context)
    state.port = server.sockets[0].getsockname()[1]
    scheme = "https" if ssl_context else "http"
    state.url = f"{scheme}://127.0.0.1:{state.port}/hook"
    try:
        yield state
    finally:
        server.close()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers)


async def _closed_within(reader: asyncio.StreamReader, delay_s: float) -> bool:
    """Wait ``delay_s``, or less if the client closes the connection first (then True)."""
    try:
        async with asyncio.timeout(delay_s):
            return await reader.read(1) == b""
    except TimeoutError:
        return False


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


async def _write(writer: asyncio.StreamWriter, data: bytes, drip_s: float) -> None:
    for part in [data[i : i + 1] for i in range(len(data))] if drip_s else [data]:
        if writer.is_closing():  # the client went away while it dripped (uvloop's
            return  # transport raises RuntimeError on a write then, not ConnectionError)
        writer.write(part)
        await writer.drain()
        if drip_s:
            await asyncio.sleep(drip_s)


def always(data: bytes, *, close: bool = False, delay_s: float = 0.0) -> Callable[[Request], Reply]:
    return lambda _r: Reply(data, close, delay_s)


def client_sockets(port: int) -> int:
    """Sockets of this process connected to ``port`` on the far end (clients of it)."""
    return len(tcp_inodes(port, remote=True) & socket_inodes("self"))


@asynccontextmanager
async def sender(max_connections: int = 4, **options: object) -> AsyncIterator[Sender]:
    client = Sender(LOCAL, max_connections, **options)  # type: ignore[arg-type]
    try:
        yield client
    finally:
        await client.close()


async def test_the_request_carries_our_headers_and_nothing_that_asks_for_more() -> None:
    async with canned(always(OK)) as server, sender() as client:
        answer = await client.request("POST", server.url + "?a=1", 2.0, b"{}", {"X-Team": "a"})
        assert (answer.status, answer.body, answer.failure) == (200, b"ok", None)
        [request] = server.requests
        lines = request.head.decode().split("\r\n")
        assert lines[0] == "POST /hook?a=1 HTTP/1.1"
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if line)}
        assert headers == {
            "host": f"127.0.0.1:{server.port}",
            "user-agent": USER_AGENT,
            "x-team": "a",
            "content-length": "2",
        }
        assert request.body == b"{}"
        # A caller's User-Agent replaces ours (one User-Agent line; requests.py spells a
        # listener's so, tests/unit/test_request_headers.py).
        await client.request("POST", server.url, 2.0, b"{}", {"User-Agent": "mine/1"})
        lines = server.requests[-1].head.decode().split("\r\n")
        assert [x for x in lines if x.lower().startswith("user-agent:")] == ["User-Agent: mine/1"]
        assert lines[1] == f"Host: 127.0.0.1:{server.port}"
        del server.requests[-1]
        # A header value with a line break never reaches the wire.
        bad = await client.request("POST", server.url, 2.0, b"{}", {"X-A": "1\r\nX-B: 2"})
        assert bad.status is None and bad.error and "line break" in bad.error
        assert len(server.requests) == 1


async def test_chunked_answers_are_read_and_their_connection_reused() -> None:
    chunked = b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
    chunked += b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    async with canned(always(chunked)) as server, sender() as client:
        for _ in range(3):
            answer = await client.request("POST", server.url, 2.0, b"{}")
            assert (answer.status, answer.body, answer.retry_after) == (503, b"hello world", "7")
        assert server.connections == 1


async def test_an_answer_framed_by_the_end_of_the_connection() -> None:
    until_close = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the very end"
    async with canned(always(until_close, close=True)) as server, sender() as client:
        for _ in range(2):
            answer = await client.request("POST", server.url, 2.0, b"{}")
            assert (answer.status, answer.body) == (200, b"to the very end")
        assert server.connections == 2


async def test_an_interim_answer_is_skipped_for_the_final_one() -> None:
    async with canned(always(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)) as server, sender() as client:
        answer = await client.request("POST", server.url, 2.0, b"{}")
        assert (answer.status, answer.body) == (200, b"ok")


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",  # cut short
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",  # ambiguous
        b"HTTP/1.1 2000 OK\r\n\r\n",
    ],
)
async def test_a_malformed_answer_is_invalid(data: bytes) -> None:
    async with canned(always(data, close=True)) as server, sender() as client:
        answer = await client.request("POST", server.url, 2.0, b"{}")
        assert (answer.status, answer.failure) == (None, AttemptError.INVALID_RESPONSE)
        assert answer.error


async def test_a_body_over_the_cap_is_cut_and_its_connection_dropped() -> None:
    big = b"x" * (4 * MAX_RESPONSE_BYTES)
    data = b"HTTP/1.1 500 Big\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    async with canned(always(data)) as server, sender() as client:
        for _ in range(2):
            answer = await client.request("POST", server.url, 2.0, b"{}")
            assert (answer.status, answer.body) == (500, big[:KEPT_BODY_BYTES])
        assert server.connections == 2


async def test_an_endless_head_or_chunk_stream_is_cut() -> None:
    # llhttp keeps no limit: the sender reads a bounded number of bytes of an answer.
    endless_head = b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * (4 * MAX_ANSWER_BYTES)
    async with canned(always(endless_head)) as server, sender() as client:
        answer = await client.request("POST", server.url, 5.0, b"{}")
        assert (answer.status, answer.failure) == (None, AttemptError.INVALID_RESPONSE)
    tiny_chunks = (
        b"HTTP/1.1 502 Bad\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"1;x=yyyyyyyy\r\nz\r\n" * (MAX_ANSWER_BYTES // 4)
    )
    async with canned(always(tiny_chunks)) as server, sender() as client:
        answer = await client.request("POST", server.url, 5.0, b"{}")
        assert (answer.status, answer.failure) == (502, None)
        assert answer.body == b"z" * KEPT_BODY_BYTES
        assert (await client.request("POST", server.url, 5.0, b"{}")).status == 502
        assert server.connections == 2  # the cut one was not reused


async def test_bytes_past_the_answer_keep_its_connection_out_of_the_pool() -> None:
    # A second answer to one request (a server's 408 on what it thinks is idle).
    extra = OK + b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
    async with canned(always(extra)) as server, sender() as client:
        for _ in range(2):
            answer = await client.request("POST", server.url, 2.0, b"{}")
            assert (answer.status, answer.body) == (200, b"ok")
        assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        OK + b"garbage!",  # not HTTP at all, in the same write as the answer
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",  # 204: no body
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nokjunk",
    ],
)
async def test_junk_after_a_whole_answer_in_the_same_read_leaves_the_answer(
    answer: bytes,
) -> None:
    """The answer was whole before the junk: it stands (a 2xx acknowledges, SPEC §5), and
    only its connection goes. It failed as invalid_response, so a receiver that
    acknowledged was sent the delivery again, and a liveness URL judged down."""
    async with canned(always(answer)) as server, sender() as client:
        for _ in range(2):
            got = await client.request("POST", server.url, 2.0, b"{}")
            assert (got.status, got.failure) == (int(answer[9:12]), None), got.error
        assert server.connections == 2  # never pooled after junk


async def test_a_reset_in_the_middle_of_an_answer_is_a_connection_failure() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, not FIN

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with sender() as client:
            got = await client.request("POST", f"http://127.0.0.1:{port}/hook", 2.0, b"{}")
    finally:
        server.close()
    assert (got.status, got.failure) == (None, AttemptError.CONNECTION), got.error


async def test_the_deadline_covers_the_wait_for_a_connection() -> None:
    def reply(request: Request) -> Reply:
        return Reply(OK, delay_s=3600) if request.body == b"held" else Reply(OK)

    async with canned(reply) as server, sender(max_connections=1) as client:
        held = asyncio.create_task(client.request("POST", server.url, 60.0, b"held"))
        await until(lambda: len(server.requests) == 1)
        answer = await client.request("POST", server.url, 0.2, b"{}")
        assert (answer.status, answer.failure) == (None, AttemptError.TIMEOUT)
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        # The slot is free again: the next request gets it.
        assert (await client.request("POST", server.url, 2.0, b"{}")).status == 200


async def test_connection_close_is_honoured() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with canned(always(closing)) as server, sender() as client:  # it leaves it open
        for _ in range(2):
            assert (await client.request("POST", server.url, 2.0, b"{}")).status == 200
        assert server.connections == 2


async def test_a_pooled_connection_serves_only_its_own_origin() -> None:
    async with canned(always(OK)) as one, canned(always(OK)) as two, sender() as client:
        for url in (one.url, two.url, one.url, two.url):
            assert (await client.request("POST", url, 2.0, b"{}")).status == 200
        assert (one.connections, two.connections) == (1, 1)
        assert [r.connection for r in one.requests + two.requests] == [0, 0, 0, 0]


async def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    async with canned(always(OK, close=True)) as server, sender() as client:
        for _ in range(3):
            assert (await client.request("POST", server.url, 2.0, b"{}")).status == 200
        assert server.connections == 3


async def test_a_stale_pooled_connection_is_retried_once_on_a_fresh_one() -> None:
    # The server takes the second request of a connection and closes without a byte of
    # answer, as a server does whose idle timeout fell as the request left. That copy
    # reached it: receivers dedupe by webhook-id (docs/delivery.md).
    def reply(request: Request) -> Reply:
        return Reply(None) if request.number == 1 else Reply(OK)

    async with canned(reply) as server, sender() as client:
        assert (await client.request("POST", server.url, 2.0, b"1")).status == 200
        answer = await client.request("POST", server.url, 2.0, b"2")
        assert (answer.status, answer.body) == (200, b"ok")
        assert [(r.connection, r.number, r.body) for r in server.requests] == [
            (0, 0, b"1"),
            (0, 1, b"2"),
            (1, 0, b"2"),
        ]


async def test_a_fresh_connection_closed_without_an_answer_is_not_retried() -> None:
    async with canned(always(b"", close=True)) as server, sender() as client:
        answer = await client.request("POST", server.url, 2.0, b"{}")
        assert (answer.status, answer.failure) == (None, AttemptError.CONNECTION)
        assert len(server.requests) == 1


async def test_a_stale_retry_that_fails_too_is_not_retried_again() -> None:
    def reply(request: Request) -> Reply:
        return Reply(OK) if request.connection == 0 and request.number == 0 else Reply(None)

    async with canned(reply) as server, sender() as client:
        assert (await client.request("POST", server.url, 2.0, b"{}")).status == 200
        answer = await client.request("POST", server.url, 2.0, b"{}")
        assert answer.failure is AttemptError.CONNECTION
        assert len(server.requests) == 3  # the first, the stale one and one retry


async def test_a_dripping_receiver_is_cut_at_the_deadline() -> None:
    drip = Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000, drip_s=0.02)
    async with canned(lambda _r: drip) as server, sender() as client:
        answer = await client.request("POST", server.url, 0.5, b"{}")
        assert (answer.status, answer.failure) == (None, AttemptError.TIMEOUT)
        assert answer.error == "no complete answer within 0.5 s"
        await until(lambda: client_sockets(server.port) == 0)
        assert server.connections == 1


async def test_the_connection_limit_holds_across_origins() -> None:
    slow, both = always(OK, delay_s=0.02), Gauge()
    async with (
        canned(slow, gauge=both) as one,
        canned(slow, gauge=both) as two,
        sender(max_connections=2) as client,
    ):
        urls = [one.url, two.url] * 6
        answers = await asyncio.gather(*(client.request("POST", u, 10.0, b"{}") for u in urls))
        assert [a.status for a in answers] == [200] * 12
        # Never more than two open at once, across both servers (idle ones included).
        assert both.most_open <= 2
        assert client_sockets(one.port) + client_sockets(two.port) <= 2


async def test_the_connection_limit_queues_requests_to_one_origin() -> None:
    async with canned(always(OK, delay_s=0.02)) as server, sender(max_connections=3) as client:
        answers = await asyncio.gather(
            *(client.request("POST", server.url, 10.0, b"{}") for _ in range(12))
        )
        assert [a.status for a in answers] == [200] * 12
        assert server.gauge.most_open <= 3 and server.connections <= 3


async def test_no_socket_outlives_a_cut_request_or_close() -> None:
    def reply(request: Request) -> Reply:
        return Reply(OK) if request.body == b"quick" else Reply(OK, delay_s=3600)

    async with canned(reply) as server:
        client = Sender(LOCAL, 4)
        held = asyncio.create_task(client.request("POST", server.url, 60.0, b"held"))
        await until(lambda: len(server.requests) == 1)
        assert client_sockets(server.port) == 1
        held.cancel()  # as the engine cancels attempts when it stops
        with pytest.raises(asyncio.CancelledError):
            await held
        await until(lambda: client_sockets(server.port) == 0)  # closed, not pooled
        assert (await client.request("POST", server.url, 2.0, b"quick")).status == 200
        assert client_sockets(server.port) == 1  # kept alive...
        await client.close()
        assert client_sockets(server.port) == 0  # ...until close() returns


async def test_idle_connections_close_after_the_idle_timeout() -> None:
    async with canned(always(OK)) as server, sender(idle_timeout_s=0.05) as client:
        assert (await client.request("POST", server.url, 2.0, b"{}")).status == 200
        await until(lambda: client_sockets(server.port) == 0)
        assert (await client.request("POST", server.url, 2.0, b"{}")).status == 200
        assert server.connections == 2


async def test_a_redirect_is_answered_not_followed() -> None:
    moved = b"HTTP/1.1 307 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
    async with canned(always(moved)) as server, sender() as client:
        answer = await client.request("POST", server.url, 2.0, b"{}")
        assert (answer.status, answer.failure) == (307, AttemptError.REDIRECT)
        assert len(server.requests) == 1


async def test_a_private_address_is_refused_before_connecting() -> None:
    async with canned(always(OK)) as server:
        client = Sender(DestinationPolicy(()), 4)
        answer = await client.request("POST", server.url, 2.0, b"{}")
        await client.close()
        assert (answer.status, answer.failure) == (None, AttemptError.ADDRESS_REFUSED)
        assert answer.error and "127.0.0.1" in answer.error
        assert server.connections == 0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_server(ca: trustme.CA, name: str, seen: list[str | None]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    context.sni_callback = lambda _sock, server_name, _ctx: seen.append(server_name)  # type: ignore[assignment,return-value]
    return context


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_https_verifies_the_host_name_and_sends_it(ca: trustme.CA) -> None:
    seen: list[str | None] = []
    async with canned(always(OK), _tls_server(ca, "localhost", seen)) as server:
        url = f"https://localhost:{server.port}/hook"
        async with sender(tls=_trusting(ca)) as client:
            for _ in range(2):
                answer = await client.request("POST", url, 5.0, b"{}")
                assert (answer.status, answer.body) == (200, b"ok")
        assert seen == ["localhost"] and server.connections == 1
        # Not trusted by the system's CAs (the default context).
        async with sender() as client:
            untrusted = await client.request("POST", url, 5.0, b"{}")
        assert (untrusted.status, untrusted.failure) == (None, AttemptError.TLS)
        assert untrusted.error and "certificate" in untrusted.error
        assert len(server.requests) == 2


async def test_a_tls_handshake_that_never_ends_is_cut_at_the_deadline() -> None:
    async with canned(always(OK)) as server, sender() as client:  # never answers a hello
        url = server.url.replace("http://", "https://")
        answer = await client.request("POST", url, 0.3, b"{}")
        assert (answer.status, answer.failure) == (None, AttemptError.TIMEOUT)
        await until(lambda: client_sockets(server.port) == 0)


async def test_https_refuses_a_certificate_for_another_host(ca: trustme.CA) -> None:
    seen: list[str | None] = []
    async with canned(always(OK), _tls_server(ca, "other.example", seen)) as server:
        async with sender(tls=_trusting(ca)) as client:
            for host in ("localhost", "127.0.0.1"):
                url = f"https://{host}:{server.port}/hook"
                answer = await client.request("POST", url, 5.0, b"{}")
                assert (answer.status, answer.failure) == (None, AttemptError.TLS), host
        assert server.requests == []
        assert client_sockets(server.port) == 0


async def test_each_request_times_out_at_its_own_deadline_not_before() -> None:
    # Deadlines are kept by buckets of DEADLINE_TICK_S: never early, at most a tick late.
    async with canned(always(OK, delay_s=3600)) as server, sender() as client:
        loop = asyncio.get_running_loop()

        async def timed(deadline_s: float) -> tuple[float, Response]:
            started = loop.time()
            answer = await client.request("POST", server.url, deadline_s, b"{}")
            return loop.time() - started, answer

        results = await asyncio.gather(*(timed(d) for d in (0.05, 0.12, 0.3)))
    for deadline_s, (took, answer) in zip((0.05, 0.12, 0.3), results, strict=True):
        assert (answer.status, answer.failure) == (None, AttemptError.TIMEOUT)
        # 1e-9: the two loop times' difference in floating point (uvloop's clock counts
        # milliseconds, so a timeout right at its deadline measured 0.11999999999989).
        assert deadline_s - 1e-9 <= took < deadline_s + 0.15
