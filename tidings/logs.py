"""Logging: configured once per process, human-readable or one JSON object per line.

Every record carries the id of the request it was logged under (a context
variable the request-id middleware sets), so a line from deep in a handler can be
tied to its access-log line. Nothing here ever formats an API key: callers log ids
(key id, org id), never key material.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import time
from contextvars import ContextVar
from typing import Any, cast

import orjson

request_id: ContextVar[str | None] = ContextVar("tidings_request_id", default=None)

# Attributes every LogRecord has; anything else was passed through ``extra=`` and
# belongs in the JSON object.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


# Access-log fields the text line already shows in its message.
_IN_TEXT_MESSAGE = frozenset({"method", "path", "status", "duration_ms"})


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts, level, logger, msg, request_id`` plus extras.

    Hand-rolled on orjson rather than a JSON-logging package: the access log writes
    one line per request, and this is a single ``orjson.dumps`` call.
    """

    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(
            record.created,
            record.levelname,
            record.name,
            getattr(record, "request_id", None),
            record.getMessage(),
            _extras(record),
            exc,
        )

    def line(
        self,
        created: float,
        level: str,
        name: str,
        rid: str | None,
        message: str,
        extras: dict[str, Any],
        exc: str | None = None,
    ) -> str:
        """The line of a record with these fields (``extras``: what ``extra=`` gave)."""
        entry: dict[str, Any] = {
            "ts": round(created, 6),
            "level": level.lower(),
            "logger": name,
            "msg": message,
        }
        if rid is not None:
            entry["request_id"] = rid
        entry.update(extras)
        if exc is not None:
            entry["exc"] = exc
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2026-11-26T07:00:00.123Z INFO tidings.access [rid] msg key=value ...``"""

    _second = -1
    _stamp = ""
    _millis = -1
    _last = ""

    def _timestamp(self, created: float) -> str:
        # strftime is the priciest part of a line, then formatting the milliseconds: the
        # access log writes many lines a second, often several in one millisecond.
        second = int(created)
        millis = int((created - second) * 1000)
        if millis != self._millis or second != self._second:
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._millis = millis
            self._last = f"{self._stamp}.{millis:03d}Z"
        return self._last

    def format(self, record: logging.LogRecord) -> str:
        line = self.line(
            record.created,
            record.levelname,
            record.name,
            getattr(record, "request_id", None),
            record.getMessage(),
            _extras(record),
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line

    def line(
        self,
        created: float,
        level: str,
        name: str,
        rid: str | None,
        message: str,
        extras: dict[str, Any],
    ) -> str:
        """The line of a record with these fields (``extras``: what ``extra=`` gave)."""
        if rid is None:
            head = f"{self._timestamp(created)} {level} {name} {message}"
        else:
            head = f"{self._timestamp(created)} {level} {name} [{rid}] {message}"
        tail = [
            f"{k}={v}" for k, v in extras.items() if v is not None and k not in _IN_TEXT_MESSAGE
        ]
        return f"{head} {' '.join(tail)}" if tail else head


def logging_config(fmt: str = "text", level: str = "INFO") -> dict[str, Any]:
    """The one logging setup, as a ``dictConfig`` dict.

    The CLI applies it, and hands the same dict to granian, which applies it again in
    its worker process (granian configures logging there itself). granian logs
    through our handler; its own access log stays off (ours is ``tidings.access``).
    """
    formatter = "tidings.logs.JsonFormatter" if fmt == "json" else "tidings.logs.TextFormatter"
    quiet = {"level": "WARNING", "handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tidings": {"()": formatter}},
        "filters": {"request_id": {"()": "tidings.logs.RequestIdFilterInstaller"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "tidings",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "_granian": quiet,
            "granian": quiet,
            "alembic": quiet,
            "granian.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def skip_unused_record_fields() -> None:
    """Spare every record what our formatters never print (logging HOWTO, "Optimization").

    The caller lookup walks the stack; thread and process names cost lookups too. With
    an access-log line per request this roughly halves the cost of a line.
    """
    logging._srcfile = None  # type: ignore[attr-defined]  # no caller file/line lookup
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class RequestIdFilterInstaller(RequestIdFilter):
    """The dictConfig filter; instantiating it also applies :func:`skip_unused_record_fields`
    (granian applies our dict in its worker, where no other code of ours runs first)."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        skip_unused_record_fields()


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Apply :func:`logging_config` to this process (replacing earlier handlers)."""
    logging.config.dictConfig(logging_config(fmt, level))


def _plain_stream(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler an INFO line of ``logger`` reaches, when that is the stream
    handler of :func:`logging_config` (our formatter, the request-id filter only,
    no filter on the way); else None (the caller logs through ``logging``)."""
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not logging.StreamHandler:
                return None
            if handler.level > logging.INFO or not isinstance(
                handler.formatter, TextFormatter | JsonFormatter
            ):
                return None
            if any(
                type(f) not in (RequestIdFilterInstaller, RequestIdFilter) for f in handler.filters
            ):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


def log_info_fast(
    logger: logging.Logger, msg: str, args: tuple[Any, ...], extra: dict[str, Any]
) -> None:
    """``logger.info(msg, *args, extra=extra)`` for the access log, a line per request.

    With the process's standard logging set-up the line is formatted and written
    directly: the logging module's per-record work (the record, the handler chain,
    the filters) was half of what a line cost, and the access log was a fifth to a
    quarter of the CPU of a request (``python -m bench.inproc``, docs/benchmarks.md).
    On an event loop the lines of one loop iteration are written together, at the
    start of the next one (one system call, not one per request). Any other set-up
    (a test's capture handler, an operator's extra handler or filter) goes through
    ``logging`` as usual."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _plain_stream(logger)
    if handler is None:
        logger.info(msg, *args, extra=extra)
        return
    formatter = cast(TextFormatter | JsonFormatter, handler.formatter)
    try:
        line = formatter.line(time.time(), "INFO", logger.name, request_id.get(), msg % args, extra)
    except Exception:  # as StreamHandler.emit would: report, never raise into a request
        logger.info(msg, *args, extra=extra)
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop: write it now
        _write(handler, line + handler.terminator)
        return
    key = (handler, loop)
    batch = _batches.get(key)
    if batch is None:
        batch = _batches[key] = []
        loop.call_soon(_write_batch, key)
    batch.append(line)


# Access-log lines of this event-loop iteration, by handler: written together by one
# write at the start of the next iteration, where a write per line was a system call
# per request.
_batches: dict[tuple[logging.StreamHandler[Any], asyncio.AbstractEventLoop], list[str]] = {}


def _write_batch(key: tuple[logging.StreamHandler[Any], asyncio.AbstractEventLoop]) -> None:
    handler = key[0]
    lines = _batches.pop(key, [])
    try:
        _write(handler, "".join(line + handler.terminator for line in lines))
    except Exception:  # as StreamHandler.emit would: report it on stderr
        handler.handleError(logging.makeLogRecord({"msg": lines[0] if lines else ""}))


def _write(handler: logging.StreamHandler[Any], text: str) -> None:
    with handler.lock or contextlib.nullcontext():
        handler.stream.write(text)
        handler.flush()
