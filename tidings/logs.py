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
import threading
import time
from contextvars import ContextVar
from typing import Any, NamedTuple

import orjson

request_id: ContextVar[str | None] = ContextVar("tidings_request_id", default=None)

# Attributes every LogRecord has; anything else was passed through ``extra=`` and
# belongs in the JSON object.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        flush_access()  # this thread's waiting access lines go first (log_access)
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

    def access_line(self, created: float, name: str, rid: str | None, access: Access) -> str:
        """The line :meth:`format` writes for ``logger.info(access.message(),
        extra=access.extra())``, without building a record."""
        return self.line(created, "INFO", name, rid, access.message(), access.extra())


# "000" to "999": a format spec (``:03d``) is parsed on every use, ~1,500 machine
# instructions, and under load nearly every access line has a millisecond of its own.
_MILLIS = tuple(f"{i:03d}" for i in range(1000))


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
            self._last = f"{self._stamp}.{_MILLIS[millis]}Z"
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

    def access_line(self, created: float, name: str, rid: str | None, access: Access) -> str:
        """The line :meth:`format` writes for ``logger.info(access.message(),
        extra=access.extra())`` (the message shows method, path, status and duration;
        the rest follow as ``key=value``, a missing org left out), in one f-string."""
        a = access
        at = self._timestamp(created)
        rid_part = "" if rid is None else f"[{rid}] "
        org = "" if a.org_id is None else f" org_id={a.org_id}"
        return (
            f"{at} INFO {name} {rid_part}{a.method} {a.path} {a.status} "
            f"{a.seconds * 1000:.1f}ms route={a.route}{org} client={a.client}"
        )


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


_FORMATTERS = (TextFormatter, JsonFormatter)
_OUR_FILTERS = (RequestIdFilterInstaller, RequestIdFilter)
_Formatter = TextFormatter | JsonFormatter
_Plain = tuple[logging.StreamHandler[Any], _Formatter]


def _plain_stream(logger: logging.Logger) -> _Plain | None:
    """The one handler an INFO line of ``logger`` reaches, and its formatter, when that
    is the stream handler of :func:`logging_config` (our formatter, the request-id
    filter only, no filter on the way); else None (the caller logs through
    ``logging``). Walked per line (``addHandler`` leaves no trace to cache by), so
    written plainly: no generator, isinstance with a tuple."""
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not logging.StreamHandler:
                return None
            formatter = handler.formatter
            if handler.level > logging.INFO or not isinstance(formatter, _FORMATTERS):
                return None
            for kind in handler.filters:
                if type(kind) not in _OUR_FILTERS:
                    return None
            found = (handler, formatter)
        if not current.propagate:
            break
        current = current.parent
    return found


class Access(NamedTuple):
    """One access-log line's fields, as ``api/observe.py`` gives them per request."""

    method: str
    path: str
    status: int
    seconds: float
    route: str
    org_id: str | None
    client: str

    def message(self) -> str:
        return f"{self.method} {self.path} {self.status} {self.seconds * 1000:.1f}ms"

    def extra(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "status": self.status,
            "duration_ms": round(self.seconds * 1000, 2),
            "org_id": self.org_id,
            "client": self.client,
        }


ACCESS_FLUSH_S = 0.05
ACCESS_BATCH_LINES = 512


class _Batch:
    """Access lines of one thread waiting to be formatted and written, and where to."""

    __slots__ = ("formatter", "handler", "lines", "loop", "name")

    def __init__(
        self,
        handler: logging.StreamHandler[Any],
        formatter: _Formatter,
        name: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.handler = handler
        self.formatter = formatter
        self.name = name
        self.loop = loop  # whose timer writes the batch
        self.lines: list[tuple[float, str | None, Access]] = []


_pending = threading.local()  # .batch: this thread's _Batch, or None


def log_access(logger: logging.Logger, access: Access) -> None:
    """``logger.info(access.message(), extra=access.extra())``, a line per request.

    With the process's standard logging set-up (checked when a batch starts) the line's
    fields wait in a batch of the thread, formatted by the formatter's ``access_line``
    and written together at most :data:`ACCESS_FLUSH_S` later (at once past
    :data:`ACCESS_BATCH_LINES`), before any other record of the thread reaches the
    stream (lines stay in order) and when the app stops (:func:`flush_access`). The
    logging module's per-record work, a generic line and a write per turn of the event
    loop (nearly one per request under load) were a quarter of the CPU of a GET
    (docs/benchmarks.md). A handler or filter added while a batch waits applies from
    the next batch. Any other set-up (a test's capture handler, an operator's extra
    handler or filter) and a thread without an event loop go through ``logging``."""
    if not logger.isEnabledFor(logging.INFO):
        return
    batch: _Batch | None = getattr(_pending, "batch", None)
    if batch is not None and not batch.loop.is_running():  # its loop ended before its timer
        _flush(batch)
        batch = None
    if batch is None:
        plain = _plain_stream(logger)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            plain = None
        if plain is None:
            logger.info(access.message(), extra=access.extra())
            return
        batch = _pending.batch = _Batch(*plain, logger.name, loop)
        loop.call_later(ACCESS_FLUSH_S, _flush, batch)
    batch.lines.append((time.time(), request_id.get(), access))
    if len(batch.lines) >= ACCESS_BATCH_LINES:
        _flush(batch)


def flush_access() -> None:
    """Write this thread's waiting access lines now (the app's shutdown)."""
    batch: _Batch | None = getattr(_pending, "batch", None)
    if batch is not None:
        _flush(batch)


def _flush(batch: _Batch) -> None:
    if getattr(_pending, "batch", None) is batch:
        _pending.batch = None
    if not batch.lines:  # written already (full, or before another record)
        return
    lines, batch.lines = batch.lines, []
    handler, line = batch.handler, batch.formatter.access_line
    try:
        text = "".join(
            line(created, batch.name, rid, access) + handler.terminator
            for created, rid, access in lines
        )
        _write(handler, text)
    except Exception:  # as StreamHandler.emit would: report it on stderr
        handler.handleError(logging.makeLogRecord({"msg": lines[0][2].message()}))


def _write(handler: logging.StreamHandler[Any], text: str) -> None:
    with handler.lock or contextlib.nullcontext():
        handler.stream.write(text)
        handler.flush()
