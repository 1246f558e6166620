"""Domain records. Storage returns these; the API shapes them for the wire.

Frozen msgspec Structs rather than frozen dataclasses: the same immutability, and
built several times faster (a frozen dataclass sets each field through
``object.__setattr__``), which shows on every read that maps a row
(docs/benchmarks.md, "Domain records as Structs")."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from msgspec import Struct, field


class LivenessState(StrEnum):
    UNKNOWN = "unknown"
    STABLE = "stable"
    UNSTABLE = "unstable"
    DOWN = "down"


class ListenerStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class HealthState(StrEnum):
    """What the full listener shows as ``health.state`` (SPEC §11)."""

    HEALTHY = "healthy"
    FAILING = "failing"
    DISABLED = "disabled"


class DisabledReason(StrEnum):
    GONE = "gone"  # its notify_url answered 410 Gone
    FAILING = "failing"  # failing for TIDINGS_DISABLE_AFTER seconds
    MANUAL = "manual"  # a PUT set status disabled


class AttemptOutcome(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"


class AttemptError(StrEnum):
    """Why an attempt got no usable answer, judged from the exception's type."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    TLS = "tls"
    ADDRESS_REFUSED = "address_refused"
    REDIRECT = "redirect"
    INVALID_RESPONSE = "invalid_response"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    MISSED = "missed"


class Organization(Struct, frozen=True):
    id: str
    name: str
    created_at: int
    # Health events are also posted as messages into this queue (SPEC §11).
    alerts_queue_id: str | None = None


class Scope(Struct, frozen=True):
    resource: str
    access: str  # "read" | "write"; write includes read
    targets: tuple[str, ...]


class ApiKey(Struct, frozen=True):
    id: str
    org_id: str
    name: str
    status: str  # "enabled" | "disabled"
    scopes: tuple[Scope, ...]
    prefix: str
    created_at: int
    updated_at: int
    last_used_at: int | None


class Queue(Struct, frozen=True):
    id: str
    org_id: str
    name: str
    schema: Any | None  # exactly as the client gave it
    schema_id: str | None
    created_at: int
    updated_at: int
    retention_seconds: int | None = None  # None: messages are kept forever


class Liveness(Struct, frozen=True):
    state: LivenessState
    success_count: int
    failure_count: int


class Health(Struct, frozen=True):
    state: HealthState
    consecutive_failures: int
    last_success_at: int | None
    last_failure_at: int | None
    failing_since: int | None
    disabled_reason: DisabledReason | None


HEALTHY = Health(HealthState.HEALTHY, 0, None, None, None, None)


class Attempt(Struct, frozen=True):
    """One delivery attempt as the attempt log keeps it (SPEC §11)."""

    id: str
    message_id: str
    listener_id: str
    attempt: int  # 1 for the first attempt of that delivery
    started_at: int
    duration_ms: int
    outcome: AttemptOutcome
    status: int | None
    error: AttemptError | None
    response_body: str | None


class Listener(Struct, frozen=True):
    id: str
    org_id: str
    queue_id: str
    name: str
    notify_url: str
    liveness_url: str
    secret: str
    liveness: Liveness
    acknowledged_count: int
    missed_count: int
    created_at: int
    updated_at: int
    missed: tuple[str, ...] = ()
    status: ListenerStatus = ListenerStatus.ENABLED
    health: Health = HEALTHY
    options: ListenerOptions = field(default_factory=lambda: ListenerOptions())


class ListenerOptions(Struct, frozen=True):
    """SPEC §10. ``max_in_flight`` None: the setting's default; ``filter`` as given."""

    max_in_flight: int | None = None
    rate_limit: float | None = None
    ordered: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    filter: Any | None = None
    signature_scheme: str = "v1"
    previous_secret_expires_at: int | None = None


class Delivery(Struct, frozen=True):
    message_id: str
    listener_id: str
    state: DeliveryState
    attempts: int
    last_status: int | None
    last_attempt_at: int | None
    next_attempt_at: int | None


class Message(Struct, frozen=True):
    id: str
    org_id: str
    queue_id: str
    name: str | None
    data: str
    created_at: int
    updated_at: int
    deliveries: tuple[Delivery, ...] = field(default=())
    deliver_at: int | None = None  # no attempt before (SPEC §9); None: none asked for


class NewMessage(Struct, frozen=True):
    """A message accepted by the API and waiting for its (group) commit."""

    id: str
    org_id: str
    queue_id: str
    name: str | None
    data: str
    created_at: int
    # The id of the queue schema ``data`` was checked against (None: the queue had
    # none); stored only if the queue still has that schema when it commits.
    schema_id: str | None = None
    # No attempt before this time (SPEC §9); None: due at once.
    deliver_at: int | None = None


class RememberedAnswer(Struct, frozen=True):
    """A ``200`` answer kept under an ``Idempotency-Key`` (SPEC §9).

    ``fingerprint`` identifies the request it answered (endpoint and body bytes):
    the same key with another request is refused, not replayed."""

    org_id: str
    key: str
    fingerprint: str
    status: int
    body: str
    created_at: int
    expires_at: int


class Publication(Struct, frozen=True):
    """What one request publishes: its messages, all or none, and the answer to
    remember under its idempotency key, committed in the same transaction."""

    messages: tuple[NewMessage, ...]
    answer: RememberedAnswer | None = None


class Page(Struct, frozen=True):
    """One page of a list: ``page`` counts from 1."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page
