"""Handlers for messages."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache

import msgspec
from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.api.delays import Item, both_given, schedule
from tidings.api.idempotency import Keyed, publish_once
from tidings.domain.errors import BadRequest, Invalid, Unavailable, Violation
from tidings.domain.ids import new_id
from tidings.domain.models import Message, NewMessage, Publication, Queue
from tidings.domain.schemas import MessageSchema, parse_schema, validate_data
from tidings.storage.messages import StaleSchema

# How often a message is checked against a queue schema that keeps changing under it.
SCHEMA_CHECKS = 3
_encoder = msgspec.json.Encoder()


@lru_cache(maxsize=256)
def _compiled(schema_json: str) -> MessageSchema:
    # Keyed by the schema text so an updated schema is never served from the cache.
    return parse_schema(json.loads(schema_json))


def message_out(message: Message) -> wire.MessageOut:
    return wire.MessageOut(
        id=message.id,
        name=message.name,
        queue_id=message.queue_id,
        data=message.data,
        created_at=message.created_at,
        deliver_at=message.deliver_at,
        deliveries=[
            wire.DeliveryOut(
                d.listener_id,
                d.state,
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


def _check_items(
    queue: Queue, items: Sequence[Item], batch: bool, late: dict[int, Violation]
) -> None:
    """Every item against the queue's schema (and the ``late`` ones' times); one
    :class:`Invalid` naming them all."""
    if queue.schema is None and not late:
        return
    schema = None if queue.schema is None else _compiled(json.dumps(queue.schema, sort_keys=True))
    found: list[Violation] = []
    for i, item in enumerate(items):
        if i in late:
            found.append(late[i])
        violations = [] if schema is None else validate_data(schema, item.data)
        if batch:  # "$.data.price" of item 3 is "$.messages[3].data.price"
            violations = [Violation(f"$.messages[{i}]{v.path[1:]}", v.message) for v in violations]
        found.extend(violations)
    if found:
        raise Invalid(
            _invalid_detail(batch, schema_broken=len(found) > len(late), late=bool(late)), found
        )


def _invalid_detail(batch: bool, *, schema_broken: bool, late: bool) -> str:
    """Name what was broken: the schema, the delivery time, or both."""
    rules = " and ".join(
        rule
        for rule, broken in (
            ("the queue's schema", schema_broken),
            ("the delivery time limit", late),
        )
        if broken
    )
    if batch:
        return f"Messages of the batch break {rules}; none was stored."
    if not late:
        return "The message data does not satisfy the queue's schema."
    return f"The message breaks {rules}."


# The 200 body of a publication, from the messages as they will be committed.
Answer = Callable[[Sequence[NewMessage]], bytes]


async def _store(
    ctx: Ctx,
    queue: Queue,
    items: Sequence[Item],
    keyed: Keyed | None,
    answer: Answer,
    batch: bool = False,
) -> bytes:
    """Check ``items`` against the queue's schema and store them, all or none (SPEC
    §4, §9); answer the 200 body.

    ``queue`` may come from this node's cache and lag a change made on another node
    by the notification's delay. So a refusal is confirmed against the queue as
    committed, and the store refuses messages checked against a schema that has
    been replaced (here or while they waited for their commit): then they are
    checked again against the queue as it is now."""
    created_at = ctx.clock.now_ms()
    due, late = schedule(items, created_at, ctx.services.settings.max_delay_s, batch)
    ids = [new_id() for _ in items]
    for _ in range(SCHEMA_CHECKS):
        try:
            _check_items(queue, items, batch, late)
        except Invalid:
            current = await ctx.store.queues.get(ctx.org_id, queue.id)
            if late or current.schema_id == queue.schema_id:
                raise
            queue = current
            continue
        messages = tuple(
            NewMessage(
                message_id,
                ctx.org_id,
                queue.id,
                item.name,
                item.data,
                created_at,
                queue.schema_id,
                at,
            )
            for message_id, item, at in zip(ids, items, due, strict=True)
        )
        body = answer(messages)
        remembered = None if keyed is None else keyed.answer(body)
        try:
            await ctx.store.ingest.add(Publication(messages, remembered))
            return body
        except StaleSchema:
            queue = await ctx.store.queues.get(ctx.org_id, queue.id)
    raise Unavailable("The queue's schema kept changing while storing this message; retry.")


async def create_message(ctx: Ctx) -> Response:
    queue = await ctx.store.queues.get_recent(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)

    def answer(messages: Sequence[NewMessage]) -> bytes:
        (message,) = messages
        return _encoder.encode(
            wire.CreatedMessageEnvelope(
                wire.Summary(message.id, message.name),
                {
                    "self": _href(ctx, queue.id, message.id),
                    "queue": ctx.href("queues", queue.id),
                },
            )
        )

    async def publish(keyed: Keyed | None) -> bytes:
        body = await ctx.body(wire.CreateMessage)
        return await _store(ctx, queue, [body], keyed, answer)

    return await publish_once(ctx, publish)


async def create_messages(ctx: Ctx) -> Response:
    """``POST .../messages/batch``: 1..100 messages, all stored in one commit or none."""
    queue = await ctx.store.queues.get_recent(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)

    def answer(messages: Sequence[NewMessage]) -> bytes:
        items = [(m.name, m.id, _href(ctx, queue.id, m.id)) for m in messages]
        return _encoder.encode(
            wire.CreatedMessagesEnvelope(
                [wire.Summary(m.id, m.name) for m in messages],
                ctx.links(items, queue=ctx.href("queues", queue.id)),
            )
        )

    async def publish(keyed: Keyed | None) -> bytes:
        raw = await ctx.body(wire.CreateMessagesRaw)
        items = _decode_items(raw.messages)
        return await _store(ctx, queue, items, keyed, answer, batch=True)

    return await publish_once(ctx, publish)


def _decode_items(raws: Sequence[msgspec.Raw]) -> list[wire.BatchItem]:
    """Every item, or a 400 naming every malformed one (``$.messages[3].data``), those
    that give both ``deliver_at`` and ``delay`` included."""
    items: list[wire.BatchItem] = []
    errors: list[Violation] = []
    for i, raw in enumerate(raws):
        try:
            item = wire.typed(raw, wire.BatchItem)
        except msgspec.ValidationError as exc:
            message, found, at = str(exc).partition(" - at `")
            path = at.rstrip("`")[1:] if found else ""
            errors.append(Violation(f"$.messages[{i}]{path}", message))
            continue
        items.append(item)
        if both := both_given(item, i, batch=True):
            errors.append(both)
    if errors:
        raise BadRequest(
            "Messages of the batch break this endpoint's schema; none was stored.", errors
        )
    return items


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
