"""Wire models: request bodies (decoded and validated by msgspec) and response shapes.

The same types drive decoding, encoding and ``/openapi.json``, so the document
cannot drift from what the handlers do. The response shapes are defined in the
client distribution (``tidings_client.wire``) and re-exported here: the server
encodes and the client decodes one definition.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from tidings.api.schema_language import MESSAGE_SCHEMA, REF
from tidings.domain.filters import MAX_GLOB_CHARS, MAX_LIST, MAX_NAMES, MAX_PATH_DEPTH, MAX_PATHS
from tidings.domain.headers import MAX_HEADERS, MAX_VALUE_CHARS, NAME_PATTERN, VALUE_PATTERN
from tidings.domain.urls import MAX_URL_LENGTH, URL_PATTERN
from tidings_client.wire import *  # noqa: F403  (the response shapes, see above)

# Every string in a request body is also free of NUL (``_screen`` refuses it anywhere);
# /openapi.json adds that pattern to each string schema that has none (api/openapi.py).
NO_NUL = "^[^\\x00]*$"
T = TypeVar("T")
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
    # Missing: TIDINGS_MESSAGE_RETENTION; null: keep forever (SPEC §9).
    retention_seconds: RetentionSeconds | UnsetType | None = UNSET


class UpdateQueue(Struct):
    name: Name | UnsetType = UNSET
    schema: MessageSchema = UNSET  # null removes the schema
    retention_seconds: RetentionSeconds | UnsetType | None = UNSET


# --- listener options (SPEC §10) ---
MaxInFlight = Annotated[int, Meta(ge=1, le=256)]
RateLimit = Annotated[float, Meta(ge=0.1, le=10000)]
HeaderValue = Annotated[str, Meta(max_length=MAX_VALUE_CHARS, pattern=VALUE_PATTERN)]
# Names are checked by tidings.domain.headers (400 naming the header); stated here too.
Headers = Annotated[
    dict[str, HeaderValue],
    Meta(
        max_length=MAX_HEADERS,
        extra_json_schema={
            "propertyNames": {"pattern": NAME_PATTERN},
            "description": "Static headers added to every delivery (names unique ignoring case)",
        },
    ),
]
# The filter language (tidings.domain.filters, docs/delivery.md), as JSON Schema.
_DOTTED_PATH = f"^[^.\\x00]+(?:\\.[^.\\x00]+){{0,{MAX_PATH_DEPTH - 1}}}$"
# Any JSON value whose strings and member names hold no NUL (a component of
# /openapi.json, api/openapi.py): what a literal's arrays and objects may hold.
JSON_COMPONENT = "Json"
_ANY_JSON = {"$ref": REF.format(name=JSON_COMPONENT)}
_LITERAL = {
    "anyOf": [
        {"type": ["string", "number", "boolean", "null"], "pattern": NO_NUL},
        {"type": "array", "items": _ANY_JSON},
        {
            "type": "object",
            "propertyNames": {"pattern": "^(?:[^$\\x00][^\\x00]*)?$"},
            "additionalProperties": _ANY_JSON,
        },
    ]
}
_OPERATORS = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "$eq": _LITERAL,
        "$ne": _LITERAL,
        "$in": {"type": "array", "maxItems": MAX_LIST, "items": _LITERAL},
        "$nin": {"type": "array", "maxItems": MAX_LIST, "items": _LITERAL},
        "$exists": {"type": "boolean"},
        "$gt": {"type": "number"},
        "$gte": {"type": "number"},
        "$lt": {"type": "number"},
        "$lte": {"type": "number"},
        "$prefix": {"type": "string"},
    },
}
FILTER_SCHEMA = {
    "anyOf": [
        {"type": "null"},
        {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "names": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_NAMES,
                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_GLOB_CHARS},
                },
                "data": {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": MAX_PATHS,
                    "propertyNames": {
                        "pattern": f"^[^.\\x00]+(?:\\.[^.\\x00]+){{0,{MAX_PATH_DEPTH - 1}}}$"
                    },
                    "additionalProperties": {"anyOf": [_LITERAL, _OPERATORS]},
                },
            },
        },
    ],
    "description": "Which messages this listener gets (docs/delivery.md); null: all",
}
FilterSpec = Annotated[Any, Meta(extra_json_schema=FILTER_SCHEMA)]
SignatureScheme = Literal["v1", "v1a"]


class CreateListener(Struct):
    name: Name
    notify_url: Url
    liveness_url: Url
    max_in_flight: MaxInFlight | UnsetType = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    ordered: bool | UnsetType = UNSET
    headers: Headers | UnsetType = UNSET
    filter: FilterSpec = UNSET
    signature_scheme: SignatureScheme = "v1"


ListenerStatus = Literal["enabled", "disabled"]


class UpdateListener(Struct):
    name: Name | UnsetType = UNSET
    notify_url: Url | UnsetType = UNSET
    liveness_url: Url | UnsetType = UNSET
    max_in_flight: MaxInFlight | UnsetType = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET  # null removes the limit
    ordered: bool | UnsetType = UNSET
    headers: Headers | UnsetType = UNSET  # replaces the whole map
    filter: FilterSpec = UNSET  # null removes the filter
    # disabled: no attempts, no probes, deliveries kept; enabled: health reset and
    # everything owed due at once (SPEC §11).
    status: ListenerStatus | UnsetType = UNSET
    # Another scheme rotates the key as POST .../secret does with its defaults.
    signature_scheme: SignatureScheme | UnsetType = UNSET


# Integer fields: a whole float (247.0) is one too (``typed``).
MAX_BIGINT = 2**63 - 1
# When a message's first attempt may start (SPEC §9): one of the two, or neither.
DeliverAt = Annotated[
    int,
    Meta(
        ge=0,
        le=MAX_BIGINT,
        description="Earliest first attempt, ms since the epoch (a past time means now)",
    ),
]
# Seconds; stored and compared as milliseconds, so at most what fits those.
MAX_RETENTION_S = MAX_BIGINT // 1000
RetentionSeconds = Annotated[
    int,
    Meta(
        ge=1,
        le=MAX_RETENTION_S,
        description="Seconds a message is kept (counted from created_at); null: forever",
    ),
]
Delay = Annotated[float, Meta(ge=0, description="Seconds before the first attempt")]


# Request fields that may not be given together (a 400), stated in /openapi.json.
EXCLUSIVE_FIELDS = {
    "CreateMessage": ("deliver_at", "delay"),
    "BatchItem": ("deliver_at", "delay"),
}


# How long the previous key signs beside the new one by default (SPEC §10).
DEFAULT_GRACE_S = 86400


class RotateSecret(Struct):
    grace_seconds: Annotated[int, Meta(ge=0, le=604800)] = DEFAULT_GRACE_S
    signature_scheme: SignatureScheme | UnsetType = UNSET  # unset: keep the scheme


class CreateMessage(Struct):
    data: str
    name: Name | None = None
    deliver_at: DeliverAt | UnsetType = UNSET
    delay: Delay | UnsetType = UNSET


# Items of one batch publish (SPEC §9).
MAX_BATCH_ITEMS = 100


class BatchItem(Struct):
    data: str
    name: Name | None = None
    deliver_at: DeliverAt | UnsetType = UNSET
    delay: Delay | UnsetType = UNSET


class CreateMessages(Struct):
    """``POST .../messages/batch`` as documented; decoded item by item (below)."""

    messages: Annotated[list[BatchItem], Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]


class CreateMessagesRaw(Struct):
    """The same body with its items undecoded, so every malformed item is named."""

    messages: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]


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
    name: Name | UnsetType = UNSET
    # Health events are also posted into this queue of the organization; null: none.
    alerts_queue_id: Id | UnsetType | None = UNSET


class HostileBody(ValueError):
    """Well-formed JSON that tidings still refuses (the API answers 400 with this text)."""


def decode(body: bytes, kind: type[T]) -> T:
    """Decode a request body; raises msgspec errors and :class:`HostileBody` (400s).

    Deep nesting surfaces as ``RecursionError`` from msgspec; callers map it to 400.
    """
    raw = body or b"{}"
    value = typed(raw, kind)
    _screen(raw)
    return value


def typed(raw: bytes | msgspec.Raw, kind: type[T]) -> T:
    """``raw`` as ``kind``; raises msgspec's errors.

    JSON Schema (and so /openapi.json's ``"type": "integer"``) calls 247.0 an integer,
    msgspec does not: a document refused for a float where an integer goes is read
    again with its integral numbers as ints (a second parse, only then)."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        if "got `float`" not in str(exc):
            raise
        try:
            again = msgspec.json.encode(json.loads(bytes(raw), parse_float=_integral))
        except (ValueError, RecursionError):  # json's own limits (digits, depth)
            raise exc from None
    return msgspec.json.decode(again, type=kind)


# Stands for a number past a double's range (1e999): past every field's range too, as
# msgspec found it ("Number out of range"), where inf would be written as null.
_OUT_OF_RANGE = 10**400


def _integral(text: str) -> int | float:
    """A JSON number with a fraction part or exponent: an int if it is a whole one that
    fits a column (bounded first: ``1e999999`` is no int to build)."""
    number = Decimal(text)
    if abs(number) <= MAX_BIGINT and number == number.to_integral_value():
        return int(number)
    value = float(text)
    if math.isinf(value):
        return _OUT_OF_RANGE if value > 0 else -_OUT_OF_RANGE
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
    if raw.find(b"\\u0000") >= 0:  # not ``in``: bytes raises a TypeError inside first
        _no_nul(msgspec.json.decode(raw))
    # msgspec has accepted it (valid UTF-8, one document, nothing after it): the hook
    # only has to see its objects. raw_decode, not decode, which matches a regular
    # expression for the whitespace on either side (~2,800 machine instructions).
    text = raw.decode("utf-8")
    _KEY_CHECKER.raw_decode(text, len(text) - len(text.lstrip(" \t\n\r")))


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
