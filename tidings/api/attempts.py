"""Handlers for the attempt log (SPEC §11): a message's and a listener's attempts."""

from __future__ import annotations

from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.domain.models import Attempt


def attempt_out(a: Attempt) -> wire.AttemptOut:
    return wire.AttemptOut(
        id=a.id,
        message_id=a.message_id,
        listener_id=a.listener_id,
        attempt=a.attempt,
        started_at=a.started_at,
        duration_ms=a.duration_ms,
        outcome=a.outcome,
        status=a.status,
        error=a.error,
        response_body=a.response_body,
    )


async def message_attempts(ctx: Ctx) -> Response:
    # Scopes as for reading the message (SPEC §11); 404 first for unknown ids.
    message = await ctx.store.messages.get(
        ctx.org_id, ctx.param("queue_id"), ctx.param("message_id")
    )
    ctx.authorize(message.queue_id, message.id)
    page = ctx.page()
    found, total = await ctx.store.attempts.list_page(ctx.org_id, page, message_id=message.id)
    links = ctx.links(message=ctx.href("queues", message.queue_id, "messages", message.id))
    return ctx.respond_page(
        wire.AttemptsEnvelope([attempt_out(a) for a in found], links), page, total
    )


async def listener_attempts(ctx: Ctx) -> Response:
    listener = await ctx.store.listeners.get(
        ctx.org_id, ctx.param("queue_id"), ctx.param("listener_id")
    )
    ctx.authorize(listener.queue_id, listener.id)
    page = ctx.page()
    found, total = await ctx.store.attempts.list_page(ctx.org_id, page, listener_id=listener.id)
    links = ctx.links(listener=ctx.href("queues", listener.queue_id, "listeners", listener.id))
    return ctx.respond_page(
        wire.AttemptsEnvelope([attempt_out(a) for a in found], links), page, total
    )
