"""The one place that turns errors into ``{title, status, detail?, errors?}`` responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec
from starlette.responses import Response

from tidings.api.wire import Problem
from tidings.domain.errors import (
    BadRequest,
    Forbidden,
    InProgress,
    Invalid,
    LockedOut,
    NotFound,
    TidingsError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Violation,
)
from tidings.storage.database import Contention, DatabaseUnavailable, StorageError

log = logging.getLogger("tidings.api")

# Pinned so the titles do not change with the Python version (3.13 renamed 413 and 422).
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    431: "Request Header Fields Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# Domain errors by the status that answers them; subclasses answer as their base
# (LockedOut as Forbidden, Conflict as Invalid: discue answers a duplicate with 422).
STATUSES: dict[type[TidingsError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    InProgress: 409,
    Invalid: 422,
    TooManyRequests: 429,
    Unavailable: 503,
}
DATABASE_UNAVAILABLE = "The database is unavailable; retry shortly."
CONTENTION = "Conflicting changes kept this request from completing; retry shortly."

_encoder = msgspec.json.Encoder()


def status_of(exc: TidingsError) -> int:
    for kind in type(exc).__mro__:
        status = STATUSES.get(kind)
        if status is not None:
            return status
    return 500


def problem_body(
    status: int, detail: str | None = None, errors: list[Violation] | None = None
) -> bytes:
    return _encoder.encode(
        Problem(
            title=REASONS.get(status, "Error"),
            status=status,
            detail=detail,
            errors=[{"path": v.path, "message": v.message} for v in errors] if errors else None,
        )
    )


def problem(
    status: int,
    detail: str | None = None,
    errors: list[Violation] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        problem_body(status, detail, errors),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def indented(response: Response) -> Response:
    """The same problem answer with its JSON indented (``?pretty=true``, SPEC §1)."""
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in response.raw_headers
        if name not in (b"content-length", b"content-type")
    }
    return Response(
        msgspec.json.format(response.body, indent=2),
        status_code=response.status_code,
        headers=headers,
        media_type="application/json",
    )


def from_error(exc: BaseException) -> Response:
    """Map any exception to its problem response; unknown ones become a bare 500."""
    if isinstance(exc, TooManyRequests):
        return problem(
            429, exc.detail, headers={**exc.headers, "Retry-After": str(exc.retry_after_s)}
        )
    if isinstance(exc, LockedOut):
        return problem(403, exc.detail, headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, InProgress):
        return problem(409, exc.detail, headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, Unavailable):
        return problem(503, exc.detail, headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, TidingsError):
        return problem(status_of(exc), exc.detail, exc.errors)
    if isinstance(exc, DatabaseUnavailable):
        log.warning("database unavailable: %s", exc)
        return problem(503, DATABASE_UNAVAILABLE, headers={"Retry-After": "1"})
    if isinstance(exc, Contention):
        # Conflicting transactions were run again and again (storage.database): rare
        # by design (storage.locks); the request changed nothing and may be retried.
        log.warning("database contention: %s", exc)
        return problem(503, CONTENTION, headers={"Retry-After": "1"})
    if isinstance(exc, StorageError):
        log.error("storage error: %s", exc)
    else:
        log.exception("unhandled error", exc_info=exc)
    return problem(500)
