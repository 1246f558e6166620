"""The access log's direct path writes exactly what ``logging`` would, and steps
aside for any other logging set-up (capture handlers, extra handlers, filters)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tidings.logs import configure_logging, log_info_fast, request_id

FIELDS = {
    "method": "POST", "path": "/v1/queues/q/messages", "route": "/queues/{queue_id}/messages",
    "status": 200, "duration_ms": 1.23, "org_id": "org-1", "client": "127.0.0.1",
}  # fmt: skip
ARGS = ("POST", "/v1/queues/q/messages", 200, 1.234)


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


def test_the_direct_line_is_the_line_logging_writes(stream: io.StringIO) -> None:
    logger = logging.getLogger("tidings.access")
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(factory(*args, **kwargs))
        return made[-1]

    logging.setLogRecordFactory(counted)
    try:
        with only_ours():
            logger.info("%s %s %d %.1fms", *ARGS, extra=FIELDS)
            log_info_fast(logger, "%s %s %d %.1fms", ARGS, FIELDS)
    finally:
        logging.setLogRecordFactory(factory)
    assert len(made) == 1  # the direct path built no LogRecord
    through_logging, direct = stream.getvalue().splitlines()
    assert without_time(direct) == without_time(through_logging)
    assert "r-1" in direct and "org-1" in direct


def test_a_capturing_handler_still_gets_a_record(stream: io.StringIO) -> None:
    caught: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    logger = logging.getLogger("tidings.access")
    capture = Capture()
    logger.addHandler(capture)
    try:
        with only_ours():
            log_info_fast(logger, "%s %s %d %.1fms", ARGS, FIELDS)
    finally:
        logger.removeHandler(capture)
    assert [getattr(r, "client", None) for r in caught] == ["127.0.0.1"]
    assert "POST /v1/queues/q/messages 200" in stream.getvalue()  # propagated as usual


def test_nothing_is_written_below_the_level(stream: io.StringIO) -> None:
    logger = logging.getLogger("tidings.access")
    logger.setLevel(logging.WARNING)
    try:
        log_info_fast(logger, "%s %s %d %.1fms", ARGS, FIELDS)
    finally:
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""
