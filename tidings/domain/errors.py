"""The one exception family of tidings.

The domain and storage raise these; ``tidings.api.problems`` is the one place that
maps them to HTTP problems. Nothing above storage sees a driver exception.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, located by a JSON-path-like ``path`` (e.g. ``$.user.age``)."""

    path: str
    message: str


class TidingsError(Exception):
    """Root of every error tidings raises on purpose."""

    status = 500

    def __init__(self, detail: str | None = None, errors: list[Violation] | None = None) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail
        self.errors = errors or []


class BadRequest(TidingsError):
    """The request is malformed or breaks the request schema (400)."""

    status = 400


class Unauthorized(TidingsError):
    status = 401


class Forbidden(TidingsError):
    status = 403


class LockedOut(Forbidden):
    """The client address failed to authenticate too often; refused for a while (403)."""

    def __init__(self, retry_after_s: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class NotFound(TidingsError):
    status = 404


class Invalid(TidingsError):
    """A well-formed request that breaks a rule: duplicate name, bad schema, ... (422)."""

    status = 422


class Conflict(Invalid):
    """A uniqueness rule was broken; discue answers these with 422 too."""


class TooManyRequests(TidingsError):
    status = 429

    def __init__(
        self, retry_after_s: int, detail: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.headers = headers or {}


class Unavailable(TidingsError):
    """The database cannot be reached or the node is shedding load (503)."""

    status = 503

    def __init__(self, detail: str | None = None, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
