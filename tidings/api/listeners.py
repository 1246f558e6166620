"""Handlers for listeners (and their redeliveries)."""

from __future__ import annotations

from typing import Any, TypeVar

from msgspec import UNSET
from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.domain.filters import compile_filter
from tidings.domain.headers import check_headers
from tidings.domain.models import Listener
from tidings.signing import new_keys
from tidings.storage.listeners import OPTIONS

Shown = TypeVar("Shown", bound=wire.ListenerOut)


def listener_out(
    listener: Listener,
    default_max_in_flight: int,
    now: int,
    shape: type[Shown],
    **extra: Any,
) -> Shown:
    """The listener in ``shape``; ``extra``: the fields a ``ListenerDetail`` adds."""
    options = listener.options
    # The previous key signs until then; shown as null once that has passed.
    previous_until = options.previous_secret_expires_at
    if previous_until is not None and previous_until <= now:
        previous_until = None
    return shape(
        id=listener.id,
        name=listener.name,
        queue_id=listener.queue_id,
        notify_url=listener.notify_url,
        liveness_url=listener.liveness_url,
        liveness=wire.LivenessOut(
            listener.liveness.state,
            listener.liveness.success_count,
            listener.liveness.failure_count,
        ),
        messages=wire.ListenerMessagesOut(
            acknowledged_count=listener.acknowledged_count,
            missed=list(listener.missed),
            missed_count=listener.missed_count,
        ),
        status=listener.status,
        health=_health_out(listener),
        max_in_flight=options.max_in_flight or default_max_in_flight,
        rate_limit=options.rate_limit,
        ordered=options.ordered,
        filter=options.filter,
        signature_scheme=options.signature_scheme,
        previous_secret_expires_at=previous_until,
        **extra,
    )


def _health_out(listener: Listener) -> wire.HealthOut:
    h = listener.health
    return wire.HealthOut(
        state=h.state,
        consecutive_failures=h.consecutive_failures,
        last_success_at=h.last_success_at,
        last_failure_at=h.last_failure_at,
        failing_since=h.failing_since,
        disabled_reason=h.disabled_reason,
    )


def _options(body: Any) -> dict[str, Any]:
    """The SPEC §10 options a create or update gives, checked (400 when malformed)."""
    given: dict[str, Any] = {}
    for name in OPTIONS:
        value = getattr(body, name, UNSET)
        if value is not UNSET:
            given[name] = value
    if "headers" in given:
        check_headers(given["headers"])
    if "filter" in given:
        compile_filter(given["filter"])
    return given


def _href(ctx: Ctx, listener: Listener) -> wire.Link:
    return ctx.href("queues", listener.queue_id, "listeners", listener.id)


async def _check_urls(ctx: Ctx, body: Any) -> None:
    for field in ("notify_url", "liveness_url"):
        url = getattr(body, field)
        if url is not UNSET:
            await ctx.services.destinations.check_at_registration(url, field=field)


async def create_listener(ctx: Ctx) -> Response:
    queue = await ctx.store.queues.get(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)
    body = await ctx.body(wire.CreateListener)
    await _check_urls(ctx, body)
    listener = await ctx.store.listeners.create(
        ctx.org_id,
        queue.id,
        body.name,
        body.notify_url,
        body.liveness_url,
        new_keys(body.signature_scheme),
        _options(body),
    )
    return ctx.respond(
        wire.CreatedListenerEnvelope(
            wire.CreatedListener(listener.id, listener.name, listener.secret),
            {"self": _href(ctx, listener), "queue": ctx.href("queues", queue.id)},
        )
    )


async def list_queue_listeners(ctx: Ctx) -> Response:
    queue = await ctx.store.queues.get(ctx.org_id, ctx.param("queue_id"))
    ctx.authorize(queue.id)
    return await _list(ctx, queue.id)


async def list_all_listeners(ctx: Ctx) -> Response:
    ctx.authorize()
    return await _list(ctx, None)


