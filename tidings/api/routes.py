"""The endpoint table: one row per endpoint drives routing, auth and ``/openapi.json``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from tidings.api import attempts, clients, events, keys, listeners, messages, queues, wire
from tidings.api.context import Ctx
from tidings.api.query import Choice, Flag, Integer, Param, Text, Together
from tidings.domain.events import ALL_KINDS, KINDS

Handler = Callable[[Ctx], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    resource: str  # scope resource kind (SPEC §2)
    access: str  # "read" | "write"
    response: type[Any]
    body: type[Any] | None = None
    paginated: bool = False
    query: tuple[Param, ...] = ()  # beyond the shared pretty, page and per_page
    # Statuses beyond those every operation of its kind has (api/openapi.py): 422 where
    # a well-formed body must also keep a rule no JSON schema states (SPEC §1).
    extra_statuses: tuple[int, ...] = ()
    # Path parameters the answer holds, as (name, JSON pointer): OpenAPI links from
    # this operation to every operation on what it created.
    creates: tuple[tuple[str, str], ...] = ()
    # Takes an Idempotency-Key header (SPEC §9): 409 while a repeat is in progress.
    idempotent: bool = False

    @property
    def params(self) -> tuple[Param, ...]:
        """Every query parameter this endpoint takes: checked, and in /openapi.json."""
        paging = (PAGE, PER_PAGE) if self.paginated else ()
        return (PRETTY, *paging, *self.query)


MAX_PER_PAGE = 100
PRETTY = Flag("pretty", "true: indent the JSON answer")
PAGE = Integer(
    "page",
    "Page number, from 1; a page past the end (however large the number) is empty",
    minimum=1,
    default=1,
    # (page - 1) * per_page stays a 64-bit OFFSET: past that no page has items anyway.
    ceiling=2**62 // MAX_PER_PAGE,
)
PER_PAGE = Integer("per_page", "Items per page", 1, MAX_PER_PAGE, 10)
EVENTS_QUERY: tuple[Param, ...] = (
    Choice(
        "events",
        "Only events of this kind",
        (ALL_KINDS, *KINDS),
        ALL_KINDS,
    ),
    Integer("limit", "At most this many events", 1, 1000, 100),
    Together(
        "cursor",
        "Only events after the (stored_at, id) pair of the last event seen: give "
        "startAfter and startAfterId together, or neither",
        (
            Integer(
                "startAfter",
                "The stored_at of the last event seen (ms); a time past every event "
                "answers an empty list",
                minimum=0,
            ),
            Text("startAfterId", "The id of the last event seen", max_length=64),
        ),
    ),
)

SERIES_QUERY: tuple[Param, ...] = (
    Choice(
        "hours",
        "1: one count per minute of the last hour; 24: one per hour of the last 24 hours",
        ("1", "24"),
        "24",
    ),
)

Q = "/queues/{queue_id}"
L = Q + "/listeners/{listener_id}"
M = Q + "/messages/{message_id}"
K = "/api_keys/{api_key_id}"

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        "/queues",
        queues.create_queue,
        "Create a queue",
        "queues",
        "write",
        wire.QueueEnvelope,
        wire.CreateQueue,
        extra_statuses=(422,),
        creates=(("queue_id", "/queue/id"), ("schema_id", "/queue/schema_id")),
    ),
    Endpoint(
        "GET",
        "/queues",
        queues.list_queues,
        "List queues",
        "queues",
        "read",
        wire.QueuesEnvelope,
        paginated=True,
    ),
    Endpoint("GET", Q, queues.get_queue, "Get a queue", "queues", "read", wire.QueueEnvelope),
    Endpoint(
        "PUT",
        Q,
        queues.update_queue,
        "Update a queue",
        "queues",
        "write",
        wire.QueueEnvelope,
        wire.UpdateQueue,
        extra_statuses=(422,),
    ),
    Endpoint(
        "DELETE",
        Q,
        queues.delete_queue,
        "Delete a queue with its listeners and messages",
        "queues",
        "write",
        wire.Deleted,
    ),
    Endpoint(
        "GET",
        Q + "/schemas/{schema_id}",
        queues.get_schema,
        "Get a queue's schema",
        "schemas",
        "read",
        wire.SchemaEnvelope,
    ),
    Endpoint(
        "POST",
        Q + "/listeners",
        listeners.create_listener,
        "Add a listener to a queue",
        "listeners",
        "write",
        wire.CreatedListenerEnvelope,
        wire.CreateListener,
        extra_statuses=(422,),
        creates=(("listener_id", "/listener/id"),),
    ),
    Endpoint(
        "GET",
        Q + "/listeners",
        listeners.list_queue_listeners,
        "List a queue's listeners",
        "listeners",
        "read",
        wire.ListenersEnvelope,
        paginated=True,
    ),
    Endpoint(
        "GET",
        "/listeners",
        listeners.list_all_listeners,
        "List all listeners",
        "listeners",
        "read",
        wire.ListenersEnvelope,
        paginated=True,
    ),
    Endpoint(
        "GET",
        L,
        listeners.get_listener,
        "Get a listener with its secret",
        "listeners",
        "read",
        wire.ListenerEnvelope,
    ),
    Endpoint(
        "PUT",
        L,
        listeners.update_listener,
        "Update a listener",
        "listeners",
        "write",
        wire.UpdatedListenerEnvelope,
        wire.UpdateListener,
        extra_statuses=(422,),
    ),
    Endpoint(
        "DELETE",
        L,
        listeners.delete_listener,
        "Delete a listener",
        "listeners",
        "write",
        wire.Deleted,
    ),
    Endpoint(
        "POST",
        L + "/redeliveries",
        listeners.redeliver,
        "Schedule a listener's missed messages again",
        "listeners",
        "write",
        wire.RedeliveryEnvelope,
        wire.CreateRedelivery,
    ),
    Endpoint(
        "POST",
        L + "/secret",
        listeners.rotate_secret,
        "Rotate a listener's signing key (both keys sign during the grace period)",
        "listeners",
        "write",
        wire.RotatedListenerEnvelope,
        wire.RotateSecret,
    ),
    Endpoint(
        "GET",
        L + "/attempts",
        attempts.listener_attempts,
        "A listener's delivery attempts, oldest first",
        "listeners",
        "read",
        wire.AttemptsEnvelope,
        paginated=True,
    ),
    Endpoint(
        "POST",
        Q + "/messages",
        messages.create_message,
        "Post a message to a queue",
        "messages",
        "write",
        wire.CreatedMessageEnvelope,
        wire.CreateMessage,
        extra_statuses=(422,),
        creates=(("message_id", "/message/id"),),
        idempotent=True,
    ),
    Endpoint(
        "POST",
        Q + "/messages/batch",
        messages.create_messages,
        "Post 1 to 100 messages to a queue, all or none",
        "messages",
        "write",
        wire.CreatedMessagesEnvelope,
        wire.CreateMessages,
        extra_statuses=(422,),
        idempotent=True,
    ),
    Endpoint(
        "GET",
        Q + "/messages",
        messages.list_queue_messages,
        "List a queue's messages",
        "messages",
        "read",
        wire.MessagesEnvelope,
        paginated=True,
    ),
    Endpoint(
        "GET",
        "/messages",
        messages.list_all_messages,
        "List all messages",
        "messages",
        "read",
        wire.MessagesEnvelope,
        paginated=True,
    ),
    Endpoint(
        "GET",
        M,
        messages.get_message,
        "Get a message with its deliveries",
        "messages",
        "read",
        wire.MessageEnvelope,
    ),
    Endpoint(
        "GET",
        M + "/attempts",
        attempts.message_attempts,
        "A message's delivery attempts, oldest first",
        "messages",
        "read",
        wire.AttemptsEnvelope,
        paginated=True,
    ),
    Endpoint(
        "PUT",
        M,
        messages.update_message,
        "Rename a message",
        "messages",
        "write",
        wire.MessageEnvelope,
        wire.UpdateMessage,
    ),
    Endpoint(
        "DELETE",
        M,
        messages.delete_message,
        "Delete a message, cancelling its deliveries",
        "messages",
        "write",
        wire.Deleted,
    ),
    Endpoint(
        "GET",
        "/events",
        events.list_events,
        "Usage events of the organization, oldest first",
        "events",
        "read",
        wire.EventsEnvelope,
        query=EVENTS_QUERY,
    ),
    Endpoint(
        "GET",
        "/stats/messages",
        events.message_stats,
        "Usage event counts of the last 24 hours, the last hour and today (UTC)",
        "stats",
        "read",
        wire.StatsEnvelope,
    ),
    Endpoint(
        "GET",
        "/stats/messages/series",
        events.message_series,
        "Usage event counts per minute of the last hour or per hour of the last 24 hours",
        "stats",
        "read",
        wire.SeriesEnvelope,
        query=SERIES_QUERY,
    ),
    Endpoint(
        "POST",
        "/api_clients",
        clients.create_api_client,
        "Create an organization with an operator key",
        "api_clients",
        "write",
        wire.CreatedApiClientEnvelope,
        wire.CreateApiClient,
        extra_statuses=(422,),
    ),
    Endpoint(
        "PUT",
        "/api_clients/{api_client_id}",
        clients.update_api_client,
        "Rename the caller's organization",
        "api_clients",
        "write",
        wire.ApiClientEnvelope,
        wire.UpdateApiClient,
        extra_statuses=(422,),
    ),
    Endpoint(
        "POST",
        "/api_keys",
        keys.create_api_key,
        "Create an API key (shown in full this once)",
        "api_keys",
        "write",
        wire.CreatedApiKeyEnvelope,
        wire.CreateApiKey,
        extra_statuses=(422,),
    ),
    Endpoint(
        "GET",
        "/api_keys",
        keys.list_api_keys,
        "List API keys",
        "api_keys",
        "read",
        wire.ApiKeysEnvelope,
        paginated=True,
    ),
    Endpoint("GET", K, keys.get_api_key, "Get an API key", "api_keys", "read", wire.ApiKeyEnvelope),
    Endpoint(
        "PUT",
        K,
        keys.update_api_key,
        "Update an API key (scopes replace the whole list)",
        "api_keys",
        "write",
        wire.ApiKeyEnvelope,
        wire.UpdateApiKey,
        extra_statuses=(422,),
    ),
    Endpoint(
        "DELETE", K, keys.delete_api_key, "Delete an API key", "api_keys", "write", wire.Deleted
    ),
]
