"""Listener filters (SPEC §10): which messages produce a delivery for a listener.

A filter is ``{"names": [globs], "data": {dotted path: literal | {operator: operand}}}``;
both parts are optional and a message must match every part given. :func:`compile_filter`
checks a filter once (a malformed one raises :class:`BadRequest` naming its path) and
answers a :class:`Filter` whose :meth:`Filter.matches` is all the fan-out runs per
message. Globs compile to one RE2 alternation (linear time, whatever the pattern);
``data`` is parsed once per message by the caller and shared by every listener.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import re2

from tidings.domain.errors import BadRequest, Violation

MAX_NAMES = 100
MAX_GLOB_CHARS = 256
MAX_PATHS = 50
MAX_PATH_DEPTH = 32
MAX_LIST = 100
MAX_LITERAL_DEPTH = 32  # arrays and objects in a literal, as message schemas' rules
ROOT = "$.filter"

# A value absent at its path (distinct from JSON null).
_ABSENT = object()
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 * 1024 * 1024  # 100 globs of 256 characters fit
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.dot_nl = True

Test = Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: ``1`` equals ``1.0`` but never ``true``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _glob_source(glob: str) -> str:
    """``*`` any run of characters, ``?`` one character, everything else literal."""
    parts = []
    for char in glob:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re2.escape(char))
    return "".join(parts)


def _bad(path: str, message: str) -> BadRequest:
    return BadRequest(f"The filter is malformed at {path}: {message}", [Violation(path, message)])


def _compile_names(names: Any, path: str) -> Test:
    if not isinstance(names, list) or not 1 <= len(names) <= MAX_NAMES:
        raise _bad(path, f"must be a list of 1 to {MAX_NAMES} glob patterns")
    sources = []
    for i, glob in enumerate(names):
        if not isinstance(glob, str) or not 1 <= len(glob) <= MAX_GLOB_CHARS:
            raise _bad(f"{path}[{i}]", f"must be a string of 1 to {MAX_GLOB_CHARS} characters")
        sources.append(_glob_source(glob))
    try:
        regex = re2.compile("(?:" + "|".join(sources) + ")", _RE2_OPTIONS)
    except re2.error as exc:  # too large for the memory cap
        raise _bad(path, "the patterns are too large together") from exc
    return lambda name: name is not None and regex.fullmatch(name) is not None


def _literal(value: Any, path: str) -> Any:
    if isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value):
        raise _bad(path, "operators are not allowed inside a literal")
    if _depth_over(value, MAX_LITERAL_DEPTH):
        raise _bad(path, f"a literal may nest at most {MAX_LITERAL_DEPTH} levels")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value``: the
    literal is compared with message data by recursion at every commit, so its depth
    is bounded here, without recursion (the body decoder allows ~1,000 levels)."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        level = [
            child
            for item in level
            if isinstance(item, list | dict)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return True


def _operand_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise _bad(path, f"must be a list of at most {MAX_LIST} literals")
    return [_literal(v, f"{path}[{i}]") for i, v in enumerate(value)]


def _number(value: Any, path: str) -> float:
    if not _is_number(value):
        raise _bad(path, "must be a number")
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits: past any data a bound meets
        raise _bad(path, "must be a number a double can hold") from None


def _operator(op: str, operand: Any, path: str) -> Test:
    if op == "$eq":
        lit = _literal(operand, path)
        return lambda v: v is not _ABSENT and json_equal(v, lit)
    if op == "$ne":
        lit = _literal(operand, path)
        return lambda v: v is _ABSENT or not json_equal(v, lit)
    if op == "$in":
        lits = _operand_list(operand, path)
        return lambda v: v is not _ABSENT and any(json_equal(v, x) for x in lits)
    if op == "$nin":
        lits = _operand_list(operand, path)
        return lambda v: v is _ABSENT or not any(json_equal(v, x) for x in lits)
    if op == "$exists":
        if not isinstance(operand, bool):
            raise _bad(path, "must be true or false")
        return lambda v: (v is not _ABSENT) is operand
    if op == "$prefix":
        if not isinstance(operand, str):
            raise _bad(path, "must be a string")
        return lambda v: isinstance(v, str) and v.startswith(operand)
    compare: dict[str, Callable[[float, float], bool]] = {
        "$gt": lambda v, n: v > n,
        "$gte": lambda v, n: v >= n,
        "$lt": lambda v, n: v < n,
        "$lte": lambda v, n: v <= n,
    }
    if op in compare:
        bound, cmp = _number(operand, path), compare[op]
        return lambda v: _is_number(v) and cmp(v, bound)
    raise _bad(path, f"unknown operator {op!r}")


def _compile_condition(condition: Any, path: str) -> Test:
    """A literal, or an object of operators that must all hold."""
    if not (
        isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)
    ):
        lit = _literal(condition, path)
        return lambda v: v is not _ABSENT and json_equal(v, lit)
    tests = [_operator(op, operand, f"{path}.{op}") for op, operand in condition.items()]
    if len(tests) == 1:
        return tests[0]
    return lambda v: all(test(v) for test in tests)


def _split_path(dotted: Any, path: str) -> tuple[str, ...]:
    if not isinstance(dotted, str) or not dotted:
        raise _bad(path, "a path must be a non-empty string")
    keys = tuple(dotted.split("."))
    if len(keys) > MAX_PATH_DEPTH or "" in keys:
        raise _bad(path, f"must be dotted keys (no empty key, at most {MAX_PATH_DEPTH})")
    return keys


def _lookup(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = data
    for key in keys:
        if not isinstance(value, dict):
            return _ABSENT
        value = value.get(key, _ABSENT)
        if value is _ABSENT:
            return _ABSENT
    return value


def _compile_data(data: Any, path: str) -> Callable[[Any], bool]:
    if not isinstance(data, dict) or not 1 <= len(data) <= MAX_PATHS:
        raise _bad(path, f"must be an object of 1 to {MAX_PATHS} paths")
    checks = [
        (_split_path(dotted, f"{path}"), _compile_condition(cond, f"{path}.{dotted}"))
        for dotted, cond in data.items()
    ]

    def matches(parsed: Any) -> bool:
        if not isinstance(parsed, dict):
            return False  # data that is not a JSON object matches no data filter
        return all(test(_lookup(parsed, keys)) for keys, test in checks)

    return matches


@dataclass(frozen=True, slots=True)
class Filter:
    """A compiled filter. ``needs_data``: the caller must parse the message's ``data``."""

    names: Test | None
    data: Callable[[Any], bool] | None

    @property
    def needs_data(self) -> bool:
        return self.data is not None

    def matches(self, name: str | None, parsed: Callable[[], Any]) -> bool:
        """``parsed`` answers the message's data parsed as JSON (or ``UNPARSABLE``)."""
        if self.names is not None and not self.names(name):
            return False
        return self.data is None or self.data(parsed())


UNPARSABLE = object()  # data that is not JSON at all: matches no data filter


def parse_data(data: str) -> Any:
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return UNPARSABLE


def compile_filter(spec: Any) -> Filter | None:
    """Check and compile a filter as a client sent it (``None``: every message)."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise _bad(ROOT, "must be an object with names and/or data, or null")
    unknown = sorted(set(spec) - {"names", "data"})
    if unknown:
        raise _bad(f"{ROOT}.{unknown[0]}", "unknown field (allowed: names, data)")
    if not spec:
        raise _bad(ROOT, "must give names, data or both (null matches every message)")
    names = _compile_names(spec["names"], f"{ROOT}.names") if "names" in spec else None
    data = _compile_data(spec["data"], f"{ROOT}.data") if "data" in spec else None
    return Filter(names, data)
