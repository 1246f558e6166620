"""Every endpoint as data: method, path, body and how to read the answer.

Both clients run these, so the sync and async APIs cannot drift. Answers are
decoded into the types the server encodes (``tidings_client.wire``): the client
reads exactly what the server writes, and ignores fields it does not know.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import httpx
import msgspec

from tidings_client import wire
from tidings_client.errors import TidingsClientError

T = TypeVar("T")
E = TypeVar("E")
UNSET: Any = msgspec.UNSET  # "leave unchanged" in updates (None may mean "remove")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str  # relative to the API root, or an absolute ``_links`` href
    read: Callable[[httpx.Response], T]
    body: Mapping[str, Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    # Safe to send again after a timeout, a lost connection, 409, 429 or 503: it
    # carries an Idempotency-Key, so the server stores it at most once.
    retry: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the ``Link`` header's targets (absolute URLs)."""

    items: list[T]
    total: int
    next: str | None = None
    prev: str | None = None
    first: str | None = None
    last: str | None = None


def raise_for_problem(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    raise TidingsClientError(
        title=str(problem.get("title") or response.reason_phrase),
        status=int(problem.get("status") or response.status_code),
        detail=problem.get("detail"),
        errors=list(problem.get("errors") or []),
        headers=dict(response.headers),
    )


def _envelope(kind: type[E], pick: Callable[[E], T]) -> Callable[[httpx.Response], T]:
    def read(response: httpx.Response) -> T:
        return pick(msgspec.json.decode(response.content, type=kind))

    return read


def _page(kind: type[E], pick: Callable[[E], list[T]]) -> Callable[[httpx.Response], Page[T]]:
    def read(response: httpx.Response) -> Page[T]:
        links = {rel: link["url"] for rel, link in response.links.items() if "url" in link}
        return Page(
            items=pick(msgspec.json.decode(response.content, type=kind)),
            total=int(response.headers.get("X-Total-Count", "0")),
            next=links.get("next"),
            prev=links.get("prev"),
            first=links.get("first"),
            last=links.get("last"),
        )

    return read


def _seg(value: str) -> str:
    return quote(value, safe="")


def _changes(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not UNSET}


def _paging(page: int, per_page: int) -> dict[str, Any]:
    return {"page": page, "per_page": per_page}


def raw(method: str, path: str, body: Mapping[str, Any] | None = None) -> Call[Any]:
    return Call(method, path, lambda r: r.json(), body)


def health() -> Call[str]:
    return Call("GET", "health", _envelope(wire.Health, lambda e: e.status))


# --- queues -----------------------------------------------------------------------


def create_queue(
    name: str, schema: Any = None, retention_seconds: Any = UNSET
) -> Call[wire.QueueOut]:
    """``retention_seconds``: left out, the server's default; ``None`` keeps forever."""
    body: dict[str, Any] = {"name": name} if schema is None else {"name": name, "schema": schema}
    if retention_seconds is not UNSET:
        body["retention_seconds"] = retention_seconds
    return Call("POST", "queues", _envelope(wire.QueueEnvelope, lambda e: e.queue), body)


def list_queues(page: int = 1, per_page: int = 10) -> Call[Page[wire.Summary]]:
    read = _page(wire.QueuesEnvelope, lambda e: e.queues)
    return Call("GET", "queues", read, params=_paging(page, per_page))


def get_queue(queue_id: str) -> Call[wire.QueueOut]:
    return Call("GET", f"queues/{_seg(queue_id)}", _envelope(wire.QueueEnvelope, lambda e: e.queue))


def update_queue(
    queue_id: str, name: Any = UNSET, schema: Any = UNSET, retention_seconds: Any = UNSET
) -> Call[wire.QueueOut]:
    read = _envelope(wire.QueueEnvelope, lambda e: e.queue)
    body = _changes(name=name, schema=schema, retention_seconds=retention_seconds)
    return Call("PUT", f"queues/{_seg(queue_id)}", read, body)


def delete_queue(queue_id: str) -> Call[None]:
    return Call("DELETE", f"queues/{_seg(queue_id)}", lambda _r: None)


def get_schema(queue_id: str, schema_id: str) -> Call[Any]:
    path = f"queues/{_seg(queue_id)}/schemas/{_seg(schema_id)}"
    return Call("GET", path, _envelope(wire.SchemaEnvelope, lambda e: e.schema))


# --- listeners --------------------------------------------------------------------


def _listener_path(queue_id: str, listener_id: str) -> str:
    return f"queues/{_seg(queue_id)}/listeners/{_seg(listener_id)}"


class ListenerOptions(TypedDict, total=False):
    """The options of SPEC §10 (docs/delivery.md); ``None`` removes ``rate_limit`` or
    ``filter``."""

    max_in_flight: int
    rate_limit: float | None
    ordered: bool
    headers: dict[str, str]
    filter: dict[str, Any] | None


class NewListenerOptions(ListenerOptions, total=False):
    signature_scheme: Literal["v1", "v1a"]


def create_listener(
    queue_id: str,
    name: str,
    notify_url: str,
    liveness_url: str,
    **options: Unpack[NewListenerOptions],
) -> Call[wire.CreatedListener]:
    body = {"name": name, "notify_url": notify_url, "liveness_url": liveness_url, **options}
    read = _envelope(wire.CreatedListenerEnvelope, lambda e: e.listener)
    return Call("POST", f"queues/{_seg(queue_id)}/listeners", read, body)


def list_listeners(
    queue_id: str | None = None, page: int = 1, per_page: int = 10
) -> Call[Page[wire.ListenerOut]]:
    """A queue's listeners, or with no ``queue_id`` every listener of the organization."""
    path = "listeners" if queue_id is None else f"queues/{_seg(queue_id)}/listeners"
    read = _page(wire.ListenersEnvelope, lambda e: e.listeners)
    return Call("GET", path, read, params=_paging(page, per_page))


def get_listener(queue_id: str, listener_id: str) -> Call[wire.ListenerDetail]:
    """One listener; its ``secret`` is ``None`` unless the key may write to the listener."""
    read = _envelope(wire.ListenerEnvelope, lambda e: e.listener)
    return Call("GET", _listener_path(queue_id, listener_id), read)


def update_listener(
    queue_id: str,
    listener_id: str,
    name: Any = UNSET,
    notify_url: Any = UNSET,
    liveness_url: Any = UNSET,
    status: Any = UNSET,
    **options: Unpack[ListenerOptions],
) -> Call[wire.Summary]:
    """Change the given fields; ``status="disabled"`` stops deliveries (kept) and
    ``"enabled"`` resets the listener's health and sends everything it is owed."""
    read = _envelope(wire.UpdatedListenerEnvelope, lambda e: e.listener)
    body = _changes(name=name, notify_url=notify_url, liveness_url=liveness_url, status=status)
    body.update(options)
    return Call("PUT", _listener_path(queue_id, listener_id), read, body)


def delete_listener(queue_id: str, listener_id: str) -> Call[None]:
    return Call("DELETE", _listener_path(queue_id, listener_id), lambda _r: None)


def redeliver(
    queue_id: str, listener_id: str, message_ids: list[str] | None = None
) -> Call[list[str]]:
    """Give missed messages a fresh schedule (all missed ones by default)."""
    body = {} if message_ids is None else {"message_ids": message_ids}
    read = _envelope(wire.RedeliveryEnvelope, lambda e: e.redelivery.message_ids)
    return Call("POST", _listener_path(queue_id, listener_id) + "/redeliveries", read, body)


def rotate_secret(
    queue_id: str,
    listener_id: str,
    grace_seconds: int | None = None,
    signature_scheme: Literal["v1", "v1a"] | None = None,
) -> Call[wire.RotatedListener]:
    """A new signing key; the old one keeps signing beside it for ``grace_seconds``
    (default one day, 0 for none). ``signature_scheme`` may switch between v1 and v1a."""
    body: dict[str, Any] = {}
    if grace_seconds is not None:
        body["grace_seconds"] = grace_seconds
    if signature_scheme is not None:
        body["signature_scheme"] = signature_scheme
    read = _envelope(wire.RotatedListenerEnvelope, lambda e: e.listener)
    return Call("POST", _listener_path(queue_id, listener_id) + "/secret", read, body)


def listener_attempts(
    queue_id: str, listener_id: str, page: int = 1, per_page: int = 10
) -> Call[Page[wire.AttemptOut]]:
    """The listener's attempt log, oldest first."""
    read = _page(wire.AttemptsEnvelope, lambda e: e.attempts)
    path = _listener_path(queue_id, listener_id) + "/attempts"
    return Call("GET", path, read, params=_paging(page, per_page))


# --- messages ---------------------------------------------------------------------


def _message_path(queue_id: str, message_id: str) -> str:
    return f"queues/{_seg(queue_id)}/messages/{_seg(message_id)}"


def _keyed(idempotency_key: str | None) -> dict[str, str]:
    """A fresh key unless the caller brings its own (e.g. an order id)."""
    return {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}


@dataclass(frozen=True)
class NewMessage:
    """One message to publish: ``deliver_at`` (ms) or ``delay`` (seconds) holds back
    its first attempt (give one at most)."""

    data: str
    name: str | None = None
    deliver_at: int | None = None
    delay: float | None = None

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"data": self.data}
        for key in ("name", "deliver_at", "delay"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body


def post_message(
    queue_id: str,
    data: str,
    name: str | None = None,
    *,
    deliver_at: int | None = None,
    delay: float | None = None,
    idempotency_key: str | None = None,
) -> Call[wire.Summary]:
    """Publish one message; retried under one Idempotency-Key, so stored at most once."""
    read = _envelope(wire.CreatedMessageEnvelope, lambda e: e.message)
    body = NewMessage(data, name, deliver_at, delay).wire()
    path = f"queues/{_seg(queue_id)}/messages"
    return Call("POST", path, read, body, headers=_keyed(idempotency_key), retry=True)


def post_messages(
    queue_id: str,
    messages: Sequence[NewMessage | Mapping[str, Any]],
    *,
    idempotency_key: str | None = None,
) -> Call[list[wire.Summary]]:
    """Publish 1..100 messages in one request and one commit, all or none. Items are
    :class:`NewMessage` or the wire's own dicts (``{"data", "name"?}``)."""
    read = _envelope(wire.CreatedMessagesEnvelope, lambda e: e.messages)
    body = {"messages": [m.wire() if isinstance(m, NewMessage) else m for m in messages]}
    path = f"queues/{_seg(queue_id)}/messages/batch"
    return Call("POST", path, read, body, headers=_keyed(idempotency_key), retry=True)


def list_messages(
    queue_id: str | None = None, page: int = 1, per_page: int = 10
) -> Call[Page[wire.MessageOut]]:
    """A queue's messages, or with no ``queue_id`` every message of the organization."""
    path = "messages" if queue_id is None else f"queues/{_seg(queue_id)}/messages"
    read = _page(wire.MessagesEnvelope, lambda e: e.messages)
    return Call("GET", path, read, params=_paging(page, per_page))


def get_message(queue_id: str, message_id: str) -> Call[wire.MessageOut]:
    read = _envelope(wire.MessageEnvelope, lambda e: e.message)
    return Call("GET", _message_path(queue_id, message_id), read)


def rename_message(queue_id: str, message_id: str, name: str) -> Call[wire.MessageOut]:
    read = _envelope(wire.MessageEnvelope, lambda e: e.message)
    return Call("PUT", _message_path(queue_id, message_id), read, {"name": name})


def delete_message(queue_id: str, message_id: str) -> Call[None]:
    return Call("DELETE", _message_path(queue_id, message_id), lambda _r: None)


def message_attempts(
    queue_id: str, message_id: str, page: int = 1, per_page: int = 10
) -> Call[Page[wire.AttemptOut]]:
    """Every attempt to deliver the message, to each of its listeners, oldest first."""
    read = _page(wire.AttemptsEnvelope, lambda e: e.attempts)
    path = _message_path(queue_id, message_id) + "/attempts"
    return Call("GET", path, read, params=_paging(page, per_page))


# --- usage events and stats ---------------------------------------------------------


def list_events(
    events: str = "all",
    limit: int = 100,
    start_after: int | None = None,
    start_after_id: str | None = None,
) -> Call[list[wire.EventOut]]:
    """Events oldest first; pass the last one's ``stored_at`` and ``id`` to go on."""
    params: dict[str, Any] = {"events": events, "limit": limit}
    if start_after is not None:
        params["startAfter"] = start_after
    if start_after_id is not None:
        params["startAfterId"] = start_after_id
    read = _envelope(wire.EventsEnvelope, lambda e: e.events)
    return Call("GET", "events", read, params=params)


def message_stats() -> Call[wire.AggregatedUsage]:
    read = _envelope(wire.StatsEnvelope, lambda e: e.aggregated_api_usage_events)
    return Call("GET", "stats/messages", read)


def message_series(hours: int = 24) -> Call[wire.SeriesOut]:
    """Event counts per minute of the last hour (``hours=1``) or per hour of the day."""
    read = _envelope(wire.SeriesEnvelope, lambda e: e.series)
    return Call("GET", "stats/messages/series", read, params={"hours": hours})


# --- organizations and API keys (operator keys) -----------------------------------


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: ``key`` is shown in full this once."""

    id: str
    key: str


def _new_key(response: httpx.Response) -> NewApiKey:
    envelope = msgspec.json.decode(response.content, type=wire.CreatedApiKeyEnvelope)
    # The answer names the new key's id only in its self link (SPEC §3).
    key_id = envelope._links["self"].href.rstrip("/").rsplit("/", 1)[-1]
    return NewApiKey(id=key_id, key=envelope.api_key)


def create_api_client(name: str) -> Call[wire.CreatedApiClientEnvelope]:
    """A new organization; the answer holds its operator key (``.api_key``), shown once."""
    return Call("POST", "api_clients", _envelope(wire.CreatedApiClientEnvelope, lambda e: e), {
        "name": name
    })  # fmt: skip


def update_api_client(
    api_client_id: str, name: Any = UNSET, alerts_queue_id: Any = UNSET
) -> Call[wire.ApiClientOut]:
    """Rename the organization and/or set its alerts queue (``None`` removes it)."""
    read = _envelope(wire.ApiClientEnvelope, lambda e: e.api_client)
    body = _changes(name=name, alerts_queue_id=alerts_queue_id)
    return Call("PUT", f"api_clients/{_seg(api_client_id)}", read, body)


def create_api_key(
    name: Any = UNSET, status: Any = UNSET, scopes: list[dict[str, Any]] | None = None
) -> Call[NewApiKey]:
    """``scopes`` like ``[{"resource": "messages", "access": "write", "targets": [qid]}]``;
    none given: write on every resource that is not protected."""
    body = _changes(name=name, status=status)
    if scopes is not None:
        body["scopes"] = scopes
    return Call("POST", "api_keys", _new_key, body)


def list_api_keys(page: int = 1, per_page: int = 10) -> Call[Page[wire.ApiKeyOut]]:
    read = _page(wire.ApiKeysEnvelope, lambda e: e.api_keys)
    return Call("GET", "api_keys", read, params=_paging(page, per_page))


def get_api_key(api_key_id: str) -> Call[wire.ApiKeyOut]:
    read = _envelope(wire.ApiKeyEnvelope, lambda e: e.api_key)
    return Call("GET", f"api_keys/{_seg(api_key_id)}", read)


def update_api_key(
    api_key_id: str, name: Any = UNSET, status: Any = UNSET, scopes: Any = UNSET
) -> Call[wire.ApiKeyOut]:
    """``scopes`` replaces the whole list."""
    read = _envelope(wire.ApiKeyEnvelope, lambda e: e.api_key)
    body = _changes(name=name, status=status, scopes=scopes)
    return Call("PUT", f"api_keys/{_seg(api_key_id)}", read, body)


def delete_api_key(api_key_id: str) -> Call[None]:
    return Call("DELETE", f"api_keys/{_seg(api_key_id)}", lambda _r: None)
