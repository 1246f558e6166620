"""The one exception family of tidings.

The domain and storage raise these. They say what went wrong, not how to answer it:
``tidings.api.problems`` is the one place that maps them to HTTP statuses. Nothing
above storage sees a driver exception.
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

    def __init__(self, detail: str | None = None, errors: list[Violation] | None = None) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail
        self.errors = errors or []


class BadRequest(TidingsError):
    """The request is malformed or breaks the request schema."""


class Unauthorized(TidingsError):
    """No API key, or one that is unknown or disabled."""


class Forbidden(TidingsError):
    """The caller is known but may not do this."""


class LockedOut(Forbidden):
    """The client address failed to authenticate too often; refused for a while."""

    def __init__(self, retry_after_s: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class NotFound(TidingsError):
    """No such resource (in the caller's organization)."""


class Invalid(TidingsError):
    """A well-formed request that breaks a rule: duplicate name, bad schema, ..."""


class Conflict(Invalid):
    """A uniqueness rule was broken (discue answers these like any broken rule)."""


class InProgress(TidingsError):
    """The same request (by its idempotency key) is still being handled; retry shortly."""

    retry_after_s = 1


class TooManyRequests(TidingsError):
    """The API key used up its requests for this window."""

    def __init__(
        self, retry_after_s: int, detail: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.headers = headers or {}


class Unavailable(TidingsError):
    """The node cannot take the request now (overloaded, shutting down); retry later."""

    def __init__(self, detail: str | None = None, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
