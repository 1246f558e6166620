"""The queue message-schema language (SPEC §4): parse a client's schema, check messages.

A schema maps top-level field names to rules; a rule has a ``type`` (``object``,
``array``, ``string`` or ``number``) and that type's keywords. ``required`` defaults to
true, and an optional field may be absent or ``null``. The top level is a strict object
with at least one field.

Schemas come from clients, so everything here is bounded:

- rules nest at most ``MAX_DEPTH`` (32) levels, a top-level field being level 1;
- a schema holds at most ``MAX_RULES`` (1000) rules;
- a ``pattern`` is at most ``MAX_PATTERN_CHARS`` (1000) characters and is compiled by
  RE2 within ``RE2_MAX_MEM_BYTES``: matching is linear in the text, never backtracking;
- at most ``MAX_VIOLATIONS`` (1000) problems are listed, then one more says so.

Patterns follow JavaScript's ``RegExp.test`` (a match anywhere), written plain or as
``/source/flags`` with flags from ``i``, ``m``, ``s``; a string is taken as the
``/.../`` form only when it ends in JavaScript flag letters, so ``/users/me`` is plain.
``jsregex.translate`` rewrites the JavaScript source (no ``u`` flag) as an RE2 pattern of
the same meaning, token by token, emulating ``i`` as JavaScript does; it refuses
backreferences and lookaround (RE2 cannot match them in linear time) and what JavaScript
refuses. Its docstring lists what still differs: JavaScript counts UTF-16 code units where
this counts code points, and with ``m`` some ``^``/``$`` see only \\n as a line end.
Lengths count Unicode code points. Nothing here does I/O: no ``$ref``, no fetch.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, TypeGuard

import orjson
import re2

from tidings.domain.errors import Invalid, Violation
from tidings.domain.jsregex import translate

MAX_DEPTH = 32
MAX_RULES = 1000
MAX_PATTERN_CHARS = 1000
MAX_VIOLATIONS = 1000
# Caps the compiled program and the lazily built DFA cache of each pattern; past it
# RE2 refuses the pattern ("pattern too large") or falls back to its linear NFA.
RE2_MAX_MEM_BYTES = 256 * 1024

SCHEMA_PATH = "$.schema"
DATA_PATH = "$.data"

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_JS_FLAGS = frozenset("dgimsuvy")
_FLAGS = frozenset("ims")  # JavaScript flags that keep matching linear

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = RE2_MAX_MEM_BYTES
_RE2_OPTIONS.log_errors = False  # refusals are reported to the client, not to stderr


class _Regex(Protocol):
    def search(self, text: str) -> object | None: ...


# Compiled rules: what parse_schema admitted, defaults filled in, patterns compiled once.
@dataclass(frozen=True, slots=True)
class StringRule:
    required: bool
    min: float | None  # lengths: parse_schema admits only non-negative integers
    max: float | None
    enum: frozenset[str] | None
    pattern: str | None  # as the client wrote it, for messages
    regex: _Regex | None
    enum_text: str = ""  # listed once here, not once per violation


@dataclass(frozen=True, slots=True)
class NumberRule:
    required: bool
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class ArrayRule:
    required: bool
    items: Rule


@dataclass(frozen=True, slots=True)
class ObjectRule:
    required: bool
    props: Mapping[str, Rule]
    strict: bool


Rule = StringRule | NumberRule | ArrayRule | ObjectRule


@dataclass(frozen=True, slots=True)
class MessageSchema:
    """A compiled schema: the top level as a strict, required object rule."""

    root: ObjectRule


def schema_id(raw: object) -> str:
    """Hex SHA-256 of the schema's canonical JSON (SPEC §4)."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_schema(raw: object) -> MessageSchema:
    """Compile a client's schema, or raise ``Invalid`` naming every bad path."""
    parser = _Parser()
    fields: dict[str, Rule] = {}
    try:
        if not isinstance(raw, dict):
            parser.add(SCHEMA_PATH, "must be an object mapping field names to rules")
        elif not raw:
            parser.add(SCHEMA_PATH, "must declare at least one field")
        else:
            fields = parser.fields(raw, SCHEMA_PATH, 1)
    except _Truncated:
        parser.truncated(SCHEMA_PATH)
    if parser.found:
        raise Invalid(detail="The message schema is malformed.", errors=parser.found)
    return MessageSchema(ObjectRule(True, MappingProxyType(fields), True))


