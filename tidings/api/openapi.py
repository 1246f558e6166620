"""``/openapi.json``, generated from the endpoint table and the wire models.

It states what the server does (SPEC §1), which docs/api.md explains and
``tests/contract/test_schemathesis.py`` checks with every schemathesis check:

- every status an operation can answer, each with its problem body and headers;
- every query parameter as ``api/query.py`` reads it, path ids as the server makes
  them, request bodies as msgspec decodes them, plus what ``wire._screen`` refuses
  everywhere in a body: no string (or property name) may hold NUL;
- OpenAPI links from each created resource to the operations on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from tidings import __version__
from tidings.api import idempotency, schema_language, wire
from tidings.api.problems import REASONS
from tidings.api.routes import PAGE, PER_PAGE, Endpoint

_REF = schema_language.REF
_PARAM = re.compile(r"{(\w+)}")
_JSON = wire.JSON_COMPONENT  # what unknown body members may hold
_HEADER_TEXT = {"schema": {"type": "string"}}
_HEADER_INT = {"schema": {"type": "integer"}}
_RATE_HEADERS = {
    "X-RateLimit-Limit": {**_HEADER_INT, "description": "Requests allowed per window"},
    "X-RateLimit-Remaining": {**_HEADER_INT, "description": "Requests left in this window"},
    "X-RateLimit-Reset": {**_HEADER_INT, "description": "Epoch seconds when the window ends"},
}
_RETRY_AFTER = {**_HEADER_INT, "description": "Seconds to wait before trying again"}
_REQUEST_ID = {
    **_HEADER_TEXT,
    "required": True,
    "description": "The request's id (the client's X-Request-Id when sane), also logged",
}


def _ref(kind: type[Any] | str) -> dict[str, str]:
    return {"$ref": _REF.format(name=kind if isinstance(kind, str) else kind.__name__)}


def _statuses(ep: Endpoint) -> list[int]:
    """Every status this operation can answer (``api/problems.py`` maps them)."""
    statuses = {200, 400, 401, 403, 406, 429, 500, 503, *ep.extra_statuses}
    if _PARAM.search(ep.path):
        statuses.add(404)  # an unknown id, or another organization's
    if ep.method in ("POST", "PUT"):
        statuses |= {413, 415}  # every body is read and checked, declared or not
    if ep.idempotent:
        statuses |= {409, 422}  # a repeat in progress; a key reused for another request
    return sorted(statuses)


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _problem_response(status: int) -> dict[str, Any]:
    """The answer with this error status, the same on every operation."""
    headers: dict[str, Any] = {"X-Request-Id": _header("X-Request-Id")}
    if status not in (401, 403):  # those answer before the key is known to be good
        headers.update({name: _header(name) for name in _RATE_HEADERS})
    if status in (403, 409, 429, 503):
        # Required on 409, 429 and 503; a 403 has it only for a locked-out address.
        headers["Retry-After"] = {**_RETRY_AFTER, "required": status != 403}
    return {
        "description": REASONS[status],
        "headers": headers,
        "content": _json(_ref(wire.Problem)),
    }


def _response_ref(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{status}"}


def _response(ep: Endpoint, status: int) -> dict[str, Any]:
    if status != 200:
        return _response_ref(status)
    headers: dict[str, Any] = {"X-Request-Id": _header("X-Request-Id")}
    headers.update({name: _header(name) for name in _RATE_HEADERS})
    if ep.paginated:
        headers["Link"] = {
            **_HEADER_TEXT,
            "required": True,
            "description": 'rel="first", rel="last", and rel="prev"/rel="next" when they exist',
        }
        headers["X-Total-Count"] = {**_HEADER_INT, "required": True}
    if ep.idempotent:
        headers[idempotency.REPLAYED] = {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "The answer first given under this Idempotency-Key, replayed",
        }
    return {"description": "OK", "headers": headers, "content": _json(_ref(ep.response))}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation_id(ep: Endpoint, prefix: str) -> str:
    return f"{ep.handler.__name__}{'_v1' if prefix else ''}"


def _links(ep: Endpoint, endpoints: list[Endpoint], prefix: str) -> dict[str, Any]:
    """From a create to every operation on what it created (for stateful clients and
    schemathesis's stateful phase)."""
    made = dict(ep.creates)
    known = _PARAM.findall(ep.path)
    links: dict[str, Any] = {}
    for other in endpoints:
        names = _PARAM.findall(other.path)
        new = names[len(known) :]
        if not made or not other.path.startswith(ep.path + "/{") or not set(new) <= set(made):
            continue
        params = {n: "$request.path." + n for n in known}
        params.update({n: "$response.body#" + made[n] for n in new})
        links[_operation_id(other, prefix)] = {
            "operationId": _operation_id(other, prefix),
            "parameters": params,
        }
    return links


def _operation(ep: Endpoint, endpoints: list[Endpoint], prefix: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": "An id the server made; any other text is 404",
            "schema": {"type": "string", "pattern": wire.ID_PATTERN},
        }
        for name in _PARAM.findall(ep.path)
    ]
    params += [_spread(param.openapi(), ep) for param in ep.params]
    if ep.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Retry safely: a repeat of this request with the same key "
                "stores nothing and answers the first 200 again (docs/publishing.md)",
                "schema": {"type": "string", "pattern": idempotency.KEY_PATTERN},
            }
        )
    responses = {str(s): _response(ep, s) for s in _statuses(ep)}
    links = _links(ep, endpoints, prefix)
    if links:
        responses["200"]["links"] = links
    op: dict[str, Any] = {
        "operationId": _operation_id(ep, prefix),
        "summary": ep.summary,
        "tags": [ep.resource],
        "parameters": params,
        "security": [{"ApiKey": []}],
        "responses": responses,
    }
    if ep.body is not None:
        op["requestBody"] = {
            # A body whose members are all optional may be left out ({} is assumed).
            "required": _any_required(ep.body),
            "content": _json(_ref(ep.body)),
        }
    return op


