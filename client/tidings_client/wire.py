"""The answers' shapes: what the server encodes and this client decodes.

The server imports them from here (``tidings.api.wire``), so both sides read one
definition and its ``/openapi.json`` describes exactly these types. Decoding ignores
fields it does not know, so an older client reads a newer server's answers.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

__all__ = [
    "AggregatedUsage",
    "ApiClientEnvelope",
    "ApiClientOut",
    "ApiKeyEnvelope",
    "ApiKeyOut",
    "ApiKeysEnvelope",
    "AttemptOut",
    "AttemptsEnvelope",
    "ClientRef",
    "CreatedApiClientEnvelope",
    "CreatedApiKeyEnvelope",
    "CreatedListener",
    "CreatedListenerEnvelope",
    "CreatedMessageEnvelope",
    "CreatedMessagesEnvelope",
    "Deleted",
    "DeliveryOut",
    "EventCounts",
    "EventOut",
    "EventsEnvelope",
    "Health",
    "HealthOut",
    "Link",
    "Links",
    "ListenerDetail",
    "ListenerEnvelope",
    "ListenerMessagesOut",
    "ListenerOut",
    "ListenersEnvelope",
    "LivenessOut",
    "MessageEnvelope",
    "MessageOut",
    "MessagesEnvelope",
    "Problem",
    "QueueEnvelope",
    "QueueOut",
    "QueuesEnvelope",
    "RedeliveryEnvelope",
    "RedeliveryOut",
    "RotatedListener",
    "RotatedListenerEnvelope",
    "SchemaEnvelope",
    "ScopeOut",
    "SeriesEnvelope",
    "SeriesOut",
    "StatsEnvelope",
    "Summary",
    "UpdatedListenerEnvelope",
]


class Link(Struct):
    href: str


Links = dict[str, Link]


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
    # Seconds its messages are kept; null: forever (always sent by servers that know it).
    retention_seconds: int | UnsetType | None = UNSET


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


class HealthOut(Struct):
    """A listener's health (SPEC §11): ``state`` is healthy, failing or disabled."""

    state: str
    consecutive_failures: int
    last_success_at: int | None
    last_failure_at: int | None
    failing_since: int | None
    disabled_reason: str | None  # gone | failing | manual


class ListenerOut(Struct):
    """A listener as lists show it: never its secret nor its headers."""

    id: str
    name: str
    queue_id: str
    notify_url: str
    liveness_url: str
    liveness: LivenessOut
    messages: ListenerMessagesOut
    status: str  # enabled | disabled
    health: HealthOut
    # Listener options (SPEC §10); defaults as a server without them would mean.
    max_in_flight: int = 16
    rate_limit: float | None = None
    ordered: bool = False
    filter: Any | None = None
    signature_scheme: str = "v1"
    previous_secret_expires_at: int | None = None


class ListenerDetail(ListenerOut, kw_only=True):
    """One listener: ``secret`` and ``headers`` only for a key with write access to
    it (``secret`` is ``None`` and ``headers`` absent otherwise; SPEC §3: a read-only
    key must not be enough to forge deliveries or to learn a receiver's credentials)."""

    secret: str | None
    headers: dict[str, str] | UnsetType = UNSET


class CreatedListener(Struct):
    id: str
    name: str
    secret: str


class RotatedListener(Struct):
    id: str
    name: str
    secret: str
    signature_scheme: str


class RotatedListenerEnvelope(Struct):
    listener: RotatedListener
    _links: Links


class CreatedListenerEnvelope(Struct):
    listener: CreatedListener
    _links: Links


class UpdatedListenerEnvelope(Struct):
    listener: Summary
    _links: Links


class ListenerEnvelope(Struct):
    listener: ListenerDetail
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
    deliver_at: int | None = None  # the first attempt's earliest time, if delayed


class MessageEnvelope(Struct):
    message: MessageOut
    _links: Links


class CreatedMessageEnvelope(Struct):
    message: Summary
    _links: Links


class CreatedMessagesEnvelope(Struct):
    messages: list[Summary]  # in the request's order
    _links: Links


class MessagesEnvelope(Struct):
    messages: list[MessageOut]
    _links: Links


class AttemptOut(Struct):
    """One delivery attempt from the attempt log (SPEC §11)."""

    id: str
    message_id: str
    listener_id: str
    attempt: int
    started_at: int
    duration_ms: int
    outcome: str  # acknowledged | failed
    status: int | None
    error: str | None  # timeout, connection, tls, address_refused, redirect, invalid_response
    response_body: str | None


class AttemptsEnvelope(Struct):
    attempts: list[AttemptOut]
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
    reason: str | None = None  # listener_disabled: gone | failing | manual


class EventsEnvelope(Struct):
    events: list[EventOut]
    _links: Links


class EventCounts(Struct):
    """One count per event type (SPEC §6, and §11's four health events); a test keeps it
    in step with ``EventType``."""

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
    listener_failing: int
    listener_recovered: int
    listener_disabled: int
    listener_enabled: int


class AggregatedUsage(Struct):
    last_24_hours: EventCounts
    last_1_hours: EventCounts
    today_so_far: EventCounts


class StatsEnvelope(Struct):
    aggregated_api_usage_events: AggregatedUsage
    _links: Links


class SeriesOut(Struct):
    """Event counts per step, oldest first, from ``start`` (ms) on (SPEC §11)."""

    start: int
    step_ms: int
    counts: dict[str, list[int]]


class SeriesEnvelope(Struct):
    series: SeriesOut
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
    alerts_queue_id: str | None = None  # health events are posted here (SPEC §11)


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
