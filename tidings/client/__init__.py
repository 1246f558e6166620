"""A typed Python client for the tidings (discue v1) API, sync and async.

    from tidings.client import Client

    with Client("http://127.0.0.1:8080", api_key) as tidings:
        queue = tidings.create_queue("orders")
        tidings.post_message(queue.id, '{"id": 1}', name="order-1")
        for message in tidings.iter_messages(queue.id):
            print(message.id, message.deliveries)

Receivers check deliveries with :func:`verify_webhook`.
"""

from tidings.api.wire import (
    AggregatedUsage,
    ApiClientOut,
    ApiKeyOut,
    CreatedListener,
    DeliveryOut,
    EventOut,
    ListenerOut,
    MessageOut,
    QueueOut,
    Summary,
)
from tidings.client._async import AsyncClient
from tidings.client._sync import Client
from tidings.client.calls import UNSET, NewApiKey, Page
from tidings.client.errors import TidingsClientError
from tidings.client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "UNSET",
    "AggregatedUsage",
    "ApiClientOut",
    "ApiKeyOut",
    "AsyncClient",
    "Client",
    "CreatedListener",
    "DeliveryOut",
    "EventOut",
    "ListenerOut",
    "MessageOut",
    "NewApiKey",
    "Page",
    "QueueOut",
    "Summary",
    "TidingsClientError",
    "WebhookVerificationError",
    "verify_webhook",
]
