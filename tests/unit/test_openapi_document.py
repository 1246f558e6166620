"""Structural promises of /openapi.json that are cheaper to check without a server
(tests/contract/ fuzzes the real thing)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from tidings.api.openapi import build_openapi
from tidings.api.routes import ENDPOINTS
from tidings.domain.schemas import KEYWORDS

DOC = build_openapi(ENDPOINTS)
SCHEMAS = DOC["components"]["schemas"]
REQUESTS = sorted({ep.body.__name__ for ep in ENDPOINTS if ep.body is not None})


def _walk(schema: Any) -> list[dict[str, Any]]:
    found = []
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "$ref" in item:
                continue
            found.append(item)
            stack.extend(item.get(k) for k in ("items", "additionalProperties", "propertyNames"))
            stack.extend(item.get("properties", {}).values())
            for key in ("anyOf", "oneOf", "allOf"):
                stack.extend(item.get(key, []))
    return found


def _reachable(names: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        text = msgspec.json.encode(SCHEMAS[name]).decode()
        todo += [part.split('"')[0] for part in text.split("#/components/schemas/")[1:]]
    return seen


def test_no_request_string_may_hold_nul() -> None:
    for name in _reachable(REQUESTS):
        for schema in _walk(SCHEMAS[name]):
            types = schema.get("type")
            if types == "string" or (isinstance(types, list) and "string" in types):
                assert "pattern" in schema, (name, schema)
            if types == "object" and schema.get("additionalProperties") is not False:
                # NO_NUL, or a stricter pattern of its own that refuses NUL as well.
                pattern = schema["propertyNames"]["pattern"]
                assert not re.search(pattern, "a\x00"), (name, schema)
            # A container says what it holds: one that does not lets strings with NUL
            # through at any depth (schemathesis found one in a filter's literal).
            if types == "array" or (isinstance(types, list) and "array" in types):
                assert "items" in schema, (name, schema)
            if types == "object" and schema.get("additionalProperties") is not False:
                assert "additionalProperties" in schema or "patternProperties" in schema, (
                    name,
                    schema,
                )


def test_the_schema_language_is_the_parsers() -> None:
    for kind, keywords in KEYWORDS.items():
        rule = SCHEMAS[kind.capitalize() + "Rule"]
        assert set(rule["properties"]) == keywords
        assert rule["properties"]["type"] == {"const": kind}
        assert rule["additionalProperties"] is False


def test_statuses_follow_the_operation() -> None:
    for path, operations in DOC["paths"].items():
        for method, operation in operations.items():
            statuses = {int(s) for s in operation["responses"]}
            if path.endswith("/health"):
                assert statuses == {200, 406, 500, 503}
                continue
            assert {200, 400, 401, 403, 406, 429, 500, 503} <= statuses, path
            assert (404 in statuses) == ("{" in path), (method, path)
            assert ({413, 415} <= statuses) == (method in ("post", "put")), (method, path)
            assert 405 not in statuses


def test_bodies_are_required_when_a_member_is() -> None:
    for ep in ENDPOINTS:
        if ep.body is None:
            continue
        operation = DOC["paths"]["/v1" + ep.path][ep.method.lower()]
        fields = msgspec.structs.fields(ep.body)
        assert operation["requestBody"]["required"] == any(f.required for f in fields), ep.path


def test_listener_secret_is_nullable_and_only_on_one_listener() -> None:
    detail = SCHEMAS["ListenerDetail"]
    assert "secret" in detail["required"]
    assert detail["properties"]["secret"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert "secret" not in SCHEMAS["ListenerOut"]["properties"]


def test_creates_link_to_what_they_created() -> None:
    links = DOC["paths"]["/v1/queues/{queue_id}/listeners"]["post"]["responses"]["200"]["links"]
    assert links["get_listener_v1"]["parameters"] == {
        "queue_id": "$request.path.queue_id",
        "listener_id": "$response.body#/listener/id",
    }
    root = DOC["paths"]["/queues"]["post"]["responses"]["200"]["links"]
    assert root["get_queue"]["operationId"] == "get_queue"  # the root variant links the root


def test_the_events_cursor_leaves_unknown_names_to_the_query_string() -> None:
    """Spread into the query, the cursor's properties are every name in it: unknown
    ones are ignored (a cache buster is a valid request), the operation's own and the
    paging ones are not the cursor's."""
    operation = DOC["paths"]["/v1/events"]["get"]
    (cursor,) = [p for p in operation["parameters"] if p["name"] == "cursor"]
    schema = cursor["schema"]
    assert (cursor["style"], cursor["explode"]) == ("form", True)
    assert "additionalProperties" not in schema
    others = {p["name"] for p in operation["parameters"]} - {"cursor"}
    assert set(schema["propertyNames"]["not"]["enum"]) == others | {"page", "per_page"}


def test_every_root_operation_is_its_v1_twin() -> None:
    """The root paths are the /v1 ones without the prefix (SPEC §1), so schemathesis
    fuzzes /v1 only (tests/contract): the document must give both the same contract,
    only their operation ids (and the links naming them) differ."""
    paths = DOC["paths"]
    root = sorted(p for p in paths if not p.startswith("/v1/"))
    assert root == sorted(p[len("/v1") :] for p in paths if p.startswith("/v1/"))
    for path in root:
        twin = msgspec.json.encode(paths["/v1" + path]).decode().replace('_v1"', '"')
        assert msgspec.json.decode(twin) == paths[path], path
