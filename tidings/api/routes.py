"""The endpoint table: one row per endpoint drives routing, auth and ``/openapi.json``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from tidings.api import clients, events, keys, listeners, messages, queues, wire
from tidings.api.context import Ctx

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
    query: tuple[dict[str, Any], ...] = ()  # OpenAPI query parameters beyond the shared ones


def _int_query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "integer", **schema},
    }


EVENTS_QUERY = (
    {
        "name": "events",
        "in": "query",
        "description": "Only events of this kind",
        "schema": {
            "type": "string",
            "enum": ["all", "api_keys", "listeners", "messages", "queues"],
            "default": "all",
        },
    },
    _int_query("limit", "At most this many events", minimum=1, maximum=1000, default=100),
    _int_query(
        "startAfter",
        "Only events after (startAfter, startAfterId): the stored_at of the last event seen",
        minimum=0,
    ),
    {
        "name": "startAfterId",
        "in": "query",
        "description": "The id of the last event seen; required with startAfter",
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    },
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
        Q + "/messages",
        messages.create_message,
        "Post a message to a queue",
        "messages",
        "write",
        wire.CreatedMessageEnvelope,
        wire.CreateMessage,
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
        "POST",
        "/api_clients",
        clients.create_api_client,
        "Create an organization with an operator key",
        "api_clients",
        "write",
        wire.CreatedApiClientEnvelope,
        wire.CreateApiClient,
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
    ),
    Endpoint(
        "DELETE", K, keys.delete_api_key, "Delete an API key", "api_keys", "write", wire.Deleted
    ),
]
