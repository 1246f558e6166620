"""Wire models: request bodies (decoded and validated by msgspec) and response shapes.

The same types drive decoding, encoding and ``/openapi.json``, so the document
cannot drift from what the handlers do. The response shapes are defined in the
client distribution (``tidings_client.wire``) and re-exported here: the server
encodes and the client decodes one definition.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from tidings.api.schema_language import MESSAGE_SCHEMA, REF
from tidings.domain.urls import MAX_URL_LENGTH, URL_PATTERN
from tidings_client.wire import *  # noqa: F403  (the response shapes, see above)

# Every string in a request body is also free of NUL (``_screen`` refuses it anywhere);
# /openapi.json adds that pattern to each string schema that has none (api/openapi.py).
NO_NUL = "^[^\\x00]*$"
Name = Annotated[str, Meta(min_length=1, max_length=256)]
# The grammar is checked by the handler (a clear 400), and published here.
Url = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        extra_json_schema={
            "pattern": URL_PATTERN,
            "description": "An absolute http or https URL, ASCII only (see docs/api.md)",
        },
    ),
]
Id = Annotated[str, Meta(min_length=1, max_length=64)]
# Ids the server makes (base32hex today); path ids in /openapi.json are stated so.
ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$"
# The queue message-schema language, stated in /openapi.json (api/schema_language.py);
# malformed ones are refused by tidings.domain.schemas (422).
MessageSchema = Annotated[
    Any,
    Meta(
        extra_json_schema={
            "anyOf": [{"$ref": REF.format(name=MESSAGE_SCHEMA)}, {"type": "null"}],
        }
    ),
]
# Kept in step with tidings.domain.scopes.RESOURCES (a unit test checks).
Resource = Literal[
    "api_clients",
    "api_keys",
    "events",
    "queues",
    "listeners",
    "messages",
    "schemas",
    "stats",
    "subscriptions",
]
Access = Literal["read", "write"]
KeyStatus = Literal["enabled", "disabled"]


# --- requests -------------------------------------------------------------------


class CreateQueue(Struct):
    name: Name
    schema: MessageSchema = None


class UpdateQueue(Struct):
    name: Name | UnsetType = UNSET
    schema: MessageSchema = UNSET  # null removes the schema


class CreateListener(Struct):
    name: Name
    notify_url: Url
    liveness_url: Url


ListenerStatus = Literal["enabled", "disabled"]


class UpdateListener(Struct):
    name: Name | UnsetType = UNSET
    notify_url: Url | UnsetType = UNSET
    liveness_url: Url | UnsetType = UNSET
    # disabled: no attempts, no probes, deliveries kept; enabled: health reset and
    # everything owed due at once (SPEC §11).
    status: ListenerStatus | UnsetType = UNSET


class CreateMessage(Struct):
    data: str
    name: Name | None = None


class UpdateMessage(Struct):
    name: Name


class CreateRedelivery(Struct):
    message_ids: Annotated[list[Id], Meta(max_length=1000)] | UnsetType = UNSET


class ScopeIn(Struct, forbid_unknown_fields=True):
    resource: Resource
    access: Access
    targets: Annotated[list[Id], Meta(min_length=1, max_length=100)]


Scopes = Annotated[list[ScopeIn], Meta(max_length=50)]


class CreateApiKey(Struct):
    name: Name | UnsetType = UNSET
    status: KeyStatus = "enabled"
    scopes: Scopes | None = None  # missing or null: the default scopes (SPEC §2)


class UpdateApiKey(Struct):
    name: Name | UnsetType = UNSET
    status: KeyStatus | UnsetType = UNSET
    scopes: Scopes | UnsetType = UNSET  # replaces the whole list


class CreateApiClient(Struct):
    name: Name


class UpdateApiClient(Struct):
    name: Name


class HostileBody(ValueError):
    """Well-formed JSON that tidings still refuses (the API answers 400 with this text)."""


def decode(body: bytes, kind: type[Any]) -> Any:
    """Decode a request body; raises msgspec errors and :class:`HostileBody` (400s).

    Deep nesting surfaces as ``RecursionError`` from msgspec; callers map it to 400.
    """
    raw = body or b"{}"
    value = msgspec.json.decode(raw, type=kind)
    _screen(raw)
    return value


def _screen(raw: bytes) -> None:
    """Refuse duplicate keys and NUL characters, which msgspec lets through.

    Duplicate keys: JSON parsers disagree on which one wins, so a body that means
    one thing here and another to a proxy or receiver is refused instead. NUL:
    PostgreSQL cannot store it in text, and one such message would fail a whole
    group commit with everybody else's messages in it; refused on both backends so
    they accept the same requests. The scan is a second parse, a few microseconds
    on the small bodies of this API and bounded by the body cap.
    """
    if b"\\u0000" in raw:
        _no_nul(msgspec.json.decode(raw))
    _KEY_CHECKER.decode(raw.decode("utf-8"))  # msgspec has accepted it: valid UTF-8


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise HostileBody(f"The request body has the key {key!r} more than once.")
            seen.add(key)
    return value


# Built once (json.loads with hooks builds a decoder per call). Numbers stay text:
# converting a 200,000-digit integer would raise (and cost).
_KEY_CHECKER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_int=len, parse_float=len)


def _no_nul(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise HostileBody("Strings must not contain the NUL character (\\u0000).")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
