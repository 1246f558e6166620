"""The filter language (SPEC §10): what matches, what is refused (400 naming the path)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tidings.domain.errors import BadRequest
from tidings.domain.filters import compile_filter, parse_data


def matches(spec: Any, name: str | None = "m", data: str = "{}") -> bool:
    compiled = compile_filter(spec)
    return compiled is None or compiled.matches(name, lambda: parse_data(data))


@pytest.mark.parametrize(
    ("globs", "name", "expected"),
    [
        (["order.*"], "order.created", True),
        (["order.*"], "orders.created", False),
        (["order.?"], "order.1", True),
        (["order.?"], "order.12", False),
        (["*.created", "refund"], "refund", True),
        (["a[b]"], "a[b]", True),  # only * and ? are special
        (["a.c"], "abc", False),  # the dot is literal
        (["*"], "", True),
        (["*"], None, False),  # a message without a name matches none
    ],
)
def test_names(globs: list[str], name: str | None, expected: bool) -> None:
    assert matches({"names": globs}, name) is expected


def test_literals_are_equal_as_json_values() -> None:
    assert matches({"data": {"n": 1}}, data='{"n": 1.0}')
    assert not matches({"data": {"n": 1}}, data='{"n": true}')
    assert not matches({"data": {"n": True}}, data='{"n": 1}')
    assert matches({"data": {"a": [1, {"b": None}]}}, data='{"a": [1, {"b": null}]}')
    assert not matches({"data": {"a": None}}, data="{}")  # absent is not null
    assert matches({"data": {"customer.country": "DE"}}, data='{"customer": {"country": "DE"}}')
    assert not matches({"data": {"customer.country": "DE"}}, data='{"customer": "DE"}')


@pytest.mark.parametrize(
    ("condition", "data", "expected"),
    [
        ({"$eq": "x"}, '{"v": "x"}', True),
        ({"$ne": "x"}, '{"v": "y"}', True),
        ({"$ne": "x"}, "{}", True),  # absent differs
        ({"$in": [1, 2]}, '{"v": 2}', True),
        ({"$in": [1, 2]}, '{"v": 3}', False),
        ({"$nin": [1, 2]}, '{"v": 3}', True),
        ({"$exists": True}, '{"v": null}', True),
        ({"$exists": False}, "{}", True),
        ({"$gt": 10}, '{"v": 11}', True),
        ({"$gt": 10}, '{"v": "11"}', False),  # numbers only
        ({"$gte": 10, "$lt": 20}, '{"v": 10}', True),
        ({"$gte": 10, "$lt": 20}, '{"v": 20}', False),
        ({"$lte": 1}, '{"v": true}', False),  # a boolean is not a number
        ({"$prefix": "ord"}, '{"v": "order"}', True),
        ({"$prefix": "ord"}, '{"v": 5}', False),
    ],
)
def test_operators(condition: dict[str, Any], data: str, expected: bool) -> None:
    assert matches({"data": {"v": condition}}, data=data) is expected


def test_both_parts_must_match_and_non_objects_match_no_data_filter() -> None:
    spec = {"names": ["order.*"], "data": {"country": "DE"}}
    assert matches(spec, "order.paid", '{"country": "DE"}')
    assert not matches(spec, "refund", '{"country": "DE"}')
    assert not matches(spec, "order.paid", '{"country": "FR"}')
    assert not matches({"data": {"a": 1}}, data="[1]")
    assert not matches({"data": {"a": 1}}, data="not json")
    assert matches({"names": ["*"]}, data="not json")  # no data part: data unread


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ([], "$.filter"),
        ({}, "$.filter"),
        ({"nmes": ["a"]}, "$.filter.nmes"),
        ({"names": []}, "$.filter.names"),
        ({"names": ["ok", 3]}, "$.filter.names[1]"),
        ({"data": {"a": {"$gt": "1"}}}, "$.filter.data.a.$gt"),
        ({"data": {"a": {"$gt": True}}}, "$.filter.data.a.$gt"),
        ({"data": {"a": {"$regex": "x"}}}, "$.filter.data.a.$regex"),
        ({"data": {"a": {"$in": 1}}}, "$.filter.data.a.$in"),
        ({"data": {"a": {"$exists": 1}}}, "$.filter.data.a.$exists"),
        ({"data": {"a": {"$eq": 1, "b": 2}}}, "$.filter.data.a"),
        ({"data": {"a..b": 1}}, "$.filter.data"),
        ({"data": {}}, "$.filter.data"),
    ],
)
def test_malformed_filters_name_their_path(spec: Any, path: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_filter(spec)
    assert caught.value.errors[0].path == path


def _nested(levels: int, inner: Any = 1) -> Any:
    for n in range(levels):
        inner = [inner] if n % 2 else {"k": inner}
    return inner


@pytest.mark.parametrize("op", ["$eq", "$ne", "$in", "$nin", None])
def test_a_literal_nests_at_most_32_levels(op: str | None) -> None:
    """Literals are compared with message data by recursion at every commit: a deep one
    (the body decoder allows ~1,000 levels) overflowed the stack there (a 500 for every
    publication of that group commit)."""

    def spec(levels: int) -> dict[str, Any]:
        literal = _nested(levels)
        operand = [literal] if op in ("$in", "$nin") else literal
        return {"data": {"a": operand if op is None else {op: operand}}}

    assert compile_filter(spec(32 - (op in ("$in", "$nin"))))
    where = "$.filter.data.a" + ("" if op is None else f".{op}")
    where += "[0]" if op in ("$in", "$nin") else ""
    for levels in (33, 400, 900):
        with pytest.raises(BadRequest) as caught:
            compile_filter(spec(levels))
        assert caught.value.errors[0].path == where
        assert "at most 32 levels" in caught.value.errors[0].message
    wide = {"data": {"a": {"$in": [_nested(32)] * 100}}}
    assert compile_filter(wide)
    # Data of any depth against the deepest literal: the comparison stops with the literal.
    data = json.dumps({"a": _nested(900)})
    assert matches({"data": {"a": {"$eq": _nested(32)}}}, data=data) is False
    assert matches({"data": {"a": {"$ne": _nested(32)}}}, data=data) is True
    assert matches({"data": {"a": _nested(32)}}, data=json.dumps({"a": _nested(32)}))


def test_globs_run_in_linear_time() -> None:
    # A pattern that makes a backtracking matcher take forever answers at once.
    assert not matches({"names": ["*a*a*a*a*a*a*a*a*a*a*a*b"]}, "a" * 256)