def validate_data(schema: MessageSchema, data: str) -> list[Violation]:
    """Every way ``data`` (a message's JSON text) breaks ``schema``; empty when it fits."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:  # also nesting past orjson's depth limit
        value, reason = _past_double(data) if "infinity" in exc.msg else (None, exc.msg)
        if reason is not None:
            return [Violation(DATA_PATH, f"must be a JSON text ({reason})")]
    checker = _Checker()
    try:
        if isinstance(value, dict):
            checker.check_object(schema.root, value, DATA_PATH)
        else:
            checker.add(DATA_PATH, f"must be a JSON object, got {_kind(value)}")
    except _Truncated:
        checker.truncated(DATA_PATH)
    return checker.found


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _past_double(data: str) -> tuple[object, str | None]:
    """A number past a double's range (``1e400``) is JSON all the same (JavaScript's
    ``JSON.parse`` reads it as Infinity), but orjson refuses it: such a text is read
    again by the standard library, which makes it ``inf``. Answers the value, or why the
    text is not JSON after all (``NaN``; a lone surrogate, which orjson refuses too and
    RE2 cannot read)."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
        json.dumps(value, ensure_ascii=False).encode()  # raises on a lone surrogate
    except UnicodeEncodeError:
        return None, "a lone surrogate in a string"
    except (ValueError, RecursionError) as exc:
        return None, str(exc)
    return value, None


def _child(path: str, name: str) -> str:
    if _PLAIN_NAME.match(name):
        return f"{path}.{name}"
    return f"{path}[{json.dumps(name, ensure_ascii=False)}]"


def _kind(value: object) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)  # null, true, false
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object"


class _Truncated(Exception):
    """Raised once MAX_VIOLATIONS are listed, so hostile input cannot grow the report."""


class _Report:
    def __init__(self) -> None:
        self.found: list[Violation] = []

    def add(self, path: str, message: str) -> None:
        if len(self.found) == MAX_VIOLATIONS:
            raise _Truncated
        self.found.append(Violation(path, message))

    def truncated(self, path: str) -> None:
        self.found.append(Violation(path, f"more than {MAX_VIOLATIONS} problems; not all listed"))


_COMMON = frozenset({"type", "required"})
KEYWORDS = {
    "object": _COMMON | {"props", "strict"},
    "array": _COMMON | {"items"},
    "string": _COMMON | {"pattern", "enum", "min", "max"},
    "number": _COMMON | {"min", "max"},
}


