"""Handlers for usage events and message stats (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.domain.errors import BadRequest, Violation
from tidings.domain.events import ALL_KINDS, STATS_WINDOWS, Cursor, Event, Ref


@dataclass(frozen=True, slots=True)
class EventsQuery:
    kind: str | None  # None: all kinds
    limit: int
    after: Cursor | None


def _bad(name: str, message: str) -> BadRequest:
    return BadRequest(f"Query parameter {name} {message}.", [Violation(f"$.query.{name}", message)])


def parse_events_query(ctx: Ctx) -> EventsQuery:
    """The checked parameters (api/query.py), plus a refusal of page and per_page."""
    for name in ("page", "per_page"):
        if name in ctx.request.query_params:
            # A client paging this way would get the first page forever: say so.
            raise _bad(name, "is not supported here; page with startAfter and startAfterId")
    given = ctx.query
    kind = None if given["events"] == ALL_KINDS else given["events"]
    after = None
    if given["startAfter"] is not None:
        after = Cursor(given["startAfter"], given["startAfterId"])
    return EventsQuery(kind, given["limit"], after)


def _summary(ref: Ref | None) -> wire.Summary | None:
    return None if ref is None else wire.Summary(ref.id, ref.name)


def event_out(event: Event) -> wire.EventOut:
    return wire.EventOut(
        id=event.id,
        type=event.type,
        stored_at=event.stored_at,
        client=wire.ClientRef(event.org_id),
        api_key=_summary(event.api_key),
        queue=_summary(event.queue),
        listener=_summary(event.listener),
        message=_summary(event.message),
        reason=event.reason,
    )


async def list_events(ctx: Ctx) -> Response:
    ctx.authorize()
    query = parse_events_query(ctx)
    retention_ms = int(ctx.services.settings.event_retention_s * 1000)
    since_ms = ctx.clock.now_ms() - retention_ms
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


async def message_series(ctx: Ctx) -> Response:
    ctx.authorize_all()
    start, step_ms, counts = await ctx.store.events.series(ctx.org_id, int(ctx.query["hours"]))
    return ctx.respond(wire.SeriesEnvelope(wire.SeriesOut(start, step_ms, counts), ctx.links()))
