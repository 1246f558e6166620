"""Handlers for usage events and message stats (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.domain.errors import BadRequest, Violation
from tidings.domain.events import ALL_KINDS, KINDS, STATS_WINDOWS, Cursor, Event, Ref

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ID_CHARS = 64
_KIND_CHOICES = (ALL_KINDS, *KINDS)


@dataclass(frozen=True, slots=True)
class EventsQuery:
    kind: str | None  # None: all kinds
    limit: int
    after: Cursor | None


def _bad(name: str, message: str) -> BadRequest:
    return BadRequest(f"Query parameter {name} {message}.", [Violation(f"$.query.{name}", message)])


def _kind(ctx: Ctx) -> str | None:
    kind = ctx.request.query_params.get("events", ALL_KINDS)
    if kind not in _KIND_CHOICES:
        raise _bad("events", "must be one of " + ", ".join(_KIND_CHOICES))
    return None if kind == ALL_KINDS else kind


def _cursor(ctx: Ctx) -> Cursor | None:
    params = ctx.request.query_params
    if "startAfter" not in params and "startAfterId" not in params:
        return None
    if "startAfter" not in params or "startAfterId" not in params:
        raise BadRequest(
            "Query parameters startAfter and startAfterId go together: pass the"
            " stored_at and id of the last event you have.",
            [Violation("$.query.startAfter", "startAfter and startAfterId go together")],
        )
    stored_at = ctx.query_int("startAfter", 0, 0, None)
    event_id = params["startAfterId"]
    if not 1 <= len(event_id) <= MAX_ID_CHARS:
        raise _bad("startAfterId", f"must be an event id (1..{MAX_ID_CHARS} characters)")
    return Cursor(stored_at, event_id)


def parse_events_query(ctx: Ctx) -> EventsQuery:
    for name in ("page", "per_page"):
        if name in ctx.request.query_params:
            # A client paging this way would get the first page forever: say so.
            raise _bad(name, "is not supported here; page with startAfter and startAfterId")
    return EventsQuery(
        _kind(ctx), ctx.query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), _cursor(ctx)
    )


def _summary(ref: Ref | None) -> wire.Summary | None:
    return None if ref is None else wire.Summary(ref.id, ref.name)


def event_out(event: Event) -> wire.EventOut:
    return wire.EventOut(
        id=event.id,
        type=event.type.value,
        stored_at=event.stored_at,
        client=wire.ClientRef(event.org_id),
        api_key=_summary(event.api_key),
        queue=_summary(event.queue),
        listener=_summary(event.listener),
        message=_summary(event.message),
    )


async def list_events(ctx: Ctx) -> Response:
    ctx.authorize()
    query = parse_events_query(ctx)
    retention_ms = int(ctx.services.settings.event_retention_s * 1000)
    since_ms = ctx.store.clock.now_ms() - retention_ms
    # A key limited to some ids sees the events that name one of them.
    events = await ctx.store.events.read(
        ctx.org_id, query.kind, query.after, since_ms, query.limit, ctx.visible()
    )
    links = ctx.links()
    if len(events) == query.limit:  # there may be more: the next page starts after the last
        last = events[-1]
        url = ctx.request.url.remove_query_params("pretty").include_query_params(
            startAfter=last.stored_at, startAfterId=last.id
        )
        links["next"] = wire.Link(str(url))
    return ctx.respond(wire.EventsEnvelope([event_out(e) for e in events], links))


async def message_stats(ctx: Ctx) -> Response:
    # Counts cover the whole organization and cannot be cut down to some ids.
    ctx.authorize_all()
    stats = await ctx.store.events.stats(ctx.org_id)
    usage = wire.AggregatedUsage(
        **{window: wire.EventCounts(**stats[window]) for window in STATS_WINDOWS}
    )
    return ctx.respond(wire.StatsEnvelope(usage, ctx.links()))
