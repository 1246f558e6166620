"""The asyncio client: the same methods as :class:`Client`, awaited.

Generated from ``_sync.py`` by ``scripts/gen_async_client.py``; edit that file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
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


class AsyncClient:
    """``AsyncClient(base_url, api_key)``; ``async with`` it or ``await aclose()``.

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
        http: httpx.AsyncClient | None = None,
        **httpx_options: Any,
    ) -> None:
        self._retries = retries
        self._http = http or httpx.AsyncClient(
            **client_options(base_url, api_key, timeout_s), **httpx_options
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, call: Call[T]) -> T:
        """Send one call and read its answer (every method goes through here).

        A call that is safe to repeat (publishing, under its Idempotency-Key) is sent
        again after a transport error, ``409``, ``429`` or ``503``, up to ``retries``
        times."""
        tries = self._retries + 1 if call.retry else 1
        for attempt in range(tries):
            last = attempt == tries - 1
            response = None
            try:
                response = await self._http.request(
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
            await asyncio.sleep(retry_wait(attempt, response))
        raise AssertionError("unreachable")

    async def pages(self, call: Call[Page[T]]) -> AsyncIterator[Page[T]]:
        current: Call[Page[T]] | None = call
        while current is not None:
            page = await self.run(current)
            yield page
            current = next_page(current, page)

    async def items(self, call: Call[Page[T]]) -> AsyncIterator[T]:
        async for page in self.pages(call):
            for item in page.items:
                yield item

    async def follow(self, href: str) -> Any:
        """GET an absolute link from a ``_links`` object; answers the JSON body."""
        return await self.run(calls.raw("GET", href))

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Any endpoint, for what the typed methods do not cover yet; answers JSON."""
        return await self.run(calls.raw(method, path, body))

    async def health(self) -> str:
        return await self.run(calls.health())

    # --- queues ------------------------------------------------------------------

    async def create_queue(
        self, name: str, schema: Any = None, retention_seconds: Any = UNSET
    ) -> wire.QueueOut:
        """``retention_seconds``: seconds its messages are kept; left out, the server's
        default (``TIDINGS_MESSAGE_RETENTION``); ``None`` keeps them forever."""
        return await self.run(calls.create_queue(name, schema, retention_seconds))

    async def list_queues(self, page: int = 1, per_page: int = 10) -> Page[wire.Summary]:
        return await self.run(calls.list_queues(page, per_page))

    def iter_queues(self, per_page: int = 100) -> AsyncIterator[wire.Summary]:
        return self.items(calls.list_queues(1, per_page))

    async def get_queue(self, queue_id: str) -> wire.QueueOut:
        return await self.run(calls.get_queue(queue_id))

    async def update_queue(
        self,
        queue_id: str,
        name: Any = UNSET,
        schema: Any = UNSET,
        retention_seconds: Any = UNSET,
    ) -> wire.QueueOut:
        """Change the name, the schema and/or the retention; ``schema=None`` removes the
        schema, ``retention_seconds=None`` keeps messages forever."""
        return await self.run(calls.update_queue(queue_id, name, schema, retention_seconds))

    async def delete_queue(self, queue_id: str) -> None:
        await self.run(calls.delete_queue(queue_id))

    async def get_schema(self, queue_id: str, schema_id: str) -> Any:
        return await self.run(calls.get_schema(queue_id, schema_id))

    # --- listeners ---------------------------------------------------------------

    async def create_listener(
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
        return await self.run(call)

    async def list_listeners(
        self, queue_id: str | None = None, page: int = 1, per_page: int = 10
    ) -> Page[wire.ListenerOut]:
        return await self.run(calls.list_listeners(queue_id, page, per_page))

    def iter_listeners(
        self, queue_id: str | None = None, per_page: int = 100
    ) -> AsyncIterator[wire.ListenerOut]:
        return self.items(calls.list_listeners(queue_id, 1, per_page))

    async def get_listener(self, queue_id: str, listener_id: str) -> wire.ListenerDetail:
        return await self.run(calls.get_listener(queue_id, listener_id))

    async def update_listener(
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
        return await self.run(call)

    async def rotate_secret(
        self,
        queue_id: str,
        listener_id: str,
        grace_seconds: int | None = None,
        signature_scheme: Literal["v1", "v1a"] | None = None,
    ) -> wire.RotatedListener:
        """A new signing key; the old one still signs for ``grace_seconds``."""
        return await self.run(
            calls.rotate_secret(queue_id, listener_id, grace_seconds, signature_scheme)
        )

    async def delete_listener(self, queue_id: str, listener_id: str) -> None:
        await self.run(calls.delete_listener(queue_id, listener_id))

    async def redeliver(
        self, queue_id: str, listener_id: str, message_ids: list[str] | None = None
    ) -> list[str]:
        return await self.run(calls.redeliver(queue_id, listener_id, message_ids))

    async def listener_attempts(
        self, queue_id: str, listener_id: str, page: int = 1, per_page: int = 10
    ) -> Page[wire.AttemptOut]:
        return await self.run(calls.listener_attempts(queue_id, listener_id, page, per_page))

    # --- messages ----------------------------------------------------------------

    async def post_message(
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
        return await self.run(call)

    async def post_messages(
        self,
        queue_id: str,
        messages: Sequence[NewMessage | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[wire.Summary]:
        """Publish 1..100 messages in one request, all or none (retried like
        :meth:`post_message`)."""
        return await self.run(
            calls.post_messages(queue_id, messages, idempotency_key=idempotency_key)
        )

    async def list_messages(
        self, queue_id: str | None = None, page: int = 1, per_page: int = 10
    ) -> Page[wire.MessageOut]:
        return await self.run(calls.list_messages(queue_id, page, per_page))

    def iter_messages(
        self, queue_id: str | None = None, per_page: int = 100
    ) -> AsyncIterator[wire.MessageOut]:
        return self.items(calls.list_messages(queue_id, 1, per_page))

    async def get_message(self, queue_id: str, message_id: str) -> wire.MessageOut:
        return await self.run(calls.get_message(queue_id, message_id))

    async def rename_message(self, queue_id: str, message_id: str, name: str) -> wire.MessageOut:
        return await self.run(calls.rename_message(queue_id, message_id, name))

    async def delete_message(self, queue_id: str, message_id: str) -> None:
        await self.run(calls.delete_message(queue_id, message_id))

    async def message_attempts(
        self, queue_id: str, message_id: str, page: int = 1, per_page: int = 10
    ) -> Page[wire.AttemptOut]:
        return await self.run(calls.message_attempts(queue_id, message_id, page, per_page))

    # --- usage events and stats -----------------------------------------------------

    async def list_events(
        self,
        events: str = "all",
        limit: int = 100,
        start_after: int | None = None,
        start_after_id: str | None = None,
    ) -> list[wire.EventOut]:
        return await self.run(calls.list_events(events, limit, start_after, start_after_id))

    async def iter_events(
        self, events: str = "all", batch: int = 1000
    ) -> AsyncIterator[wire.EventOut]:
        """Every event still kept, oldest first, fetched ``batch`` at a time (a cursor)."""
        after: tuple[int | None, str | None] = (None, None)
        while True:
            chunk = await self.run(calls.list_events(events, batch, *after))
            for item in chunk:
                yield item
            if len(chunk) < batch:
                return
            after = (chunk[-1].stored_at, chunk[-1].id)

    async def message_stats(self) -> wire.AggregatedUsage:
        return await self.run(calls.message_stats())

    async def message_series(self, hours: int = 24) -> wire.SeriesOut:
        return await self.run(calls.message_series(hours))

    # --- organizations and API keys (operator keys) ---------------------------------

    async def create_api_client(self, name: str) -> wire.CreatedApiClientEnvelope:
        return await self.run(calls.create_api_client(name))

    async def update_api_client(
        self, api_client_id: str, name: Any = UNSET, alerts_queue_id: Any = UNSET
    ) -> wire.ApiClientOut:
        return await self.run(calls.update_api_client(api_client_id, name, alerts_queue_id))

    async def create_api_key(
        self, name: Any = UNSET, status: Any = UNSET, scopes: list[dict[str, Any]] | None = None
    ) -> NewApiKey:
        return await self.run(calls.create_api_key(name, status, scopes))

    async def list_api_keys(self, page: int = 1, per_page: int = 10) -> Page[wire.ApiKeyOut]:
        return await self.run(calls.list_api_keys(page, per_page))

    def iter_api_keys(self, per_page: int = 100) -> AsyncIterator[wire.ApiKeyOut]:
        return self.items(calls.list_api_keys(1, per_page))

    async def get_api_key(self, api_key_id: str) -> wire.ApiKeyOut:
        return await self.run(calls.get_api_key(api_key_id))

    async def update_api_key(
        self, api_key_id: str, name: Any = UNSET, status: Any = UNSET, scopes: Any = UNSET
    ) -> wire.ApiKeyOut:
        return await self.run(calls.update_api_key(api_key_id, name, status, scopes))

    async def delete_api_key(self, api_key_id: str) -> None:
        await self.run(calls.delete_api_key(api_key_id))
