"""Wire models: request bodies (decoded and validated by msgspec) and response shapes.

The same types drive decoding, encoding and ``/openapi.json``, so the document
cannot drift from what the handlers do.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Name = Annotated[str, Meta(min_length=1, max_length=256)]
Url = Annotated[str, Meta(min_length=1, max_length=2048)]
Id = Annotated[str, Meta(min_length=1, max_length=64)]
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


class Link(Struct):
    href: str


Links = dict[str, Link]


# --- requests -------------------------------------------------------------------


class CreateQueue(Struct):
    name: Name
    schema: Any = None


class UpdateQueue(Struct):
    name: Name | UnsetType = UNSET
    schema: Any = UNSET  # null removes the schema


class CreateListener(Struct):
    name: Name
    notify_url: Url
    liveness_url: Url


class UpdateListener(Struct):
    name: Name | UnsetType = UNSET
    notify_url: Url | UnsetType = UNSET
    liveness_url: Url | UnsetType = UNSET


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


# --- responses ------------------------------------------------------------------


class Problem(Struct, omit_defaults=True):
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = None


# gc=False: these hold only strings, numbers and each other (no cycles possible), so
# the garbage collector need not track them; an events page makes thousands.
class Summary(Struct, gc=False):
    id: str
    name: str | None


class QueueOut(Struct, omit_defaults=True):
    id: str
    name: str
    listeners: list[Summary]
    schema: Any = None
    schema_id: str | None = None


class QueueEnvelope(Struct):
    queue: QueueOut
    _links: Links


class QueuesEnvelope(Struct):
    queues: list[Summary]
    _links: Links


class SchemaEnvelope(Struct):
    schema: Any
    _links: Links


class LivenessOut(Struct):
    state: str
    success_count: int
    failure_count: int


class ListenerMessagesOut(Struct):
    acknowledged_count: int
    missed: list[str]
    missed_count: int


class ListenerOut(Struct, omit_defaults=True):
    id: str
    name: str
    queue_id: str
    notify_url: str
    liveness_url: str
    liveness: LivenessOut
    messages: ListenerMessagesOut
    secret: str | None = None


class CreatedListener(Struct):
    id: str
    name: str
    secret: str


class CreatedListenerEnvelope(Struct):
    listener: CreatedListener
    _links: Links


class UpdatedListenerEnvelope(Struct):
    listener: Summary
    _links: Links


class ListenerEnvelope(Struct):
    listener: ListenerOut
    _links: Links


class ListenersEnvelope(Struct):
    listeners: list[ListenerOut]
    _links: Links


class DeliveryOut(Struct):
    listener_id: str
    state: str
    attempts: int
    last_status: int | None
    last_attempt_at: int | None
    next_attempt_at: int | None


class MessageOut(Struct):
    id: str
    name: str | None
    queue_id: str
    data: str
    created_at: int
    deliveries: list[DeliveryOut]


class MessageEnvelope(Struct):
    message: MessageOut
    _links: Links


class CreatedMessageEnvelope(Struct):
    message: Summary
    _links: Links


class MessagesEnvelope(Struct):
    messages: list[MessageOut]
    _links: Links


class RedeliveryOut(Struct):
    message_ids: list[str]


class RedeliveryEnvelope(Struct):
    redelivery: RedeliveryOut
    _links: Links


class ClientRef(Struct, gc=False):
    id: str


class EventOut(Struct, omit_defaults=True, gc=False):
    """A usage event: the resources it concerns appear as ``{id, name}``, the rest not."""

    id: str
    type: str
    stored_at: int
    client: ClientRef
    api_key: Summary | None = None
    queue: Summary | None = None
    listener: Summary | None = None
    message: Summary | None = None


class EventsEnvelope(Struct):
    events: list[EventOut]
    _links: Links


class EventCounts(Struct):
    """One count per event type (SPEC §6); a test keeps it in step with ``EventType``."""

    api_key_added: int
    api_key_updated: int
    api_key_deleted: int
    queue_added: int
    queue_updated: int
    queue_deleted: int
    listener_added: int
    listener_updated: int
    listener_deleted: int
    message_added: int
    message_published_ok: int
    message_published_not_ok: int


class AggregatedUsage(Struct):
    last_24_hours: EventCounts
    last_1_hours: EventCounts
    today_so_far: EventCounts


class StatsEnvelope(Struct):
    aggregated_api_usage_events: AggregatedUsage
    _links: Links


class ScopeOut(Struct):
    resource: str
    access: str
    targets: list[str]


class ApiKeyOut(Struct):
    """A key as shown after its creation: ``key`` is only its first 3 characters."""

    id: str
    name: str | None
    status: str
    scopes: list[ScopeOut]
    created_at: int
    updated_at: int
    last_used_at: int | None
    key: str


class CreatedApiKeyEnvelope(Struct):
    api_key: str  # the full key, shown this once
    _links: Links


class ApiKeyEnvelope(Struct):
    api_key: ApiKeyOut
    _links: Links


class ApiKeysEnvelope(Struct):
    api_keys: list[ApiKeyOut]
    _links: Links


class ApiClientOut(Struct):
    id: str
    name: str


class CreatedApiClientEnvelope(Struct):
    api_client: ApiClientOut
    api_key: str  # the new organization's operator key, shown this once
    _links: Links


class ApiClientEnvelope(Struct):
    api_client: ApiClientOut
    _links: Links


class Deleted(Struct):
    _links: Links


class Health(Struct):
    status: str


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
