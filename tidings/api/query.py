"""Query parameters: each endpoint declares its own (``routes.py``); they are checked
here before the handler runs, and ``/openapi.json`` is rendered from the same objects,
so what the document calls valid is exactly what the server takes (SPEC §1).

Rules shared by every parameter (docs/api.md):

- a declared parameter given twice is ``400`` (which one would win is a guess that a
  proxy or cache in front of us may make differently); undeclared ones are ignored;
- integers are ASCII digits with an optional ``-`` (``int()`` would also take ``+1``,
  `` 1``, ``1_0`` or other scripts' digits); one past a ``maximum`` is ``400``, and where
  the document gives no maximum (``page``, ``startAfter``), a larger value means "past
  everything" and is clamped to a ``ceiling`` the databases can still compare, so it
  answers an empty ``200``, never a 5xx;
- booleans are exactly ``true`` or ``false``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request

from tidings.api.wire import NO_NUL
from tidings.domain.errors import BadRequest, Violation

INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]+")
# Longer numbers are past every bound here; int() itself refuses more than 4300 digits.
_MAX_DIGITS = 30


class _Refused(ValueError):
    """A value this parameter does not take; the message completes "<name> ..."."""


def _violation(name: str, message: str) -> BadRequest:
    return BadRequest(f"Query parameter {name} {message}.", [Violation(f"$.query.{name}", message)])


class Param(Protocol):
    """One query parameter: how to read it and how the document states it."""

    @property
    def name(self) -> str: ...

    @property
    def names(self) -> tuple[str, ...]:
        """The query string names it reads."""
        ...

    def read(self, values: Mapping[str, str]) -> dict[str, Any]:
        """The parsed value(s) under their names, defaults included; raises BadRequest."""
        ...

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI parameter object."""
        ...


@dataclass(frozen=True, slots=True)
class _Scalar:
    name: str
    description: str

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def read(self, values: Mapping[str, str]) -> dict[str, Any]:
        raw = values.get(self.name)
        if raw is None:
            return {self.name: self.default_value()}
        try:
            return {self.name: self.parse(raw)}
        except _Refused as exc:
            raise _violation(self.name, str(exc)) from None

    def openapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "description": self.description,
            "schema": self.schema(),
        }

    def default_value(self) -> Any:
        return None

    def parse(self, raw: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Flag(_Scalar):
    def default_value(self) -> bool:
        return False

    def parse(self, raw: str) -> bool:
        if raw == "true":
            return True
        if raw == "false":
            return False
        raise _Refused("must be true or false")

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean", "default": False}


@dataclass(frozen=True, slots=True)
class Integer(_Scalar):
    minimum: int
    maximum: int | None = None
    default: int | None = None
    # Without a maximum, larger values read as this (past everything, yet storable).
    ceiling: int = INT64_MAX

    def default_value(self) -> int | None:
        return self.default

    def parse(self, raw: str) -> int:
        bound = f"{self.minimum}..{self.maximum}" if self.maximum is not None else None
        wanted = f"must be an integer {bound or f'of at least {self.minimum}'}"
        if not _INTEGER.fullmatch(raw):
            raise _Refused(wanted)
        negative = raw.startswith("-")
        digits = raw.lstrip("-").lstrip("0") or "0"
        value = int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS
        value = -value if negative else value
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            raise _Refused(wanted)
        return min(value, self.ceiling)

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": self.minimum}
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True, slots=True)
class Choice(_Scalar):
    choices: tuple[str, ...]
    default: str

    def default_value(self) -> str:
        return self.default

    def parse(self, raw: str) -> str:
        if raw not in self.choices:
            raise _Refused("must be one of " + ", ".join(self.choices))
        return raw

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices), "default": self.default}


@dataclass(frozen=True, slots=True)
class Text(_Scalar):
    """Any text of 1..``max_length`` characters but NUL (which PostgreSQL cannot hold)."""

    max_length: int

    def parse(self, raw: str) -> str:
        if not 1 <= len(raw) <= self.max_length or "\x00" in raw:
            raise _Refused(f"must be 1 to {self.max_length} characters, none of them NUL")
        return raw

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": self.max_length,
            "pattern": NO_NUL,
        }


@dataclass(frozen=True, slots=True)
class Together:
    """Parameters that are given all together or not at all (a cursor's parts).

    OpenAPI cannot tie separate parameters together, but it can say it of the
    properties of one object parameter spread into the query (``style: form``,
    ``explode: true``): the wire is the same ``?a=1&b=x``, and ``dependentRequired``
    states the rule."""

    name: str
    description: str
    members: tuple[_Scalar, ...]

    def read(self, values: Mapping[str, str]) -> dict[str, Any]:
        given = [m.name for m in self.members if m.name in values]
        if given and len(given) != len(self.members):
            names = " and ".join(m.name for m in self.members)
            missing = next(m.name for m in self.members if m.name not in values)
            raise BadRequest(
                f"Query parameters {names} go together: {missing} is missing.",
                [Violation(f"$.query.{missing}", f"is required with {', '.join(given)}")],
            )
        found: dict[str, Any] = {}
        for member in self.members:
            found.update(member.read(values))
        return found

    def openapi(self) -> dict[str, Any]:
        names = [m.name for m in self.members]
        return {
            "name": self.name,
            "in": "query",
            "description": self.description,
            "style": "form",
            "explode": True,
            "schema": {
                "type": "object",
                "properties": {
                    m.name: {**m.schema(), "description": m.description} for m in self.members
                },
                "dependentRequired": {n: [o for o in names if o != n] for n in names},
                # Other properties: the names api/openapi.py leaves to the query string.
            },
        }

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)


class QueryReader:
    """Reads one endpoint's declared parameters from a request."""

    def __init__(self, params: Sequence[Param]) -> None:
        self.params = tuple(params)
        self._names = tuple(n for p in self.params for n in p.names)
        self._defaults: dict[str, Any] = {}
        for param in self.params:
            self._defaults.update(param.read({}))

    def read(self, request: Request) -> dict[str, Any]:
        if not request.scope["query_string"]:
            return dict(self._defaults)
        query = request.query_params
        values: dict[str, str] = {}
        for name in self._names:
            given = query.getlist(name)
            if len(given) > 1:
                raise BadRequest(
                    f"Query parameter {name} is given more than once.",
                    [Violation(f"$.query.{name}", "must be given at most once")],
                )
            if given:
                values[name] = given[0]
        found: dict[str, Any] = {}
        for param in self.params:
            found.update(param.read(values))
        return found