def _spread(param: dict[str, Any], ep: Endpoint) -> dict[str, Any]:
    """An object spread into the query (``explode``: a cursor's parts) has every name of
    the query string as a property. Unknown parameters are ignored (docs/api.md), so
    it allows other properties, but none named as a parameter the operation reads, nor
    page and per_page (refused where they are not read: /events)."""
    schema = param["schema"]
    if not param.get("explode") or schema.get("type") != "object":
        return param
    taken = {n for p in ep.params for n in p.names} | {PAGE.name, PER_PAGE.name}
    schema["propertyNames"] = {"not": {"enum": sorted(taken - set(schema["properties"]))}}
    return param


def _any_required(kind: type[Any]) -> bool:
    return any(f.required for f in msgspec.structs.fields(kind))


def _schemas(schema: Any) -> Iterator[dict[str, Any]]:
    """``schema`` and every schema nested in it (JSON Schema's subschema keywords)."""
    if not isinstance(schema, dict):
        return
    yield schema
    for key in ("items", "additionalProperties", "propertyNames", "not"):
        yield from _schemas(schema.get(key))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, ()):
            yield from _schemas(sub)
    for sub in schema.get("properties", {}).values():
        yield from _schemas(sub)


def _request_components(kinds: set[type[Any]]) -> dict[str, Any]:
    """Request bodies as msgspec decodes them, plus what ``wire._screen`` refuses in any
    body: NUL in a string or a property name. Unknown members are ignored, so they
    may hold any JSON (without NUL)."""
    _, components = msgspec.json.schema_components(
        sorted(kinds, key=lambda k: k.__name__), ref_template=_REF
    )
    components.update(schema_language.components())
    components[_JSON] = {
        "description": "Any JSON value whose strings and property names hold no NUL",
        "anyOf": [
            {"type": ["null", "boolean", "number", "string"]},
            {"type": "array", "items": _ref(_JSON)},
            {"type": "object", "additionalProperties": _ref(_JSON)},
        ],
    }
    for name, component in components.items():
        if name != _JSON and component.get("type") == "object":
            component.setdefault("additionalProperties", _ref(_JSON))
        if name in wire.EXCLUSIVE_FIELDS:
            component["not"] = {"required": list(wire.EXCLUSIVE_FIELDS[name])}
        for schema in _schemas(component):
            types = schema.get("type")
            if types == "string" or (isinstance(types, list) and "string" in types):
                schema.setdefault("pattern", wire.NO_NUL)
            if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
                schema.setdefault("propertyNames", {"pattern": wire.NO_NUL})
    return components


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    bodies = {ep.body for ep in endpoints if ep.body is not None}
    answers = {wire.Problem, wire.Health, *(ep.response for ep in endpoints)}
    _, components = msgspec.json.schema_components(
        sorted(answers, key=lambda k: k.__name__), ref_template=_REF
    )
    requests = _request_components(bodies)
    clash = {n for n in requests.keys() & components.keys() if requests[n] != components[n]}
    if clash:
        raise RuntimeError(f"request and response models share names: {sorted(clash)}")
    components.update(requests)
    statuses = sorted({s for ep in endpoints for s in _statuses(ep) if s != 200} | {406, 500, 503})
    paths: dict[str, dict[str, Any]] = {}
    for prefix in ("/v1", ""):
        for ep in endpoints:
            operation = _operation(ep, endpoints, prefix)
            paths.setdefault(prefix + ep.path, {})[ep.method.lower()] = operation
        paths[prefix + "/health"] = {
            "get": {
                "operationId": f"health{'_v1' if prefix else ''}",
                "summary": "Liveness of the API and its database",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "headers": {"X-Request-Id": _header("X-Request-Id")},
                        "content": _json(_ref(wire.Health)),
                    },
                    **{str(status): _response_ref(status) for status in (406, 500, 503)},
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tidings",
            "version": __version__,
            "description": "A self-hosted event broker speaking the discue v1 REST API. "
            "Every endpoint is served under /v1 and at the root.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {str(status): _problem_response(status) for status in statuses},
            "headers": {"X-Request-Id": _REQUEST_ID, **_RATE_HEADERS},
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}},
        },
    }
