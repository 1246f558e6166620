"""The access log's direct path writes exactly what ``logging`` would, in order with
the process's other lines and by the app's shutdown at the latest, and steps aside
for any other logging set-up (capture handlers, extra handlers, filters)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest

from tidings.api.application import App
from tidings.api.observe import Observer
from tidings.api.router import Router
from tidings.logs import (
    ACCESS_BATCH_LINES,
    ACCESS_FLUSH_S,
    Access,
    configure_logging,
    flush_access,
    log_access,
    request_id,
)

ACCESS = Access("POST", "/v1/queues/q/messages", 200, 0.001234, "/queues/{queue_id}/messages",
                "org-1", "127.0.0.1")  # fmt: skip


@pytest.fixture(params=["text", "json"])
def stream(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """The process's logging as ``tidings serve`` sets it up (pytest's own capture
    handlers set aside), writing to a string."""
    root = logging.getLogger()
    saved = root.handlers[:]
    configure_logging(request.param, "INFO")
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    handler.setStream(out)
    token = request_id.set("r-1")
    try:
        yield out
    finally:
        request_id.reset(token)
        root.handlers = saved


@contextmanager
def only_ours() -> Iterator[None]:
    """Set pytest's capture handlers (added around each test call) aside for a moment."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [h for h in saved if type(h) is logging.StreamHandler]
    try:
        yield
    finally:
        root.handlers = saved


def without_time(line: str) -> str:
    if line.startswith("{"):
        entry = json.loads(line)
        entry.pop("ts")
        return json.dumps(entry)
    return line.split(" ", 1)[1]


@pytest.mark.parametrize("access", [ACCESS, ACCESS._replace(status=401, org_id=None)])
async def test_the_direct_line_is_the_line_logging_writes(
    stream: io.StringIO, access: Access
) -> None:
    logger = logging.getLogger("tidings.access")
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(factory(*args, **kwargs))
        return made[-1]

    logging.setLogRecordFactory(counted)
    try:
        with only_ours():
            logger.info(access.message(), extra=access.extra())
            log_access(logger, access)
            flush_access()
    finally:
        logging.setLogRecordFactory(factory)
    assert len(made) == 1  # the direct path built no LogRecord
    through_logging, direct = stream.getvalue().splitlines()
    assert without_time(direct) == without_time(through_logging)
    assert "r-1" in direct and "127.0.0.1" in direct


async def test_lines_are_written_together_and_in_order_with_other_lines(
    stream: io.StringIO,
) -> None:
    logger = logging.getLogger("tidings.access")
    with only_ours():
        for n in range(3):
            log_access(logger, ACCESS._replace(path=f"/v1/queues/{n}"))
        assert stream.getvalue() == ""  # one write for the batch, later
        logging.getLogger("tidings.engine").warning("between")  # writes the batch first
        log_access(logger, ACCESS._replace(path="/v1/queues/3"))
        await asyncio.sleep(ACCESS_FLUSH_S * 4)  # no flush asked: the batch's timer
    lines = stream.getvalue().splitlines()
    assert ["queues/0" in lines[0], "queues/1" in lines[1], "queues/2" in lines[2]] == [True] * 3
    assert "between" in lines[3] and "queues/3" in lines[4] and len(lines) == 5


async def test_a_full_batch_is_written_at_once(stream: io.StringIO) -> None:
    logger = logging.getLogger("tidings.access")
    with only_ours():
        for _ in range(ACCESS_BATCH_LINES):
            log_access(logger, ACCESS)
        assert len(stream.getvalue().splitlines()) == ACCESS_BATCH_LINES
        log_access(logger, ACCESS)
        assert len(stream.getvalue().splitlines()) == ACCESS_BATCH_LINES  # the next batch
        flush_access()
    assert len(stream.getvalue().splitlines()) == ACCESS_BATCH_LINES + 1


def test_lines_left_by_an_event_loop_that_ended_are_written_by_the_next(
    stream: io.StringIO,
) -> None:
    logger = logging.getLogger("tidings.access")

    async def one(path: str) -> None:
        log_access(logger, ACCESS._replace(path=path))

    with only_ours():
        asyncio.run(one("/first"))  # ends before the batch's timer
        asyncio.run(one("/second"))
        assert "/first" in stream.getvalue()
        flush_access()
        assert "/second" in stream.getvalue()


async def test_the_app_writes_the_last_lines_when_it_stops(stream: io.StringIO) -> None:
    """A request answered just before the server stops is in the log when it has stopped."""

    @asynccontextmanager
    async def nothing() -> AsyncIterator[None]:
        yield

    app = App(Router(), nothing, Observer(), max_in_progress=10, max_body_bytes=1000)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    with only_ours():
        lifespan = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/nowhere", "headers": [],
                 "query_string": b"", "client": ("127.0.0.1", 1)}  # fmt: skip
        await app(scope, inbox.get, send)
        assert sent[0]["status"] == 404
        assert stream.getvalue() == ""  # waiting in the batch
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await lifespan
        assert "GET /nowhere 404" in stream.getvalue()


async def test_a_capturing_handler_still_gets_a_record(stream: io.StringIO) -> None:
    caught: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    logger = logging.getLogger("tidings.access")
    capture = Capture()
    logger.addHandler(capture)
    try:
        with only_ours():
            log_access(logger, ACCESS)
    finally:
        logger.removeHandler(capture)
    assert [getattr(r, "client", None) for r in caught] == ["127.0.0.1"]
    assert "POST /v1/queues/q/messages 200" in stream.getvalue()  # propagated as usual


async def test_nothing_is_written_below_the_level(stream: io.StringIO) -> None:
    logger = logging.getLogger("tidings.access")
    logger.setLevel(logging.WARNING)
    try:
        with only_ours():
            log_access(logger, ACCESS)
            flush_access()
    finally:
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""
