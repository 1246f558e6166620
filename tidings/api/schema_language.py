"""The queue message-schema language (SPEC §4) as JSON Schema, for ``/openapi.json``.

``tidings.domain.schemas`` parses and checks schemas; this states the same grammar
for clients and generated code, from the same keyword table and limits. What JSON
Schema cannot say is answered ``422`` naming the bad path (declared on the
operations): a pattern refused (see its description), ``max`` below ``min``, more than
``MAX_DEPTH`` levels or ``MAX_RULES`` rules.
"""

from __future__ import annotations

from typing import Any

from tidings.domain.schemas import MAX_PATTERN_CHARS

REF = "#/components/schemas/{name}"
MESSAGE_SCHEMA = "MessageSchema"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _rule(kind: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    common = {
        "type": {"const": kind},
        "required": {
            "type": "boolean",
            "default": True,
            "description": "false: the field may be absent or null",
        },
    }
    properties = {**common, **properties}
    return {
        "type": "object",
        "required": ["type", *required],
        "properties": properties,
        "additionalProperties": False,
    }


def _bounds(kind: dict[str, Any], what: str) -> dict[str, Any]:
    bound = {"anyOf": [kind, {"type": "null"}], "description": what}
    return {"min": bound, "max": bound}


def components() -> dict[str, dict[str, Any]]:
    """``MessageSchema`` and the rule kinds it is made of."""
    fields = {"type": "object", "additionalProperties": _ref("Rule"), "minProperties": 1}
    return {
        MESSAGE_SCHEMA: {
            **fields,
            "description": "Maps each top-level field of a message's data (a JSON object) "
            "to its rule; undeclared fields are refused.",
        },
        "Rule": {
            "oneOf": [_ref(k) for k in ("ObjectRule", "ArrayRule", "StringRule", "NumberRule")]
        },
        "ObjectRule": _rule(
            "object",
            {
                "props": fields,
                "strict": {
                    "type": "boolean",
                    "default": True,
                    "description": "true: properties not in props are refused",
                },
            },
            ("props",),
        ),
        "ArrayRule": _rule("array", {"items": _ref("Rule")}, ("items",)),
        "StringRule": _rule(
            "string",
            {
                "pattern": {
                    "type": "string",
                    "maxLength": MAX_PATTERN_CHARS,
                    "description": "Must match somewhere in the value, as JavaScript's "
                    "RegExp.test; plain or /source/flags with flags from i, m, s "
                    "(JavaScript syntax without the u flag; backreferences, lookaround "
                    "and \\p{..} are refused: matching runs in linear time)",
                },
                "enum": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                **_bounds({"type": "integer", "minimum": 0}, "length in characters"),
            },
        ),
        "NumberRule": _rule("number", _bounds({"type": "number"}, "inclusive bound")),
    }