class _Parser(_Report):
    def __init__(self) -> None:
        super().__init__()
        self.rules = 0

    def fields(self, raw: dict[object, object], path: str, depth: int) -> dict[str, Rule]:
        out: dict[str, Rule] = {}
        for name, sub in raw.items():
            if not isinstance(name, str):
                self.add(f"{path}[{name!r}]", "field names must be strings")
                continue
            rule = self.rule(sub, _child(path, name), depth)
            if rule is not None:
                out[name] = rule
        return out

    def rule(self, raw: object, path: str, depth: int) -> Rule | None:
        if depth > MAX_DEPTH:
            self.add(path, f"nests deeper than {MAX_DEPTH} levels")
            return None
        self.rules += 1
        if self.rules > MAX_RULES:
            if self.rules == MAX_RULES + 1:  # say it once, not once per extra rule
                self.add(path, f"the schema has more than {MAX_RULES} rules")
            return None
        if not isinstance(raw, dict):
            self.add(path, 'must be a rule: an object with a "type"')
            return None
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in KEYWORDS:
            self.add(f"{path}.type", "must be one of: array, number, object, string")
            return None
        for key in raw:
            if key not in KEYWORDS[kind]:
                self.add(_child(path, str(key)), f"is not a keyword of {kind} rules")
        return _BUILDERS[kind](self, raw, path, depth)

    def flag(self, raw: dict[object, object], key: str, path: str) -> bool:
        value = raw.get(key, True)
        if not isinstance(value, bool):
            self.add(f"{path}.{key}", "must be true or false")
            return True
        return value

    def object_rule(self, raw: dict[object, object], path: str, depth: int) -> Rule | None:
        props_raw = raw.get("props")
        props: dict[str, Rule] = {}
        if not isinstance(props_raw, dict) or not props_raw:
            self.add(f"{path}.props", "must be an object with at least one rule")
        else:
            props = self.fields(props_raw, f"{path}.props", depth + 1)
        required, strict = self.flag(raw, "required", path), self.flag(raw, "strict", path)
        return ObjectRule(required, MappingProxyType(props), strict)

    def array_rule(self, raw: dict[object, object], path: str, depth: int) -> Rule | None:
        if "items" not in raw:
            self.add(f"{path}.items", "is required: the rule every element must follow")
            items = None
        else:
            items = self.rule(raw["items"], f"{path}.items", depth + 1)
        required = self.flag(raw, "required", path)
        return None if items is None else ArrayRule(required, items)

    def string_rule(self, raw: dict[object, object], path: str, depth: int) -> Rule | None:
        low, high = self.bounds(raw, path, length=True)
        pattern, regex = self.pattern(raw, path)
        enum = self.enum(raw, path)
        required = self.flag(raw, "required", path)
        return StringRule(required, low, high, enum, pattern, regex, _listing(enum or frozenset()))

    def number_rule(self, raw: dict[object, object], path: str, depth: int) -> Rule | None:
        low, high = self.bounds(raw, path, length=False)
        return NumberRule(self.flag(raw, "required", path), low, high)

    def bounds(
        self, raw: dict[object, object], path: str, *, length: bool
    ) -> tuple[float | None, float | None]:
        found: list[float | None] = []
        for key in ("min", "max"):
            value = raw.get(key)
            if value is None or _is_bound(value, length):
                found.append(value)
            else:
                found.append(None)
                wanted = "a non-negative integer (a length)" if length else "a finite number"
                self.add(f"{path}.{key}", f"must be {wanted}")
        low, high = found
        if low is not None and high is not None and high < low:
            self.add(f"{path}.max", "must not be less than min")
        return low, high

    def enum(self, raw: dict[object, object], path: str) -> frozenset[str] | None:
        if "enum" not in raw:
            return None
        values = raw["enum"]
        if not isinstance(values, list) or not values:
            self.add(f"{path}.enum", "must be a non-empty list of strings")
            return None
        for index, value in enumerate(values):
            if not isinstance(value, str):
                self.add(f"{path}.enum[{index}]", "must be a string")
        return frozenset(value for value in values if isinstance(value, str))

    def pattern(self, raw: dict[object, object], path: str) -> tuple[str | None, _Regex | None]:
        if "pattern" not in raw:
            return None, None
        source = raw["pattern"]
        if not isinstance(source, str):
            self.add(f"{path}.pattern", "must be a string")
        elif len(source) > MAX_PATTERN_CHARS:
            self.add(f"{path}.pattern", f"must be at most {MAX_PATTERN_CHARS} characters")
        else:
            try:
                return source, _compile(source)
            except ValueError as exc:
                self.add(f"{path}.pattern", str(exc))
        return None, None


def _is_bound(value: object, length: bool) -> TypeGuard[float]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not length:  # an int of any size is finite (math.isfinite would overflow on it)
        return isinstance(value, int) or math.isfinite(value)
    # 2.0 is an integer to JSON Schema, which /openapi.json states this language in.
    return (isinstance(value, int) or value.is_integer()) and value >= 0


