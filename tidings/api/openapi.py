"""``/openapi.json``, generated from the endpoint table and the wire models."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from tidings import __version__
from tidings.api import wire
from tidings.api.problems import REASONS
from tidings.api.routes import Endpoint

_REF = "#/components/schemas/{name}"
_PARAM = re.compile(r"{(\w+)}")


def _ref(kind: type[Any]) -> dict[str, str]:
    return {"$ref": _REF.format(name=kind.__name__)}


def _problem() -> dict[str, Any]:
    return {"application/json": {"schema": _ref(wire.Problem)}}


def _operation(ep: Endpoint, prefix: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(ep.path)
    ]
    params += [param.openapi() for param in ep.params]
    statuses = [400, 401, 403, 404, 405, 406, 429, 500, 503]
    if ep.body is not None:
        statuses += [413, 415, 422]
    op: dict[str, Any] = {
        "operationId": f"{ep.handler.__name__}{'_v1' if prefix else ''}",
        "summary": ep.summary,
        "tags": [ep.resource],
        "parameters": params,
        "security": [{"ApiKey": []}],
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": _ref(ep.response)}},
            },
            **{
                str(s): {"description": REASONS[s], "content": _problem()} for s in sorted(statuses)
            },
        },
    }
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(ep.body)}},
        }
    return op


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    kinds: set[type[Any]] = {wire.Problem, wire.Health}
    for ep in endpoints:
        kinds.add(ep.response)
        if ep.body is not None:
            kinds.add(ep.body)
    _, components = msgspec.json.schema_components(
        sorted(kinds, key=lambda k: k.__name__), ref_template=_REF
    )
    paths: dict[str, dict[str, Any]] = {}
    for prefix in ("/v1", ""):
        for ep in endpoints:
            paths.setdefault(prefix + ep.path, {})[ep.method.lower()] = _operation(ep, prefix)
        paths[prefix + "/health"] = {
            "get": {
                "operationId": f"health{'_v1' if prefix else ''}",
                "summary": "Liveness of the API and its database",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": _ref(wire.Health)}},
                    },
                    "503": {"description": REASONS[503], "content": _problem()},
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tidings",
            "version": __version__,
            "description": "A self-hosted event broker speaking the discue v1 REST API.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}},
        },
    }
