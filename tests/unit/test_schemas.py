"""The message-schema language: parse_schema, validate_data, schema_id (SPEC §4)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.api.problems import status_of
from tidings.domain.errors import Invalid, Violation
from tidings.domain.schemas import (
    MAX_DEPTH,
    MAX_PATTERN_CHARS,
    MAX_RULES,
    MAX_VIOLATIONS,
    MessageSchema,
    ObjectRule,
    parse_schema,
    schema_id,
    validate_data,
)

FULL: dict[str, Any] = {
    "user": {
        "type": "object",
        "props": {
            "name": {"type": "string", "min": 1, "max": 5},
            "age": {"type": "number", "min": 0, "max": 150},
            "role": {"type": "string", "enum": ["admin", "guest"], "required": False},
            "meta": {"type": "object", "strict": False, "props": {"v": {"type": "number"}}},
        },
    },
    "tags": {"type": "array", "items": {"type": "string", "pattern": "/^t-/i"}},
    "note": {"type": "string", "required": False},
}
GOOD: dict[str, Any] = {
    "user": {"name": "ann", "age": 42, "meta": {"v": 1.5, "extra": True}},
    "tags": ["t-1"],
}


def errors_of(raw: object) -> list[Violation]:
    with pytest.raises(Invalid) as caught:
        parse_schema(raw)
    assert status_of(caught.value) == 422  # answered as such (api/problems.py)
    assert caught.value.detail
    return caught.value.errors


def paths(violations: list[Violation]) -> list[str]:
    return [violation.path for violation in violations]


def check(schema: object, data: object) -> list[Violation]:
    text = data if isinstance(data, str) else json.dumps(data)
    return validate_data(parse_schema(schema), text)


def nested(levels: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 1):
        rule = {"type": "object", "props": {"a": rule}}
    return {"a": rule}


# --- schema_id ---------------------------------------------------------------


def test_schema_id_is_sha256_of_canonical_json() -> None:
    raw = {"a": {"type": "string"}}
    assert schema_id(raw) == "75fdd5f871b26a9da230d27ae7c5aaf83da6b1cc40ac74797e29e8b2e60a5e6b"
    unordered = {
        "user": {
            "type": "object",
            "props": {
                "name": {"type": "string", "pattern": "/^ä/i"},
                "age": {"type": "number", "min": 0},
            },
        }
    }
    canonical = (
        '{"user":{"props":{"age":{"min":0,"type":"number"},'
        '"name":{"pattern":"/^ä/i","type":"string"}},"type":"object"}}'
    )
    assert schema_id(unordered) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert (
        schema_id(unordered) == "a833979ab5c8ed03c04eb96adc3c6d28354d5502410e9f07afcab70528cf89a8"
    )


# --- parse_schema: accepted --------------------------------------------------


def test_full_schema_parses_with_defaults() -> None:
    schema = parse_schema(FULL)
    assert isinstance(schema, MessageSchema)
    user = schema.root.props["user"]
    assert isinstance(user, ObjectRule) and user.required and user.strict
    assert schema.root.props["note"].required is False
    assert check(FULL, GOOD) == []


def test_limits_are_inclusive() -> None:
    parse_schema(nested(MAX_DEPTH))
    parse_schema({f"f{i}": {"type": "number"} for i in range(MAX_RULES)})
    parse_schema({"a": {"type": "string", "pattern": "a" * MAX_PATTERN_CHARS}})


@pytest.mark.parametrize(
    ("pattern", "matching", "other"),
    [
        ("b", "abc", "xyz"),  # matches anywhere, like RegExp.test
        ("^b", "bc", "abc"),
        ("a$", "ba", "a\n"),  # `$` is the end of input, not before a final newline
        ("/^AB/i", "abc", "xab"),
        ("/^b$/m", "a\nb", "a\nbc"),
        ("/a.b/s", "a\nb", "a\rc"),
        ("/a.b/", "axb", "a\nb"),
        ("/users/me", "GET /users/me", "users/me"),  # "me" are not all flags: plain
        ("/a/x", "b/a/x", "a/x"),
        ("//", "", None),
        ("\\u0041", "A", "a"),
        ("\\\\u0041", "\\u0041", "A"),  # an escaped backslash, then literal text
        ("/é/i", "É", "e"),
    ],
)
def test_pattern_semantics(pattern: str, matching: str, other: str | None) -> None:
    schema = {"s": {"type": "string", "pattern": pattern}}
    assert check(schema, {"s": matching}) == []
    if other is not None:
        assert paths(check(schema, {"s": other})) == ["$.data.s"]


# --- parse_schema: refused ---------------------------------------------------

STR = {"type": "string"}


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (None, "$.schema"),
        ([STR], "$.schema"),
        ("schema", "$.schema"),
        ({}, "$.schema"),
        ({"a": "string"}, "$.schema.a"),
        ({"a": {}}, "$.schema.a.type"),
        ({"a": {"type": "integer"}}, "$.schema.a.type"),
        ({"a": {"type": ["string"]}}, "$.schema.a.type"),
        ({"a": {"type": "string", "props": {"b": STR}}}, "$.schema.a.props"),
        ({"a": {"type": "number", "$ref": "http://x"}}, '$.schema.a["$ref"]'),
        ({"a": {"type": "string", "required": "yes"}}, "$.schema.a.required"),
        ({"a": {"type": "object", "props": {"b": STR}, "strict": 1}}, "$.schema.a.strict"),
        ({"a": {"type": "object"}}, "$.schema.a.props"),
        ({"a": {"type": "object", "props": {}}}, "$.schema.a.props"),
        ({"a": {"type": "object", "props": [STR]}}, "$.schema.a.props"),
        ({"a": {"type": "object", "props": {"b": {"type": "x"}}}}, "$.schema.a.props.b.type"),
        ({"a": {"type": "array"}}, "$.schema.a.items"),
        ({"a": {"type": "array", "items": [STR]}}, "$.schema.a.items"),
        ({"a": {"type": "array", "items": {"type": "string", "min": -1}}}, "$.schema.a.items.min"),
        ({"a": {"type": "string", "min": "3"}}, "$.schema.a.min"),
        ({"a": {"type": "string", "max": 2.5}}, "$.schema.a.max"),
        ({"a": {"type": "string", "min": True}}, "$.schema.a.min"),
        ({"a": {"type": "string", "min": 3, "max": 2}}, "$.schema.a.max"),
        ({"a": {"type": "number", "min": "0"}}, "$.schema.a.min"),
        ({"a": {"type": "number", "max": False}}, "$.schema.a.max"),
        ({"a": {"type": "number", "max": float("inf")}}, "$.schema.a.max"),
        ({"a": {"type": "number", "min": float("nan")}}, "$.schema.a.min"),
        ({"a": {"type": "number", "min": 1.5, "max": 1}}, "$.schema.a.max"),
        ({"a": {"type": "string", "enum": "a"}}, "$.schema.a.enum"),
        ({"a": {"type": "string", "enum": []}}, "$.schema.a.enum"),
        ({"a": {"type": "string", "enum": ["a", 1]}}, "$.schema.a.enum[1]"),
        ({"a": {"type": "string", "pattern": 1}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "a" * 1001}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "("}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "(a)\\1"}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "a(?=b)"}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "(?<!a)b"}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "/a/g"}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "/a/ii"}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "\\p{L}{1000}"}}, "$.schema.a.pattern"),
        ({"a": {"type": "string", "pattern": "\ud800"}}, "$.schema.a.pattern"),
        ({1: STR}, "$.schema[1]"),
        ({"a-b": {"type": "bool"}}, '$.schema["a-b"].type'),
    ],
)
def test_malformed_schema_is_refused_at_its_path(raw: object, path: str) -> None:
    assert path in paths(errors_of(raw))


def test_every_bad_path_is_named() -> None:
    raw = {
        "a": {"type": "string", "min": "1", "pattern": "(", "x": 1},
        "b": {"type": "object", "props": {"c": {"type": "number", "max": "9"}}},
        "d": {"type": "nope"},
    }
    assert set(paths(errors_of(raw))) == {
        "$.schema.a.min",
        "$.schema.a.pattern",
        "$.schema.a.x",
        "$.schema.b.props.c.max",
        "$.schema.d.type",
    }


def test_depth_and_rule_limits() -> None:
    [too_deep] = errors_of(nested(MAX_DEPTH + 1))
    assert too_deep.path.startswith("$.schema.a.props.") and str(MAX_DEPTH) in too_deep.message
    [too_many] = errors_of({f"f{i}": {"type": "number"} for i in range(MAX_RULES + 5)})
    assert str(MAX_RULES) in too_many.message


def test_schema_errors_are_capped() -> None:
    found = errors_of({"a": {"type": "string", "enum": list(range(5000))}})
    assert len(found) == MAX_VIOLATIONS + 1
    assert found[-1].path == "$.schema"


# --- validate_data -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "",
        "{",
        "not json",
        "{'a': 1}",
        "NaN",
        "1e400",
        "[" * 5000,
        '{"a":' + "[" * 2000 + "]" * 2000,
    ],
)
def test_data_that_is_not_json_is_one_violation(data: str) -> None:
    [violation] = check({"a": {"type": "array", "items": STR}}, data)
    assert violation.path == "$.data"


def test_a_number_past_a_double_is_json_and_checked_as_a_number() -> None:
    """``1e400`` is a JSON number (JavaScript reads it as Infinity); orjson refuses it."""
    schema = {"n": {"type": "number", "max": 10}, "m": {"type": "number"}}
    assert check(schema, '{"n": 1, "m": 1e400}') == []
    assert paths(check(schema, '{"n": 1e400, "m": -1e400}')) == ["$.data.n"]
    assert paths(check(schema, '{"n": "1e400", "m": 1e400}')) == ["$.data.n"]
    for text in (
        '{"n": 1, "m": 1e400, "x": NaN}',
        '{"n": 1e400, "m": Infinity}',
        '{"m": 1e400, "n": "\\ud800"}',  # a lone surrogate, as orjson refuses it
        '{"m": 1e400, "\\udc00": 1, "n": 1}',
    ):
        [violation] = check(schema, text)
        assert violation.path == "$.data" and "JSON text" in violation.message


@pytest.mark.parametrize("data", ["[]", '"x"', "1", "null", "true"])
def test_data_must_be_an_object(data: str) -> None:
    assert paths(check({"a": STR}, data)) == ["$.data"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"tags": []}, ["$.data.user"]),
        ({"user": None, "tags": []}, ["$.data.user"]),
        ({"user": [], "tags": {}}, ["$.data.user", "$.data.tags"]),
        (
            {"user": {}, "tags": [], "x": 1},
            ["$.data.user.name", "$.data.user.age", "$.data.user.meta", "$.data.x"],
        ),
        ({**GOOD, "note": 5}, ["$.data.note"]),
        ({**GOOD, "user": {**GOOD["user"], "name": ""}}, ["$.data.user.name"]),
        ({**GOOD, "user": {**GOOD["user"], "name": "abcdef"}}, ["$.data.user.name"]),
        ({**GOOD, "user": {**GOOD["user"], "name": 3}}, ["$.data.user.name"]),
        ({**GOOD, "user": {**GOOD["user"], "age": -0.5}}, ["$.data.user.age"]),
        ({**GOOD, "user": {**GOOD["user"], "age": 150.01}}, ["$.data.user.age"]),
        ({**GOOD, "user": {**GOOD["user"], "age": True}}, ["$.data.user.age"]),
        ({**GOOD, "user": {**GOOD["user"], "age": "42"}}, ["$.data.user.age"]),
        ({**GOOD, "user": {**GOOD["user"], "role": "root"}}, ["$.data.user.role"]),
        ({**GOOD, "user": {**GOOD["user"], "zip": 1}}, ["$.data.user.zip"]),
        ({**GOOD, "user": {**GOOD["user"], "meta": {}}}, ["$.data.user.meta.v"]),
        (
            {**GOOD, "tags": ["t-1", "x", None, 3]},
            ["$.data.tags[1]", "$.data.tags[2]", "$.data.tags[3]"],
        ),
    ],
)
def test_every_violation_is_reported(data: dict[str, Any], expected: list[str]) -> None:
    assert sorted(paths(check(FULL, data))) == sorted(expected)


@pytest.mark.parametrize(
    "data",
    [
        GOOD,
        {**GOOD, "note": None, "user": {**GOOD["user"], "role": None}},
        {**GOOD, "note": "n", "user": {**GOOD["user"], "role": "guest", "age": 0}},
        {**GOOD, "user": {**GOOD["user"], "name": "\U0001f600" * 5, "age": 150}},  # code points
        {**GOOD, "tags": []},
    ],
)
def test_conforming_data_passes(data: dict[str, Any]) -> None:
    assert check(FULL, data) == []


def test_several_problems_with_one_string_are_all_listed() -> None:
    schema = {"s": {"type": "string", "min": 3, "enum": ["abcd"], "pattern": "^z"}}
    found = check(schema, {"s": "ab"})
    assert paths(found) == ["$.data.s"] * 3
    assert any('"abcd"' in violation.message for violation in found)


def test_optional_items_admit_null_and_odd_names_are_quoted() -> None:
    schema = {"user-id": {"type": "array", "items": {"type": "number", "required": False}}}
    assert check(schema, {"user-id": [1, None, 2.5]}) == []
    assert paths(check(schema, {"user-id": ["1"]})) == ['$.data["user-id"][0]']


def test_violations_are_capped() -> None:
    found = check({"a": {"type": "array", "items": STR}}, {"a": [1] * (MAX_VIOLATIONS + 50)})
    assert len(found) == MAX_VIOLATIONS + 1
    assert found[-1].path == "$.data" and str(MAX_VIOLATIONS) in found[-1].message


def test_pathological_pattern_is_linear() -> None:
    schema = parse_schema({"s": {"type": "string", "pattern": "(a+)+$"}})
    data = json.dumps({"s": "a" * 50_000 + "!"})
    started = time.perf_counter()
    found = validate_data(schema, data)
    assert time.perf_counter() - started < 1.0
    assert paths(found) == ["$.data.s"]


def test_lone_surrogates_in_data_are_a_violation() -> None:
    assert paths(check({"s": STR}, '{"s": "\ud800"}')) == ["$.data"]
    assert paths(check({"s": STR}, '{"s": "\\ud800"}')) == ["$.data"]


# --- properties --------------------------------------------------------------

NAMES = st.text(alphabet="abcdefgh", min_size=1, max_size=5)
EXTRA_NAMES = st.text(alphabet="xyz", min_size=1, max_size=3)  # never declared
ABSENT: Any = object()
PROPERTY = settings(max_examples=60, deadline=None, database=None)
PATTERNS = [
    ("^[a-z]{1,8}$", st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
    ("/^ab/i", st.sampled_from(["ab", "AB-1", "aBc"])),
    ("[0-9]", st.from_regex(r"[0-9]", fullmatch=False)),
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
Ruled = tuple[dict[str, Any], st.SearchStrategy[Any]]


@st.composite
def string_rules(draw: st.DrawFn) -> Ruled:
    choice = draw(st.sampled_from(["plain", "length", "enum", "pattern"]))
    if choice == "length":
        low = draw(st.integers(0, 4))
        high = draw(st.integers(low, 8))
        return {"type": "string", "min": low, "max": high}, st.text(min_size=low, max_size=high)
    if choice == "enum":
        values = draw(st.lists(st.text(max_size=4), min_size=1, max_size=4))
        return {"type": "string", "enum": values}, st.sampled_from(values)
    if choice == "pattern":
        pattern, matching = draw(st.sampled_from(PATTERNS))
        return {"type": "string", "pattern": pattern}, matching
    return {"type": "string"}, st.text()


@st.composite
def number_rules(draw: st.DrawFn) -> Ruled:
    low = draw(st.none() | st.integers(-100, 100))
    high = draw(st.none() | st.integers(100 if low is None else low, 200))
    rule: dict[str, Any] = {"type": "number"}
    if low is not None:
        rule["min"] = low
    if high is not None:
        rule["max"] = high
    lo, hi = -(10**9) if low is None else low, 10**9 if high is None else high
    return rule, st.integers(lo, hi) | st.floats(lo, hi)


def object_values(props: dict[str, Ruled], strict: bool) -> st.SearchStrategy[Any]:
    needed = {name: value for name, (rule, value) in props.items() if rule.get("required", True)}
    optional = {name: value for name, (rule, value) in props.items() if name not in needed}
    values = st.fixed_dictionaries(needed, optional=optional)
    if strict:
        return values
    extra = st.dictionaries(EXTRA_NAMES, JSON, max_size=2)
    return st.tuples(values, extra).map(lambda pair: {**pair[1], **pair[0]})


@st.composite
def rules(draw: st.DrawFn, depth: int) -> Ruled:
    kinds = ["string", "number"] + (["object", "array"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "string":
        rule, values = draw(string_rules())
    elif kind == "number":
        rule, values = draw(number_rules())
    elif kind == "array":
        items, item_values = draw(rules(depth + 1))
        rule, values = {"type": "array", "items": items}, st.lists(item_values, max_size=3)
    else:
        props = draw(st.dictionaries(NAMES, rules(depth + 1), min_size=1, max_size=3))
        strict = draw(st.booleans())
        rule = {"type": "object", "props": {name: r for name, (r, _) in props.items()}}
        rule["strict"] = strict
        values = object_values(props, strict)
    required = draw(st.sampled_from([None, True, False]))
    if required is not None:
        rule["required"] = required
    return rule, values if required is not False else values | st.none()


schemas = st.dictionaries(NAMES, rules(1), min_size=1, max_size=4)


def as_schema(fields: dict[str, Ruled]) -> tuple[dict[str, Any], st.SearchStrategy[Any]]:
    return {name: rule for name, (rule, _) in fields.items()}, object_values(fields, True)


@PROPERTY
@given(fields=schemas, data=st.data())
def test_generated_data_satisfies_generated_schema(fields: dict[str, Ruled], data: Any) -> None:
    raw, values = as_schema(fields)
    schema = parse_schema(json.loads(json.dumps(raw)))
    assert validate_data(schema, json.dumps(data.draw(values))) == []


WRONG = {"string": 12345, "number": "12345", "object": [1], "array": {"x": 1}}


@PROPERTY
@given(fields=schemas, data=st.data())
def test_mutated_data_is_caught_at_its_path(fields: dict[str, Ruled], data: Any) -> None:
    raw, values = as_schema(fields)
    schema, value = parse_schema(raw), data.draw(values)
    name = data.draw(st.sampled_from(sorted(raw)))
    rule = raw[name]
    mutated = {**value, name: WRONG[rule["type"]]}
    assert f"$.data.{name}" in paths(validate_data(schema, json.dumps(mutated)))
    if rule.get("required", True):
        del mutated[name]
        assert f"$.data.{name}" in paths(validate_data(schema, json.dumps(mutated)))


@PROPERTY
@given(fields=schemas, text=st.text() | JSON.map(json.dumps))
def test_validate_never_raises(fields: dict[str, Ruled], text: str) -> None:
    found = validate_data(parse_schema(as_schema(fields)[0]), text)
    assert all(isinstance(violation, Violation) for violation in found)


KEYWORDS = ["type", "props", "items", "required", "strict", "pattern", "enum", "min", "max"]
SCHEMA_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(["string", "number", "object", "array", "(", "/a/i", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*KEYWORDS, "a", "b"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@PROPERTY
@given(raw=SCHEMA_LIKE)
def test_parse_only_ever_refuses_with_invalid(raw: object) -> None:
    try:
        parse_schema(raw)
    except Invalid as exc:
        assert exc.errors and all(v.path.startswith("$.schema") for v in exc.errors)