_BUILDERS: dict[str, Callable[[_Parser, dict[object, object], str, int], Rule | None]] = {
    "object": _Parser.object_rule,
    "array": _Parser.array_rule,
    "string": _Parser.string_rule,
    "number": _Parser.number_rule,
}


def _compile(pattern: str) -> _Regex:
    """Translate a JavaScript-style pattern to RE2 and compile it; ValueError if refused."""
    source, flags = pattern, ""
    end = pattern.rfind("/")
    if pattern.startswith("/") and end > 0 and set(pattern[end + 1 :]) <= _JS_FLAGS:
        source, flags = pattern[1:end], pattern[end + 1 :]
    for flag in flags:
        if flag not in _FLAGS:
            raise ValueError(f"flag {flag!r} is not supported (allowed: i, m, s)")
    if len(set(flags)) != len(flags):
        raise ValueError("flags must not repeat")
    try:
        regex: _Regex = re2.compile(translate(source, flags), _RE2_OPTIONS)
    except ValueError as exc:  # refused by translate; its reason is written for clients
        raise ValueError(f"is not a supported regular expression: {exc}") from exc
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"is not a supported regular expression: {reason}") from exc
    return regex


class _Checker(_Report):
    # Recursion follows the schema, never the data, so it is at most MAX_DEPTH deep.
    def check(self, rule: Rule, value: object, path: str) -> None:
        if value is None:
            if rule.required:
                self.add(path, f"is required, got null ({_expected(rule)})")
        elif isinstance(rule, ObjectRule):
            self.check_object(rule, value, path)
        elif isinstance(rule, ArrayRule):
            self.check_array(rule, value, path)
        elif isinstance(rule, StringRule):
            self.check_string(rule, value, path)
        else:
            self.check_number(rule, value, path)

    def check_object(self, rule: ObjectRule, value: object, path: str) -> None:
        if not isinstance(value, dict):
            self.add(path, f"must be an object, got {_kind(value)}")
            return
        for name, sub in rule.props.items():
            if name in value:
                self.check(sub, value[name], _child(path, name))
            elif sub.required:
                self.add(_child(path, name), f"is required ({_expected(sub)})")
        if rule.strict:
            for name in value:
                if name not in rule.props:
                    self.add(_child(path, name), "is not declared in the schema")

    def check_array(self, rule: ArrayRule, value: object, path: str) -> None:
        if not isinstance(value, list):
            self.add(path, f"must be an array, got {_kind(value)}")
            return
        for index, item in enumerate(value):
            self.check(rule.items, item, f"{path}[{index}]")

    def check_string(self, rule: StringRule, value: object, path: str) -> None:
        if not isinstance(value, str):
            self.add(path, f"must be a string, got {_kind(value)}")
            return
        if rule.min is not None and len(value) < rule.min:
            self.add(path, f"must be at least {rule.min} characters long")
        if rule.max is not None and len(value) > rule.max:
            self.add(path, f"must be at most {rule.max} characters long")
        if rule.enum is not None and value not in rule.enum:
            self.add(path, f"must be one of: {rule.enum_text}")
        if rule.regex is not None and rule.regex.search(value) is None:
            self.add(path, f"must match the pattern {rule.pattern}")

    def check_number(self, rule: NumberRule, value: object, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"must be a number, got {_kind(value)}")
            return
        if rule.min is not None and value < rule.min:
            self.add(path, f"must be at least {rule.min}")
        if rule.max is not None and value > rule.max:
            self.add(path, f"must be at most {rule.max}")


def _expected(rule: Rule) -> str:
    names = {ObjectRule: "an object", ArrayRule: "an array", StringRule: "a string"}
    return "expected " + names.get(type(rule), "a number")


def _listing(values: frozenset[str], shown: int = 10) -> str:
    ordered = sorted(values)
    text = ", ".join(json.dumps(value, ensure_ascii=False) for value in ordered[:shown])
    return text + (f" (and {len(ordered) - shown} more)" if len(ordered) > shown else "")
