"""HTTP out: a small HTTP/1.1 client for every attempt and probe (issue 18).

aiohttp's request path was most of the engine's CPU per delivery (68 us a request here,
against 15 us for a bare asyncio protocol: docs/benchmarks.md), and an attempt needs
little of it. This client writes the request itself and parses the answer with llhttp
(``httptools``), over one keep-alive pool:

* **Destination guard.** A new connection goes only to an address
  :meth:`DestinationPolicy.resolve` has just checked (fresh DNS; the checked answer is
  the one connected to, so no rebinding). A pooled connection is reused only for the
  same (scheme, host, port) it was opened for.
* **Pool.** At most ``max_connections`` sockets open at once, idle ones included (an idle
  one of another origin is closed to make room); idle ones close after 30 s. A
  connection is put back only after a complete answer that did not say
  ``Connection: close`` and whose body was read whole within the cap.
* **Retry once.** A request on a pooled connection that ends before any byte of an answer
  (the server closed the idle connection as it was sent) is sent again once, on a fresh
  connection, POSTs included. The first copy may have reached the receiver even so: a
  delivery is at least once anyway, and receivers dedupe by ``webhook-id``.
* **HTTPS** verifies the certificate against the host name of the URL (SNI), while
  connecting to the checked address.
* **One total deadline** per request (pool wait, DNS, connect, TLS, send, answer): a
  receiver that drips a byte a second cannot hold an attempt past it.
* Never follows redirects, never decompresses (asks for none), keeps no cookies, reads at
  most ``MAX_RESPONSE_BYTES`` of a body (the connection is then dropped) and keeps its
  first ``KEPT_BODY_BYTES``. Answers framed by ``Content-Length``, chunked or by the end
  of the connection are read; anything llhttp refuses is an invalid response.

:func:`classify` is the one place a failure becomes the attempt log's error class.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Final, Protocol, cast

import httptools
from yarl import URL

from tidings import __version__
from tidings.destinations import DestinationPolicy, DestinationRefused
from tidings.domain.models import AttemptError

MAX_RESPONSE_BYTES = 16 * 1024
# What the attempt log keeps of an answer's body (SPEC §11).
KEPT_BODY_BYTES = 1024
USER_AGENT = f"tidings/{__version__} (+webhooks)"
_USER_AGENT_LINE = f"User-Agent: {USER_AGENT}\r\n"
IDLE_TIMEOUT_S: Final = 30.0
# Bytes of one answer read at most, framing included: a head longer than this (llhttp
# sets no limit) is invalid; past it with the head read, the answer is cut like a body
# over the cap (a flood of tiny chunks or of trailers). Memory per connection is bounded.
MAX_ANSWER_BYTES: Final = 64 * 1024 + 4 * MAX_RESPONSE_BYTES
# Parsed request targets kept per URL (the listeners' URLs: few, and parsing costs).
_TARGETS_KEPT: Final = 4096


@dataclass(slots=True)  # not frozen: one per attempt (storage/deliveries.py Claimed)
class Response:
    status: int | None  # None: no HTTP answer (refused, timed out, reset, ...)
    retry_after: str | None
    error: str | None  # for the log: what went wrong, in words
    elapsed_s: float
    # The attempt log's error class (from the exception's type, never its text) and
    # the first KEPT_BODY_BYTES of the answer's body (None: no answer).
    failure: AttemptError | None = None
    body: bytes | None = None


class Transport(Protocol):
    """What the engine and the prober send through: :class:`Sender` for real, an
    in-process fake in the engine's unit tests."""

    async def request(
        self,
        method: str,
        url: str,
        deadline_s: float,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response: ...

    async def close(self) -> None: ...


class AddressRefused(OSError):
    """The destination policy refused every address of the host (SPEC §7)."""


class InvalidAnswer(Exception):
    """The answer is not HTTP/1.1 as llhttp reads it, or ended before its framing did."""


class Unanswered(ConnectionError):
    """The connection ended before any byte of an answer."""


def classify(exc: BaseException) -> AttemptError:
    """The attempt log's error class of a failed request, from exception types only."""
    if isinstance(exc, AddressRefused):
        return AttemptError.ADDRESS_REFUSED
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return AttemptError.TLS
    if isinstance(exc, TimeoutError):
        return AttemptError.TIMEOUT
    if isinstance(exc, InvalidAnswer):
        return AttemptError.INVALID_RESPONSE
    return AttemptError.CONNECTION


Origin = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class _Target:
    origin: Origin
    host: str  # as the URL has it (IPv6 unbracketed): resolved, and the TLS server name
    port: int
    tls: bool
    start: str  # "{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ...\r\n"


def _target(url: str) -> _Target:
    # yarl: the parser the API checked the URL with (tidings.destinations), so the
    # host judged at registration is the host connected to.
    parsed = URL(url)
    scheme, host, port = parsed.scheme, parsed.raw_host, parsed.port
    if scheme not in ("http", "https") or not host or port is None:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    authority = f"[{host}]" if ":" in host else host
    if port != (443 if scheme == "https" else 80):
        authority = f"{authority}:{port}"
    start = f"{parsed.raw_path_qs or '/'} HTTP/1.1\r\nHost: {authority}\r\n{_USER_AGENT_LINE}"
    return _Target((scheme, host, port), host, port, scheme == "https", start)


def _request_head(
    method: str, target: _Target, body: bytes | None, headers: dict[str, str] | None
) -> bytes:
    start, breaks = target.start, 4
    if headers:
        if "User-Agent" in headers:
            # The caller's (a listener's, SPEC §10 headers; requests.py spells the name
            # so) replaces ours: one User-Agent line.
            start, breaks = start.replace(_USER_AGENT_LINE, "", 1), 3
        breaks += len(headers)
    lines = [method, " ", start]
    if headers:
        for name, value in headers.items():
            lines += (name, ": ", value, "\r\n")
    if body is not None or method == "POST":
        lines += ("Content-Length: ", str(len(body) if body else 0), "\r\n")
        breaks += 1
    lines.append("\r\n")
    text = "".join(lines)
    # The listener's headers were checked when set (domain/headers.py); this keeps any
    # line break out of the request whatever the caller passed.
    if text.count("\n") != breaks or text.count("\r") != breaks:
        raise ValueError("a request header holds a line break")
    return text.encode("latin-1")


def _time_out(answer: asyncio.Future[None]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


# Answers are timed out by deadline buckets this long: at their deadline, at most this
# much later. One timer per bucket instead of a ``call_at`` and ``cancel`` per request
# (~2 us of the engine's loop per delivery, docs/benchmarks.md).
DEADLINE_TICK_S: Final = 0.01


class _Deadlines:
    """The answers waited for, by the bucket of their deadline (loop time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._buckets: dict[int, set[asyncio.Future[None]]] = {}

    def add(self, deadline: float, answer: asyncio.Future[None]) -> int:
        key = -int(-deadline // DEADLINE_TICK_S)  # the first tick at or after the deadline
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
            self.loop.call_at(key * DEADLINE_TICK_S, self._expire, key)
        bucket.add(answer)
        return key

    def discard(self, key: int, answer: asyncio.Future[None]) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(answer)

    def _expire(self, key: int) -> None:
        for answer in self._buckets.pop(key, ()):
            _time_out(answer)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, the answer parsed by llhttp."""

    def __init__(self, sender: Sender, origin: Origin) -> None:
        self.sender = sender
        self.loop = sender.loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.idle = False  # parked in the pool
        self.idle_since = 0.0
        self.uses = 0  # answers read on it so far
        self.gone: asyncio.Future[None] | None = None  # done once the socket is closed
        self._answer: asyncio.Future[None] | None = None
        self._begin(False)

    def _begin(self, head_only: bool) -> None:
        self.head_only = head_only
        self.status = 0
        self.retry_after: str | None = None
        self.kept = bytearray()
        self.read = 0
        self.received = 0  # bytes of this answer, interim ones included
        self.headers_done = False
        self.framed = False  # Content-Length or chunked: else the end of the connection ends it
        self.complete = False
        self.keep_alive = False

    # What the pool asks.

    def reusable(self) -> bool:
        return (
            self.complete
            and self.keep_alive
            and self.read < MAX_RESPONSE_BYTES
            and not self.lost
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def abort(self) -> None:
        self.lost = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    async def exchange(
        self, data: bytes, head_only: bool, deadline: float
    ) -> tuple[int, str | None, bytes]:
        """Send ``data``, read the answer by ``deadline`` (loop time) or raise TimeoutError."""
        assert self.transport is not None
        if self.lost or self.transport.is_closing():
            raise Unanswered("the pooled connection was closed")
        self._begin(head_only)
        answer = self._answer = self.loop.create_future()
        # The deadline on the answer itself: cheaper than asyncio.timeout's task
        # cancellation on the one await every request makes.
        deadlines = self.sender.deadlines()
        key = deadlines.add(deadline, answer)
        self.transport.write(data)
        try:
            await answer
        finally:
            deadlines.discard(key, answer)
            self._answer = None
        self.uses += 1
        return self.status, self.retry_after, bytes(self.kept)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are ones.
        self.transport = cast(asyncio.Transport, transport)
        self.gone = self.loop.create_future()

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None or answer.done():
            # Bytes nobody asked for (or past the cap): the connection is not reused.
            self.lost = True
            if self.idle:
                self.abort()
            return
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self.lost = True
            if self.complete:  # junk after a whole answer, in the same read: it stands
                answer.set_result(None)
            else:
                answer.set_exception(InvalidAnswer(f"{type(exc).__name__}: {exc}"))
            return
        if self.complete or self.read >= MAX_RESPONSE_BYTES:
            answer.set_result(None)
        elif self.received > MAX_ANSWER_BYTES:
            self.lost = True
            if self.headers_done:
                answer.set_result(None)  # cut, as a body over the cap is
            else:
                answer.set_exception(
                    InvalidAnswer(f"no end of the answer's head in {MAX_ANSWER_BYTES} bytes")
                )

    def eof_received(self) -> bool | None:
        return None  # close; connection_lost decides what the end means

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)
        if self.idle:
            self.sender._drop(self)
        answer = self._answer
        if answer is None or answer.done():
            return
        if isinstance(exc, ssl.SSLError):
            answer.set_exception(exc)
        elif self.headers_done and not self.framed:
            self.complete = True  # read until close: the end of the connection ends the body
            answer.set_result(None)
        elif not self.received:
            answer.set_exception(
                Unanswered(f"the connection closed before an answer ({exc or 'EOF'})")
            )
        elif isinstance(exc, OSError):  # reset mid-answer: a connection failure (SPEC §11)
            answer.set_exception(exc)
        else:
            answer.set_exception(InvalidAnswer(f"the answer was cut short ({exc or 'EOF'})"))

    # llhttp callbacks

    # Once the answer is complete, what llhttp still parses from the same read (a second
    # answer to one request) changes nothing of it: the connection is only not reused.

    def on_message_begin(self) -> None:
        if self.complete:
            self.lost = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        name = name.lower()
        if name == b"retry-after":
            if self.retry_after is None:
                self.retry_after = value.decode("latin-1")
        elif name == b"content-length" or (
            name == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self.framed = True

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        self.status = self.parser.get_status_code()
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_only and self.status >= 200:
            self.complete, self.keep_alive = True, False

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        if len(self.kept) < KEPT_BODY_BYTES:
            self.kept += body[: KEPT_BODY_BYTES - len(self.kept)]
        self.read += len(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if 100 <= self.status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the final one follows.
            received = self.received
            self._begin(self.head_only)
            self.received = received
            return
        self.complete = True


class Sender:
    """The engine's HTTP client: see the module's docstring for what it guarantees."""

    def __init__(
        self,
        policy: DestinationPolicy,
        max_connections: int,
        *,
        tls: ssl.SSLContext | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self._policy = policy
        self._limit = max(1, max_connections)
        self._tls = tls  # default: the system's CAs, loaded at the first https request
        self._idle_timeout_s = idle_timeout_s
        self._open = 0  # sockets counted against the limit: busy, idle or connecting
        self._idle: dict[Origin, list[_Connection]] = {}  # oldest first
        self._busy: set[_Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._targets: dict[str, _Target] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._deadlines: _Deadlines | None = None
        self.loop: asyncio.AbstractEventLoop  # the running loop, set by every request

    def deadlines(self) -> _Deadlines:
        """The answers' deadlines, on the running loop (a test may use several)."""
        if self._deadlines is None or self._deadlines.loop is not self.loop:
            self._deadlines = _Deadlines(self.loop)
        return self._deadlines

    async def request(
        self,
        method: str,
        url: str,
        deadline_s: float,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        started = time.monotonic()
        loop = self.loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s  # for everything: pool, DNS, connect, TLS, answer
        try:
            target = self._targets.get(url)
            if target is None:
                target = _target(url)
                if len(self._targets) >= _TARGETS_KEPT:
                    self._targets.clear()
                self._targets[url] = target
            data = _request_head(method, target, body, headers)
            if body:
                data += body  # one write: one segment for a small body
            status, retry_after, kept = await self._exchange(
                target, data, method == "HEAD", deadline
            )
            return Response(
                status,
                retry_after,
                None,
                time.monotonic() - started,
                AttemptError.REDIRECT if 300 <= status < 400 else None,
                kept,
            )
        except TimeoutError:
            error, failure = f"no complete answer within {deadline_s:g} s", AttemptError.TIMEOUT
        except (OSError, InvalidAnswer, ValueError) as exc:
            error, failure = f"{type(exc).__name__}: {exc}"[:300], classify(exc)
        return Response(None, None, error, time.monotonic() - started, failure)

    async def close(self) -> None:
        """Close every connection, idle or busy (a busy one's request fails); returns
        once their sockets are closed."""
        conns = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        for conn in conns:
            self._drop(conn)
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        gone = [c.gone for c in conns if c.gone is not None and not c.gone.done()]
        if gone:
            await asyncio.wait(gone, timeout=1.0)

    async def _exchange(
        self, target: _Target, data: bytes, head_only: bool, deadline: float
    ) -> tuple[int, str | None, bytes]:
        retried = False
        while True:
            conn = await self._acquire(target.origin, not retried, deadline)
            try:
                if conn.transport is None:
                    async with asyncio.timeout_at(deadline):
                        await self._connect(conn, target)
                answer = await conn.exchange(data, head_only, deadline)
            except Unanswered:
                self._drop(conn)
                if conn.uses == 0 or retried:
                    raise
                retried = True  # a stale pooled connection: once more on a fresh one
                continue
            except BaseException:
                self._drop(conn)
                raise
            if conn.reusable():
                self._park(conn)
            else:
                self._drop(conn)
            return answer

    async def _connect(self, conn: _Connection, target: _Target) -> None:
        try:
            addresses = await self._policy.resolve(target.host, target.port)
        except DestinationRefused as exc:
            raise AddressRefused(str(exc)) from exc
        tls = None
        if target.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        failure: OSError | None = None
        for address in addresses:
            try:
                await self.loop.create_connection(
                    lambda: conn,
                    str(address.address),
                    address.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                    family=address.family,
                    proto=address.proto,
                )
                return
            except OSError as exc:
                failure = exc
        assert failure is not None  # resolve() never answers an empty list
        raise failure

    # The pool.

    async def _acquire(self, origin: Origin, pooled: bool, deadline: float) -> _Connection:
        """A pooled connection to ``origin`` or a new unconnected one holding a slot."""
        while True:
            if pooled:
                conn = self._take_idle(origin)
                if conn is not None:
                    self._busy.add(conn)
                    return conn
            if self._open < self._limit:
                self._open += 1
                conn = _Connection(self, origin)
                self._busy.add(conn)
                return conn
            if self._evict_oldest():
                continue
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:
                    self._wake()  # pass on the wake-up this waiter was handed
                raise

    def _take_idle(self, origin: Origin) -> _Connection | None:
        conns = self._idle.get(origin)
        while conns:
            conn = conns.pop()  # the most recently used: the others may time out
            conn.idle = False
            if not conns:
                del self._idle[origin]
            if conn.lost or conn.transport is None or conn.transport.is_closing():
                self._release_slot()
                conn.abort()
                continue
            return conn
        return None

    def _park(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        conn.idle, conn.idle_since = True, time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)
        if self._sweep is None:
            self._sweep = self.loop.call_later(self._idle_timeout_s, self._expire)
        self._wake()

    def _drop(self, conn: _Connection) -> None:
        """Close ``conn`` and free its slot (once, whatever state it is in)."""
        if conn.idle:
            conn.idle = False
            conns = self._idle[conn.origin]
            conns.remove(conn)
            if not conns:
                del self._idle[conn.origin]
            self._release_slot()
        elif conn in self._busy:
            self._busy.discard(conn)
            self._release_slot()
        conn.abort()

    def _release_slot(self) -> None:
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _evict_oldest(self) -> bool:
        """Close the longest idle connection (to make room for another origin)."""
        if not self._idle:
            return False
        oldest = min((conns[0] for conns in self._idle.values()), key=lambda c: c.idle_since)
        self._drop(oldest)
        return True

    def _expire(self) -> None:
        self._sweep = None
        now = time.monotonic()
        next_at: float | None = None
        for conns in list(self._idle.values()):
            for conn in list(conns):
                due = conn.idle_since + self._idle_timeout_s
                if due <= now:
                    self._drop(conn)
                elif next_at is None or due < next_at:
                    next_at = due
        if next_at is not None:
            self._sweep = self.loop.call_later(next_at - now, self._expire)
