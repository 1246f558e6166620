"""A typed Python client for the tidings (discue v1) API, sync and async.

    from tidings_client import Client

    with Client("http://127.0.0.1:8080", api_key) as tidings:
        queue = tidings.create_queue("orders")
        tidings.post_message(queue.id, '{"id": 1}', name="order-1")
        for message in tidings.iter_messages(queue.id):
            print(message.id, message.deliveries)

Receivers check deliveries with :func:`verify_webhook`. This package depends on
httpx, msgspec and standardwebhooks only: ``pip install ./client`` from a checkout of
tidings installs it without the server (``pip install .`` includes it).
"""

from tidings_client._async import AsyncClient
from tidings_client._sync import Client
from tidings_client.calls import UNSET, NewApiKey, NewMessage, Page
from tidings_client.errors import TidingsClientError
from tidings_client.webhooks import WebhookVerificationError, verify_webhook
from tidings_client.wire import (
    AggregatedUsage,
    ApiClientOut,
    ApiKeyOut,
    CreatedListener,
    DeliveryOut,
    EventOut,
    ListenerDetail,
    ListenerOut,
    MessageOut,
    QueueOut,
    Summary,
)

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
    "ListenerDetail",
    "ListenerOut",
    "MessageOut",
    "NewApiKey",
    "NewMessage",
    "Page",
    "QueueOut",
    "Summary",
    "TidingsClientError",
    "WebhookVerificationError",
    "verify_webhook",
]
