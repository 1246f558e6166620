"""Handlers for API keys (SPEC §2, §3): the full key once, then only its first characters."""

from __future__ import annotations

from msgspec import UNSET
from starlette.responses import Response

from tidings.api import wire
from tidings.api.context import Ctx
from tidings.bootstrap import new_api_key
from tidings.domain.errors import Invalid, Violation
from tidings.domain.models import ApiKey, Scope
from tidings.domain.scopes import PROTECTED, default_scopes
from tidings.storage.orgs import KEEP


def api_key_out(key: ApiKey) -> wire.ApiKeyOut:
    return wire.ApiKeyOut(
        id=key.id,
        name=key.name or None,  # stored as "" when the client gave none
        status=key.status,
        scopes=[wire.ScopeOut(s.resource, s.access, list(s.targets)) for s in key.scopes],
        created_at=key.created_at,
        updated_at=key.updated_at,
        last_used_at=key.last_used_at,
        key=key.prefix,
    )


def _scopes(given: list[wire.ScopeIn]) -> tuple[Scope, ...]:
    """Refuse protected resources (422): only the CLI and bootstrap grant those."""
    refused = [
        Violation(f"$.scopes[{i}].resource", f"{s.resource} cannot be granted through the API")
        for i, s in enumerate(given)
        if s.resource in PROTECTED
    ]
    if refused:
        raise Invalid(
            "Scopes for " + ", ".join(sorted(PROTECTED)) + " are held only by operator keys"
            " made with the tidings CLI.",
            refused,
        )
    return tuple(Scope(s.resource, s.access, tuple(s.targets)) for s in given)


def _href(ctx: Ctx, key: ApiKey) -> wire.Link:
    return ctx.href("api_keys", key.id)


async def create_api_key(ctx: Ctx) -> Response:
    ctx.authorize()
    body = await ctx.body(wire.CreateApiKey)
    scopes = default_scopes() if body.scopes is None else _scopes(body.scopes)
    secret = new_api_key()
    name = "" if body.name is UNSET else body.name
    key = await ctx.store.api_keys.create(ctx.org_id, secret, name, body.status, scopes)
    return ctx.respond(wire.CreatedApiKeyEnvelope(secret, {"self": _href(ctx, key)}))


async def list_api_keys(ctx: Ctx) -> Response:
    ctx.authorize()
    page = ctx.page()
    keys, total = await ctx.store.api_keys.list_page(ctx.org_id, page, ctx.visible())
    items = [(k.name, k.id, _href(ctx, k)) for k in keys]
    body = wire.ApiKeysEnvelope([api_key_out(k) for k in keys], ctx.links(items))
    return ctx.respond_page(body, page, total)


async def _find(ctx: Ctx) -> ApiKey:
    key = await ctx.store.api_keys.get(ctx.org_id, ctx.param("api_key_id"))
    ctx.authorize(key.id)
    return key


async def get_api_key(ctx: Ctx) -> Response:
    key = await _find(ctx)
    return ctx.respond(wire.ApiKeyEnvelope(api_key_out(key), {"self": _href(ctx, key)}))


async def update_api_key(ctx: Ctx) -> Response:
    key = await _find(ctx)
    body = await ctx.body(wire.UpdateApiKey)
    scopes = KEEP if body.scopes is UNSET else _scopes(body.scopes)
    updated = await ctx.store.api_keys.update(
        ctx.org_id,
        key.id,
        name=KEEP if body.name is UNSET else body.name,
        status=KEEP if body.status is UNSET else body.status,
        scopes=scopes,
    )
    return ctx.respond(wire.ApiKeyEnvelope(api_key_out(updated), {"self": _href(ctx, updated)}))


async def delete_api_key(ctx: Ctx) -> Response:
    key = await _find(ctx)
    await ctx.store.api_keys.delete(ctx.org_id, key.id)
    return ctx.respond(wire.Deleted({"self": ctx.self_link()}))