async def _list(ctx: Ctx, queue_id: str | None) -> Response:
    page = ctx.page()
    # The list of all listeners shows a key limited to some ids only those (or those of
    # its queues); a queue's own list was authorized on the queue as a whole.
    within = ctx.visible() if queue_id is None else None
    listeners, total = await ctx.store.listeners.list_page(ctx.org_id, queue_id, page, within)
    items = [(ls.name, ls.id, _href(ctx, ls)) for ls in listeners]
    default = ctx.services.settings.max_in_flight_per_listener
    body = wire.ListenersEnvelope(
        [listener_out(ls, default, ctx.clock.now_ms(), wire.ListenerOut) for ls in listeners],
        ctx.links(items),
    )
    return ctx.respond_page(body, page, total)


async def _find(ctx: Ctx) -> Listener:
    listener = await ctx.store.listeners.get(
        ctx.org_id, ctx.param("queue_id"), ctx.param("listener_id")
    )
    ctx.authorize(listener.queue_id, listener.id)
    return listener


async def get_listener(ctx: Ctx) -> Response:
    listener = await _find(ctx)
    # The secret signs deliveries and headers may carry a receiver's credentials:
    # only a key that may change the listener sees them.
    writer = ctx.may("write", listener.queue_id, listener.id)
    shown = listener_out(
        listener,
        ctx.services.settings.max_in_flight_per_listener,
        ctx.clock.now_ms(),
        wire.ListenerDetail,
        secret=listener.secret if writer else None,
        headers=listener.options.headers if writer else UNSET,
    )
    return ctx.respond(
        wire.ListenerEnvelope(shown, ctx.links(queue=ctx.href("queues", listener.queue_id)))
    )


async def update_listener(ctx: Ctx) -> Response:
    listener = await _find(ctx)
    body = await ctx.body(wire.UpdateListener)
    await _check_urls(ctx, body)
    changes = {
        field: getattr(body, field)
        for field in ("name", "notify_url", "liveness_url", "status")
        if getattr(body, field) is not UNSET
    }
    changes.update(_options(body))
    updated = await ctx.store.listeners.update(ctx.org_id, listener.queue_id, listener.id, changes)
    if changes.get("status") == "enabled":
        # Everything it is owed is due at once (a separate transaction: deliveries are
        # locked before listeners, storage.locks).
        await ctx.store.deliveries.wake_listener(updated.id, ctx.clock.now_ms())
    scheme = body.signature_scheme
    if scheme is not UNSET and scheme != updated.options.signature_scheme:
        # SPEC §10: changeable with PUT. A new scheme needs a new key: rotated as
        # POST .../secret with its default grace, so receivers keep verifying meanwhile.
        updated = await ctx.store.listeners.rotate(
            ctx.org_id, updated.queue_id, updated.id, new_keys(scheme), wire.DEFAULT_GRACE_S * 1000
        )
    return ctx.respond(
        wire.UpdatedListenerEnvelope(
            wire.Summary(updated.id, updated.name),
            ctx.links(queue=ctx.href("queues", updated.queue_id)),
        )
    )


async def delete_listener(ctx: Ctx) -> Response:
    listener = await _find(ctx)
    await ctx.store.listeners.delete(ctx.org_id, listener.queue_id, listener.id)
    return ctx.respond(wire.Deleted({"self": ctx.self_link()}))


async def rotate_secret(ctx: Ctx) -> Response:
    listener = await _find(ctx)
    body = await ctx.body(wire.RotateSecret)
    scheme = listener.options.signature_scheme
    if body.signature_scheme is not UNSET:
        scheme = body.signature_scheme
    rotated = await ctx.store.listeners.rotate(
        ctx.org_id, listener.queue_id, listener.id, new_keys(scheme), body.grace_seconds * 1000
    )
    return ctx.respond(
        wire.RotatedListenerEnvelope(
            wire.RotatedListener(
                rotated.id, rotated.name, rotated.secret, rotated.options.signature_scheme
            ),
            ctx.links(listener=_href(ctx, rotated)),
        )
    )


async def redeliver(ctx: Ctx) -> Response:
    listener = await _find(ctx)
    body = await ctx.body(wire.CreateRedelivery)
    ids = None if body.message_ids is UNSET else body.message_ids
    scheduled = await ctx.store.deliveries.redeliver(ctx.org_id, listener.id, ids)
    return ctx.respond(
        wire.RedeliveryEnvelope(
            wire.RedeliveryOut(scheduled), ctx.links(listener=_href(ctx, listener))
        )
    )
