"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, Unpack

import httpx

from tidings_client import calls, wire
from tidings_client._base import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    RETRY_STATUSES,
    client_options,
    next_page,
    retry_wait,
    target,
)
from tidings_client.calls import UNSET, Call, NewApiKey, NewMessage, Page

T = TypeVar("T")


class Client:
    """``Client("http://127.0.0.1:8080", api_key)``; use as a context manager or ``close()``.

    Every method raises :class:`~tidings_client.TidingsClientError` for a non-2xx
    answer. ``list_*`` return one :class:`Page`; ``iter_*`` walk all pages through the
    ``Link`` header.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        http: httpx.Client | None = None,
        **httpx_options: Any,
    ) -> None:
        self._retries = retries
        self._http = http or httpx.Client(
            **client_options(base_url, api_key, timeout_s), **httpx_options
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def run(self, call: Call[T]) -> T:
        """Send one call and read its answer (every method goes through here).

        A call that is safe to repeat (publishing, under its Idempotency-Key) is sent
        again after a transport error, ``409``, ``429`` or ``503``, up to ``retries``
        times."""
        tries = self._retries + 1 if call.retry else 1
        for attempt in range(tries):
            last = attempt == tries - 1
            response = None
            try:
                response = self._http.request(
                    call.method,
                    target(self._http.base_url, call),
                    json=call.body,
                    params=dict(call.params) or None,  # None keeps a link's own query
                    headers=dict(call.headers) or None,
                )
            except httpx.TransportError:
                if last:
                    raise
            if response is not None and (last or response.status_code not in RETRY_STATUSES):
                calls.raise_for_problem(response)
                return call.read(response)
            time.sleep(retry_wait(attempt, response))
        raise AssertionError("unreachable")

    def pages(self, call: Call[Page[T]]) -> Iterator[Page[T]]:
        current: Call[Page[T]] | None = call
        while current is not None:
            page = self.run(current)
            yield page
            current = next_page(current, page)

    def items(self, call: Call[Page[T]]) -> Iterator[T]:
        for page in self.pages(call):
            yield from page.items

    def follow(self, href: str) -> Any:
        """GET an absolute link from a ``_links`` object; answers the JSON body."""
        return self.run(calls.raw("GET", href))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Any endpoint, for what the typed methods do not cover yet; answers JSON."""
        return self.run(calls.raw(method, path, body))

    def health(self) -> str:
        return self.run(calls.health())

    # --- queues ------------------------------------------------------------------

    def create_queue(
        self, name: str, schema: Any = None, retention_seconds: Any = UNSET
    ) -> wire.QueueOut:
        """``retention_seconds``: seconds its messages are kept; left out, the server's
        default (``TIDINGS_MESSAGE_RETENTION``); ``None`` keeps them forever."""
        return self.run(calls.create_queue(name, schema, retention_seconds))

    def list_queues(self, page: int = 1, per_page: int = 10) -> Page[wire.Summary]:
        return self.run(calls.list_queues(page, per_page))

    def iter_queues(self, per_page: int = 100) -> Iterator[wire.Summary]:
        return self.items(calls.list_queues(1, per_page))

    def get_queue(self, queue_id: str) -> wire.QueueOut:
        return self.run(calls.get_queue(queue_id))

    def update_queue(
        self,
        queue_id: str,
        name: Any = UNSET,
        schema: Any = UNSET,
        retention_seconds: Any = UNSET,
    ) -> wire.QueueOut:
        """Change the name, the schema and/or the retention; ``schema=None`` removes the
        schema, ``retention_seconds=None`` keeps messages forever."""
        return self.run(calls.update_queue(queue_id, name, schema, retention_seconds))

    def delete_queue(self, queue_id: str) -> None:
        self.run(calls.delete_queue(queue_id))

    def get_schema(self, queue_id: str, schema_id: str) -> Any:
        return self.run(calls.get_schema(queue_id, schema_id))

    # --- listeners ---------------------------------------------------------------

    def create_listener(
        self,
        queue_id: str,
        name: str,
        notify_url: str,
        liveness_url: str,
        **options: Unpack[calls.NewListenerOptions],
    ) -> wire.CreatedListener:
        """Options (``max_in_flight``, ``rate_limit``, ``ordered``, ``headers``,
        ``filter``, ``signature_scheme``): docs/delivery.md."""
        call = calls.create_listener(queue_id, name, notify_url, liveness_url, **options)
        return self.run(call)

    def list_listeners(
        self, queue_id: str | None = None, page: int = 1, per_page: int = 10
    ) -> Page[wire.ListenerOut]:
        return self.run(calls.list_listeners(queue_id, page, per_page))

    def iter_listeners(
        self, queue_id: str | None = None, per_page: int = 100
    ) -> Iterator[wire.ListenerOut]:
        return self.items(calls.list_listeners(queue_id, 1, per_page))

    def get_listener(self, queue_id: str, listener_id: str) -> wire.ListenerDetail:
        return self.run(calls.get_listener(queue_id, listener_id))

    def update_listener(
        self,
        queue_id: str,
        listener_id: str,
        name: Any = UNSET,
        notify_url: Any = UNSET,
        liveness_url: Any = UNSET,
        status: Any = UNSET,
        **options: Unpack[calls.ListenerOptions],
    ) -> wire.Summary:
        call = calls.update_listener(
            queue_id, listener_id, name, notify_url, liveness_url, status, **options
        )
        return self.run(call)

    def rotate_secret(
        self,
        queue_id: str,
        listener_id: str,
        grace_seconds: int | None = None,
        signature_scheme: Literal["v1", "v1a"] | None = None,
    ) -> wire.RotatedListener:
        """A new signing key; the old one still signs for ``grace_seconds``."""
        return self.run(calls.rotate_secret(queue_id, listener_id, grace_seconds, signature_scheme))

    def delete_listener(self, queue_id: str, listener_id: str) -> None:
        self.run(calls.delete_listener(queue_id, listener_id))

    def redeliver(
        self, queue_id: str, listener_id: str, message_ids: list[str] | None = None
    ) -> list[str]:
        return self.run(calls.redeliver(queue_id, listener_id, message_ids))

    def listener_attempts(
        self, queue_id: str, listener_id: str, page: int = 1, per_page: int = 10
    ) -> Page[wire.AttemptOut]:
        return self.run(calls.listener_attempts(queue_id, listener_id, page, per_page))

    # --- messages ----------------------------------------------------------------

    def post_message(
        self,
        queue_id: str,
        data: str,
        name: str | None = None,
        *,
        deliver_at: int | None = None,
        delay: float | None = None,
        idempotency_key: str | None = None,
    ) -> wire.Summary:
        """Publish one message (``deliver_at`` in ms or ``delay`` in seconds hold back
        its first attempt). It carries an Idempotency-Key (a fresh one unless given)
        and is retried under it, so a timeout never stores it twice."""
        call = calls.post_message(
            queue_id,
            data,
            name,
            deliver_at=deliver_at,
            delay=delay,
            idempotency_key=idempotency_key,
        )
        return self.run(call)

    def post_messages(
        self,
        queue_id: str,
        messages: Sequence[NewMessage | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[wire.Summary]:
        """Publish 1..100 messages in one request, all or none (retried like
        :meth:`post_message`)."""
        return self.run(calls.post_messages(queue_id, messages, idempotency_key=idempotency_key))

    def list_messages(
        self, queue_id: str | None = None, page: int = 1, per_page: int = 10
    ) -> Page[wire.MessageOut]:
        return self.run(calls.list_messages(queue_id, page, per_page))

    def iter_messages(
        self, queue_id: str | None = None, per_page: int = 100
    ) -> Iterator[wire.MessageOut]:
        return self.items(calls.list_messages(queue_id, 1, per_page))

    def get_message(self, queue_id: str, message_id: str) -> wire.MessageOut:
        return self.run(calls.get_message(queue_id, message_id))

    def rename_message(self, queue_id: str, message_id: str, name: str) -> wire.MessageOut:
        return self.run(calls.rename_message(queue_id, message_id, name))

    def delete_message(self, queue_id: str, message_id: str) -> None:
        self.run(calls.delete_message(queue_id, message_id))

    def message_attempts(
        self, queue_id: str, message_id: str, page: int = 1, per_page: int = 10
    ) -> Page[wire.AttemptOut]:
        return self.run(calls.message_attempts(queue_id, message_id, page, per_page))

    # --- usage events and stats -----------------------------------------------------

    def list_events(
        self,
        events: str = "all",
        limit: int = 100,
        start_after: int | None = None,
        start_after_id: str | None = None,
    ) -> list[wire.EventOut]:
        return self.run(calls.list_events(events, limit, start_after, start_after_id))

    def iter_events(self, events: str = "all", batch: int = 1000) -> Iterator[wire.EventOut]:
        """Every event still kept, oldest first, fetched ``batch`` at a time (a cursor)."""
        after: tuple[int | None, str | None] = (None, None)
        while True:
            chunk = self.run(calls.list_events(events, batch, *after))
            yield from chunk
            if len(chunk) < batch:
                return
            after = (chunk[-1].stored_at, chunk[-1].id)

    def message_stats(self) -> wire.AggregatedUsage:
        return self.run(calls.message_stats())

    def message_series(self, hours: int = 24) -> wire.SeriesOut:
        return self.run(calls.message_series(hours))

    # --- organizations and API keys (operator keys) ---------------------------------

    def create_api_client(self, name: str) -> wire.CreatedApiClientEnvelope:
        return self.run(calls.create_api_client(name))

    def update_api_client(
        self, api_client_id: str, name: Any = UNSET, alerts_queue_id: Any = UNSET
    ) -> wire.ApiClientOut:
        return self.run(calls.update_api_client(api_client_id, name, alerts_queue_id))

    def create_api_key(
        self, name: Any = UNSET, status: Any = UNSET, scopes: list[dict[str, Any]] | None = None
    ) -> NewApiKey:
        return self.run(calls.create_api_key(name, status, scopes))

    def list_api_keys(self, page: int = 1, per_page: int = 10) -> Page[wire.ApiKeyOut]:
        return self.run(calls.list_api_keys(page, per_page))

    def iter_api_keys(self, per_page: int = 100) -> Iterator[wire.ApiKeyOut]:
        return self.items(calls.list_api_keys(1, per_page))

    def get_api_key(self, api_key_id: str) -> wire.ApiKeyOut:
        return self.run(calls.get_api_key(api_key_id))

    def update_api_key(
        self, api_key_id: str, name: Any = UNSET, status: Any = UNSET, scopes: Any = UNSET
    ) -> wire.ApiKeyOut:
        return self.run(calls.update_api_key(api_key_id, name, status, scopes))

    def delete_api_key(self, api_key_id: str) -> None:
        self.run(calls.delete_api_key(api_key_id))
