"""Handlers for queues and their schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from msgspec import UNSET
from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.domain.errors import NotFound
from tidings.domain.models import Queue
from tidings.domain.schemas import parse_schema, schema_id
from tidings.storage.queues import KEEP


async def _queue_out(ctx: Ctx, queue: Queue) -> wire.QueueEnvelope:
    return _envelope(ctx, queue, await ctx.store.listeners.summaries(ctx.org_id, queue.id))


def _envelope(ctx: Ctx, queue: Queue, listeners: Sequence[tuple[str, str]]) -> wire.QueueEnvelope:
    here = ctx.href("queues", queue.id).href
    items = [(name, lid, wire.Link(f"{here}/listeners/{lid}")) for lid, name in listeners]
    named = {"listeners": wire.Link(here + "/listeners"), "messages": wire.Link(here + "/messages")}
    if queue.schema_id:
        named["schema"] = wire.Link(f"{here}/schemas/{queue.schema_id}")
    return wire.QueueEnvelope(
        queue=wire.QueueOut(
            id=queue.id,
            name=queue.name,
            listeners=[wire.Summary(lid, name) for lid, name in listeners],
            schema=queue.schema,
            schema_id=queue.schema_id,
            retention_seconds=queue.retention_seconds,
        ),
        _links=ctx.links(items, self_link=wire.Link(here), **named),
    )


def _schema_id(schema: Any) -> str | None:
    """Refuse a malformed schema (422); ``None`` stands for "no schema"."""
    if schema is None:
        return None
    parse_schema(schema)
    return schema_id(schema)


async def create_queue(ctx: Ctx) -> Response:
    ctx.authorize()
    body = await ctx.body(wire.CreateQueue)
    sid = _schema_id(body.schema)
    retention = (
        ctx.services.settings.message_retention_s
        if body.retention_seconds is UNSET
        else body.retention_seconds
    )
    queue = await ctx.store.queues.create(ctx.org_id, body.name, body.schema, sid, retention)
    return ctx.respond(await _queue_out(ctx, queue))


async def list_queues(ctx: Ctx) -> Response:
    ctx.authorize()
    page = ctx.page()
    # A key limited to some queues lists just those.
    queues, total = await ctx.store.queues.list_page(ctx.org_id, page, ctx.visible())
    items = [(q.name, q.id, ctx.href("queues", q.id)) for q in queues]
    body = wire.QueuesEnvelope([wire.Summary(q.id, q.name) for q in queues], ctx.links(items))
    return ctx.respond_page(body, page, total)


async def get_queue(ctx: Ctx) -> Response:
    queue, listeners = await ctx.store.queues.get_with_listeners(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)
    return ctx.respond(_envelope(ctx, queue, listeners))


async def update_queue(ctx: Ctx) -> Response:
    queue = await ctx.store.queues.get(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)
    body = await ctx.body(wire.UpdateQueue)
    schema, sid = KEEP, KEEP
    if body.schema is not UNSET:
        schema, sid = body.schema, _schema_id(body.schema)
    name = KEEP if body.name is UNSET else body.name
    retention = KEEP if body.retention_seconds is UNSET else body.retention_seconds
    updated = await ctx.store.queues.update(ctx.org_id, queue.id, name, schema, sid, retention)
    return ctx.respond(await _queue_out(ctx, updated))


async def delete_queue(ctx: Ctx) -> Response:
    queue = await ctx.store.queues.get(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)
    await ctx.store.queues.delete(ctx.org_id, queue.id)
    return ctx.respond(wire.Deleted({"self": ctx.self_link()}))


async def get_schema(ctx: Ctx) -> Response:
    queue = await ctx.store.queues.get(ctx.org_id, ctx.param("queue_id"))
    if queue.schema_id is None or queue.schema_id != ctx.param("schema_id"):
        raise NotFound("This queue has no schema with this id.")
    ctx.authorize(queue.id, queue.schema_id)
    return ctx.respond(
        wire.SchemaEnvelope(queue.schema, ctx.links(queue=ctx.href("queues", queue.id)))
    )
