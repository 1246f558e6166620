"""``create_app``: the HTTP API over services the runtime made ready (``tidings.runtime``).

The app builds routing and middleware; its lifespan only enters the runtime's
context, which opens the store and starts everything else.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tidings.api import console, problems
from tidings.api.application import App
from tidings.api.context import Ctx, Services, respond
from tidings.api.gatekeeper import Gatekeeper
from tidings.api.observe import ORG_KEY, Observer
from tidings.api.openapi import build_openapi
from tidings.api.peers import ClientAddresses
from tidings.api.query import QueryReader
from tidings.api.router import RequestHandler, Router
from tidings.api.routes import ENDPOINTS, Endpoint
from tidings.api.wire import Health
from tidings.config import Settings
from tidings.metrics import CONTENT_TYPE, Metrics

# Opens the services for as long as the app runs (the runtime's, or a test's).
ServicesLifespan = Callable[[], AbstractAsyncContextManager[Services]]


class State:
    """The services while the app runs; endpoint wrappers read them per request
    (tests: ``app.state.tidings``)."""

    services: Services

    @property
    def gatekeeper(self) -> Gatekeeper:
        return self.services.gatekeeper


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


def _metrics_page(metrics: Metrics, token: str, state: State) -> RequestHandler:
    """``GET /metrics`` on the API port; ``401`` without ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def scrape(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return problems.problem(
                401,
                "Send Authorization: Bearer <TIDINGS_METRICS_TOKEN>.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        page = await metrics.page(state.services.store.db)
        return Response(page, media_type=CONTENT_TYPE)

    return scrape


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


@lru_cache(maxsize=1)
def _openapi() -> dict[str, Any]:
    """The document is the endpoint table's, the same for every app: built once."""
    return build_openapi(ENDPOINTS)


def create_app(
    settings: Settings, services: ServicesLifespan, metrics: Metrics | None = None
) -> App:
    """The API app; its lifespan holds ``services()`` open while it serves."""
    state = State()

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with services() as ready:
            state.services = ready
            yield

    router = Router()
    _meta_routes(router, state, _openapi())
    for ep in ENDPOINTS:
        router.add(ep.method, ep.path, _endpoint(ep, state))
    console.add_routes(router)
    if metrics is not None and settings.metrics_token is not None:
        router.add("GET", "/metrics", _metrics_page(metrics, settings.metrics_token, state))
    app = App(
        router,
        lifespan,
        Observer(metrics, ClientAddresses(settings.trusted_proxies)),
        max_in_progress=settings.max_concurrent_requests,
        max_body_bytes=settings.max_body_bytes,
    )
    app.state.tidings = state
    return app
