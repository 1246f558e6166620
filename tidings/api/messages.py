"""Handlers for messages."""

from __future__ import annotations

import json
from functools import lru_cache

from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.domain.errors import Invalid, Unavailable
from tidings.domain.ids import new_id
from tidings.domain.models import Message, NewMessage, Queue
from tidings.domain.schemas import MessageSchema, parse_schema, validate_data
from tidings.storage.messages import StaleSchema

# How often a message is checked against a queue schema that keeps changing under it.
SCHEMA_CHECKS = 3


@lru_cache(maxsize=256)
def _compiled(schema_json: str) -> MessageSchema:
    # Keyed by the schema text so an updated schema is never served from the cache.
    return parse_schema(json.loads(schema_json))


def _check_data(queue: Queue, data: str) -> None:
    if queue.schema is None:
        return
    schema = _compiled(json.dumps(queue.schema, sort_keys=True))
    violations = validate_data(schema, data)
    if violations:
        raise Invalid("The message data does not satisfy the queue's schema.", violations)


def message_out(message: Message) -> wire.MessageOut:
    return wire.MessageOut(
        id=message.id,
        name=message.name,
        queue_id=message.queue_id,
        data=message.data,
        created_at=message.created_at,
        deliveries=[
            wire.DeliveryOut(
                d.listener_id,
                d.state.value,
                d.attempts,
                d.last_status,
                d.last_attempt_at,
                d.next_attempt_at,
            )
            for d in message.deliveries
        ],
    )


def _href(ctx: Ctx, queue_id: str, message_id: str) -> wire.Link:
    return ctx.href("queues", queue_id, "messages", message_id)


async def _store(ctx: Ctx, queue: Queue, body: wire.CreateMessage) -> NewMessage:
    """Check ``body`` against the queue's schema and store it (SPEC §4).

    ``queue`` may come from this node's cache and lag a change made on another node
    by the notification's delay. So a refusal is confirmed against the queue as
    committed, and the store refuses a message checked against a schema that has
    been replaced (here or while the message waited for its commit): then the
    message is checked again against the queue as it is now."""
    message_id, created_at = new_id(), ctx.clock.now_ms()
    for _ in range(SCHEMA_CHECKS):
        try:
            _check_data(queue, body.data)
        except Invalid:
            current = await ctx.store.queues.get(ctx.org_id, queue.id)
            if current.schema_id == queue.schema_id:
                raise
            queue = current
            continue
        message = NewMessage(
            message_id, ctx.org_id, queue.id, body.name, body.data, created_at, queue.schema_id
        )
        try:
            await ctx.store.ingest.add(message)
            return message
        except StaleSchema:
            queue = await ctx.store.queues.get(ctx.org_id, queue.id)
    raise Unavailable("The queue's schema kept changing while storing this message; retry.")


async def create_message(ctx: Ctx) -> Response:
    queue = await ctx.store.queues.get_recent(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)
    body = await ctx.body(wire.CreateMessage)
    message = await _store(ctx, queue, body)
    return ctx.respond(
        wire.CreatedMessageEnvelope(
            wire.Summary(message.id, message.name),
            {"self": _href(ctx, queue.id, message.id), "queue": ctx.href("queues", queue.id)},
        )
    )


async def list_queue_messages(ctx: Ctx) -> Response:
    queue = await ctx.store.queues.get(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)
    return await _list(ctx, queue.id)


async def list_all_messages(ctx: Ctx) -> Response:
    ctx.authorize()
    return await _list(ctx, None)


async def _list(ctx: Ctx, queue_id: str | None) -> Response:
    page = ctx.page()
    # The list of all messages shows a key limited to some ids only those (or those of
    # its queues); a queue's own list was authorized on the queue as a whole.
    within = ctx.visible() if queue_id is None else None
    messages, total = await ctx.store.messages.list_page(ctx.org_id, queue_id, page, within)
    items = [(m.name, m.id, _href(ctx, m.queue_id, m.id)) for m in messages]
    body = wire.MessagesEnvelope([message_out(m) for m in messages], ctx.links(items))
    return ctx.respond_page(body, page, total)


async def _find(ctx: Ctx) -> Message:
    message = await ctx.store.messages.get(
        ctx.org_id, ctx.param("queue_id"), ctx.param("message_id")
    )
    ctx.authorize(message.queue_id, message.id)
    return message


async def get_message(ctx: Ctx) -> Response:
    message = await _find(ctx)
    return ctx.respond(
        wire.MessageEnvelope(
            message_out(message), ctx.links(queue=ctx.href("queues", message.queue_id))
        )
    )


async def update_message(ctx: Ctx) -> Response:
    message = await _find(ctx)
    body = await ctx.body(wire.UpdateMessage)
    updated = await ctx.store.messages.rename(ctx.org_id, message.queue_id, message.id, body.name)
    return ctx.respond(
        wire.MessageEnvelope(
            message_out(updated), ctx.links(queue=ctx.href("queues", updated.queue_id))
        )
    )


async def delete_message(ctx: Ctx) -> Response:
    message = await _find(ctx)
    await ctx.store.messages.delete(ctx.org_id, message.queue_id, message.id)
    return ctx.respond(wire.Deleted({"self": ctx.self_link()}))
