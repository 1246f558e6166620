"""In-process stand-ins for the engine's unit tests: an event loop whose time is
virtual (looptime: it jumps ahead whenever every task waits, so minutes of timers run
in milliseconds, and no test sleeps for real), a clock that reads that time, and a
sender that answers without a network."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import looptime

from tests import polling
from tidings.delivery.sender import Response

EPOCH_MS = 1_700_000_000_000


def virtual_time(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop with virtual time starting at 0.

    looptime's pytest plugin is switched off in pyproject.toml (it leaves an event
    loop unclosed for every sync test under pytest-asyncio 1.x), hence this wrapper."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        loop = looptime.new_event_loop(start=0)
        try:
            loop.run_until_complete(test(*args, **kwargs))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    return run


async def until(predicate: Callable[[], bool], within_s: float = 600) -> float:
    """Wait (virtual time) until ``predicate`` holds; answer the loop time then."""
    await polling.until(predicate, within_s, step_s=0.01, message="not reached")
    return asyncio.get_running_loop().time()


class LoopClock:
    """``now`` is the event loop's time: it moves exactly as looptime fast-forwards."""

    def now_ms(self) -> int:
        return EPOCH_MS + round(asyncio.get_running_loop().time() * 1000)


@dataclass
class Reply:
    status: int | None = 200
    after_s: float = 0.0  # answer after this long (virtual time)
    hold: asyncio.Event | None = None  # answer only once this is set
    retry_after: str | None = None


@dataclass
class Sent:
    method: str
    url: str
    at: float  # loop time
    headers: dict[str, str]
    body: bytes | None


# Maps (url, number of earlier requests to that url) to a reply.
Behaviour = Callable[[str, int], Reply]


@dataclass
class FakeSender:
    behaviour: Behaviour = lambda _url, _n: Reply()
    sent: list[Sent] = field(default_factory=list)
    open: Counter[str] = field(default_factory=Counter)
    most_open: Counter[str] = field(default_factory=Counter)
    closed: bool = False

    def to(self, url: str) -> list[Sent]:
        return [s for s in self.sent if s.url == url]

    async def request(
        self,
        method: str,
        url: str,
        deadline_s: float,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        loop = asyncio.get_running_loop()
        earlier = len(self.to(url))
        self.sent.append(Sent(method, url, loop.time(), dict(headers or {}), body))
        reply = self.behaviour(url, earlier)
        self.open[url] += 1
        self.most_open[url] = max(self.most_open[url], self.open[url])
        started = loop.time()
        try:
            async with asyncio.timeout(deadline_s):
                await asyncio.sleep(reply.after_s)
                if reply.hold is not None:
                    await reply.hold.wait()
        except TimeoutError:
            return Response(None, None, "deadline", loop.time() - started)
        finally:
            self.open[url] -= 1
        return Response(reply.status, reply.retry_after, None, loop.time() - started)

    async def close(self) -> None:
        self.closed = True
