"""api/problems.py is the one place errors become HTTP answers: domain errors carry no
status, and a storage error that reaches it answers 503 (unreachable) or a bare 500."""

from __future__ import annotations

import json

import pytest

from tidings.api.problems import from_error
from tidings.destinations import DestinationRefused
from tidings.domain.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    LockedOut,
    NotFound,
    TidingsError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Violation,
)
from tidings.storage.database import DatabaseUnavailable, StorageError, UniqueViolation

CASES = [
    (BadRequest("bad"), 400),
    (Unauthorized("who"), 401),
    (Forbidden("no"), 403),
    (LockedOut(7, "locked"), 403),
    (NotFound("gone"), 404),
    (Invalid("rule", [Violation("$.name", "too long")]), 422),
    (Conflict("taken"), 422),
    (DestinationRefused("private"), 422),
    (TooManyRequests(3, "slow down", {"X-RateLimit-Limit": "1"}), 429),
    (Unavailable("busy", retry_after_s=2), 503),
    (TidingsError("unmapped"), 500),
    (DatabaseUnavailable("connection refused"), 503),
    (UniqueViolation("duplicate key"), 500),
    (StorageError("odd"), 500),
    (RuntimeError("a bug"), 500),
]


@pytest.mark.parametrize(("error", "status"), CASES, ids=lambda c: type(c).__name__)
def test_each_error_answers_its_status(error: Exception, status: int) -> None:
    response = from_error(error)
    body = json.loads(bytes(response.body))
    assert response.status_code == body["status"] == status
    assert response.headers["content-type"] == "application/json"


def test_domain_errors_carry_no_http_status() -> None:
    assert not any(hasattr(error, "status") for error, _ in CASES)


def test_retry_after_and_details_reach_the_answer() -> None:
    assert from_error(LockedOut(7, "locked")).headers["retry-after"] == "7"
    limited = from_error(TooManyRequests(3, "slow down", {"X-RateLimit-Limit": "1"}))
    assert (limited.headers["retry-after"], limited.headers["x-ratelimit-limit"]) == ("3", "1")
    unreachable = from_error(DatabaseUnavailable("connection refused: 10.0.0.5"))
    assert unreachable.headers["retry-after"] == "1"
    assert json.loads(bytes(unreachable.body))["detail"] == (
        "The database is unavailable; retry shortly."  # the driver's text stays in the log
    )
    invalid = json.loads(bytes(from_error(Invalid("rule", [Violation("$.a", "m")])).body))
    assert invalid["errors"] == [{"path": "$.a", "message": "m"}]
