"""Handlers for api clients, i.e. organizations (SPEC §2, §3)."""

from __future__ import annotations

from msgspec import UNSET
from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.bootstrap import create_organization
from tidings.domain.errors import NotFound


async def create_api_client(ctx: Ctx) -> Response:
    """A new organization with its first operator key (shown this once)."""
    ctx.authorize()
    body = await ctx.body(wire.CreateApiClient)
    created = await create_organization(ctx.store, body.name)
    org = created.organization
    return ctx.respond(
        wire.CreatedApiClientEnvelope(
            wire.ApiClientOut(org.id, org.name, org.alerts_queue_id),
            created.key,
            {"self": ctx.href("api_clients", org.id)},
        )
    )


async def update_api_client(ctx: Ctx) -> Response:
    # Only the caller's own organization: any other id is answered like an unknown one.
    if ctx.param("api_client_id") != ctx.org_id:
        raise NotFound("No api client with this id.")
    ctx.authorize(ctx.org_id)
    body = await ctx.body(wire.UpdateApiClient)
    changes = {
        field: getattr(body, field)
        for field in ("name", "alerts_queue_id")
        if getattr(body, field) is not UNSET
    }
    if changes:
        org = await ctx.store.organizations.update(ctx.org_id, changes)
    else:
        org = await ctx.store.organizations.get(ctx.org_id)
    return ctx.respond(
        wire.ApiClientEnvelope(
            wire.ApiClientOut(org.id, org.name, org.alerts_queue_id), {"self": ctx.self_link()}
        )
    )
