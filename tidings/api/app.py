"""``create_app(settings)``: the ASGI application; its lifespan owns the store and engine."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from starlette.requests import Request
from starlette.responses import Response

from tidings.api import console, problems, scrape
from tidings.api.application import App
from tidings.api.context import Ctx, Services, respond
from tidings.api.gatekeeper import Gatekeeper
from tidings.api.middleware import ConventionsMiddleware
from tidings.api.observe import ORG_KEY, ObserveMiddleware
from tidings.api.openapi import build_openapi
from tidings.api.peers import ClientAddresses
from tidings.api.query import QueryReader
from tidings.api.router import RequestHandler, Router
from tidings.api.routes import ENDPOINTS, Endpoint
from tidings.api.shedding import SheddingMiddleware
from tidings.api.wire import Health
from tidings.bootstrap import bootstrap
from tidings.config import Settings
from tidings.delivery.engine import Engine
from tidings.delivery.sender import Sender
from tidings.destinations import DestinationPolicy
from tidings.metrics import Metrics
from tidings.storage.database import Database
from tidings.storage.retention import EventRetention
from tidings.storage.store import Store

log = logging.getLogger("tidings")


class State:
    """What the lifespan opens; endpoint wrappers close over it (tests: ``app.state.tidings``)."""

    services: Services
    gatekeeper: Gatekeeper

    @property
    def db(self) -> Database:
        return self.services.store.db


def start_engine(
    store: Store, settings: Settings, policy: DestinationPolicy, metrics: Metrics | None = None
) -> Engine:
    return Engine(
        store,
        settings,
        Sender(policy, settings.max_in_flight),
        clock=store.clock,
        on_attempt=metrics.observe_attempt if metrics else None,
    )


def _endpoint(ep: Endpoint, state: State) -> RequestHandler:
    reader = QueryReader(ep.params)

    async def run(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            admission = await state.gatekeeper.admit(request)
            headers = admission.headers
            request.scope[ORG_KEY] = admission.principal.org_id  # for the access log
            ctx = Ctx(
                request,
                state.services,
                admission.principal,
                ep.resource,
                ep.access,
                reader.read(request),
            )
            response = await ep.handler(ctx)
        except Exception as exc:
            response = problems.from_error(exc)
        # Every authenticated answer carries the rate headers, errors included (SPEC §1).
        if headers:
            response.headers.update(headers)
        return response

    run.__name__ = ep.handler.__name__
    return run


def _meta_routes(router: Router, state: State, openapi: dict[str, Any]) -> None:
    async def health(request: Request) -> Response:
        try:
            await state.services.store.ping()
        except Exception as exc:
            return problems.from_error(exc)
        return respond(request, Health("ok"))

    async def openapi_json(request: Request) -> Response:
        return respond(request, openapi)

    router.add("GET", "/health", health)
    router.add("GET", "/openapi.json", openapi_json)


def _endpoints(router: Router, state: State) -> None:
    for ep in ENDPOINTS:
        router.add(ep.method, ep.path, _endpoint(ep, state))


async def _observe(
    metrics: Metrics | None, store: Store, settings: Settings
) -> web.AppRunner | None:
    """Hook metrics into ingest; start the separate metrics listener if one is set."""
    if metrics is None:
        return None
    store.ingest.on_commit = metrics.observe_commit
    if settings.metrics_address is None:
        return None
    return await scrape.start_listener(metrics, settings.metrics_address, store.db)


def create_app(settings: Settings, *, store: Store | None = None, engine: bool = True) -> App:
    """Build the app; its lifespan runs the delivery engine unless ``engine=False``.

    Pass ``store`` to share an already open one (tests)."""
    state = State()
    metrics = Metrics() if settings.metrics_enabled else None

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        own = store is None
        opened = store or await Store.open(settings.database_url)
        created = await bootstrap(opened, settings.bootstrap_api_key)
        if created is not None:
            print(
                f"Created organization {created.organization.name!r} with operator API key:\n"
                f"  {created.key}\nIt is shown only this once; keep it safe.",
                file=sys.stdout,  # program output, not the log stream (stderr)
                flush=True,
            )
        state.gatekeeper = Gatekeeper(opened, settings, opened.clock)
        state.services = Services(
            settings,
            opened,
            DestinationPolicy(settings.allowed_networks),
            state.gatekeeper.auth,
            opened.clock,
        )
        state.gatekeeper.start()
        listener = await _observe(metrics, opened, settings)
        running = (
            start_engine(opened, settings, state.services.destinations, metrics) if engine else None
        )
        if running is not None:
            await running.start()
        retention = EventRetention(
            opened.events, int(settings.event_retention_s * 1000), clock=opened.clock
        )
        retention.start()
        try:
            yield
        finally:
            await state.gatekeeper.stop()
            await retention.stop()
            if running is not None:
                await running.stop()
            if listener is not None:
                await listener.cleanup()
            if own:
                await opened.close()

    router = Router()
    _meta_routes(router, state, build_openapi(ENDPOINTS))
    _endpoints(router, state)
    console.add_routes(router)
    if metrics is not None and settings.metrics_token is not None:
        router.add(
            "GET", "/metrics", scrape.token_page(metrics, settings.metrics_token, lambda: state.db)
        )
    app = App(
        router,
        lifespan,
        [
            lambda inner: ObserveMiddleware(
                inner, metrics=metrics, addresses=ClientAddresses(settings.trusted_proxies)
            ),
            lambda inner: SheddingMiddleware(
                inner, max_in_progress=settings.max_concurrent_requests
            ),
            lambda inner: ConventionsMiddleware(inner, max_body_bytes=settings.max_body_bytes),
        ],
    )
    app.state.tidings = state
    return app
