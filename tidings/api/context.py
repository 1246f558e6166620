"""What every handler gets: the caller, the services, and helpers to read and answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tidings.api.auth import Principal
from tidings.api.gatekeeper import Gatekeeper
from tidings.api.middleware import BODY_KEY, header
from tidings.api.wire import HostileBody, Link, Links, decode
from tidings.config import Settings
from tidings.destinations import DestinationPolicy
from tidings.domain.clock import Clock
from tidings.domain.errors import BadRequest, Forbidden, NotFound, Violation
from tidings.domain.models import Page
from tidings.domain.scopes import ANY_TARGET, allows, visible_targets
from tidings.storage.store import Store

T = TypeVar("T")
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Services:
    """What the HTTP layer runs on, made ready by the runtime."""

    settings: Settings
    store: Store
    destinations: DestinationPolicy
    gatekeeper: Gatekeeper  # who may come in
    clock: Clock  # "now" for whatever a handler stamps or windows


@dataclass(slots=True)
class Ctx:
    request: Request
    services: Services
    principal: Principal
    resource: str
    access: str
    query: dict[str, Any] = field(default_factory=dict)  # the endpoint's, read by api/query.py
    _base: str | None = None

    @property
    def org_id(self) -> str:
        return self.principal.org_id

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def clock(self) -> Clock:
        return self.services.clock

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        if "\x00" in value:
            # Ids are URL-safe; PostgreSQL would refuse a NUL with an error (a 503).
            raise NotFound("No such resource.")
        return value

    def may(self, access: str, *targets: str) -> bool:
        """Whether the key has ``access`` to this endpoint's resource on one of ``targets``."""
        return allows(self.principal.scopes, self.resource, access, targets)

    def authorize(self, *targets: str) -> None:
        """403 unless the key may do this endpoint's access on one of ``targets``.

        Call it after the targets were found, so unknown ids answer 404 first.
        """
        if not self.may(self.access, *targets):
            raise Forbidden(f"This API key has no {self.access} scope for {self.resource} here.")

    def authorize_all(self) -> None:
        """403 unless the key holds ``*`` for this endpoint: for answers about every id."""
        if not allows(self.principal.scopes, self.resource, self.access, (ANY_TARGET,)):
            raise Forbidden(
                f"This API key needs {self.access} scope for {self.resource} on all targets."
            )

    def visible(self) -> list[str] | None:
        """For lists: the ids (of items or of their queues) this key may see; None = all."""
        return visible_targets(self.principal.scopes, self.resource)

    async def raw_body(self) -> bytes:
        raw: bytes | None = self.request.scope.get(BODY_KEY)
        if raw is None:
            raw = await self.request.body()
        return raw

    async def body(self, kind: type[T]) -> T:
        raw = await self.raw_body()
        try:
            value: T = decode(raw, kind)
        except msgspec.ValidationError as exc:
            # msgspec says e.g. "Expected `str`, got `int` - at `$.name`".
            message, found, at = str(exc).partition(" - at `")
            path = at.rstrip("`") if found else "$"
            raise BadRequest(
                f"The request body breaks this endpoint's schema: {message} at {path}.",
                [Violation(path, message)],
            ) from None
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise BadRequest("The request body is not valid JSON.") from None
        except RecursionError:
            raise BadRequest("The request body is nested too deeply.") from None
        except HostileBody as exc:
            raise BadRequest(str(exc)) from None
        return value

    def page(self) -> Page:
        return Page(page=self.query["page"], per_page=self.query["per_page"])

    # --- links ------------------------------------------------------------------

    @property
    def base(self) -> str:
        """Absolute base URL including the ``/v1`` prefix when the request used it."""
        if self._base is None:
            scope = self.request.scope
            prefix = "/v1" if scope["path"].startswith("/v1/") else ""
            self._base = _root_url(self.request) + prefix
        return self._base

    def href(self, *parts: str) -> Link:
        return Link(self.base + "/" + "/".join(parts))

    def self_link(self) -> Link:
        scope = self.request.scope
        path: str = scope["path"]
        # The common case without parsing a URL twice (a fifth of a GET's CPU): no
        # query, no root path, nothing in the path that Starlette's URL would escape.
        if not scope["query_string"] and not scope.get("root_path") and _plain(path):
            return Link(_root_url(self.request) + path)
        return Link(str(self.request.url.remove_query_params(["pretty"])))

    def links(
        self,
        items: Sequence[tuple[str | None, str, Link]] = (),
        self_link: Link | None = None,
        **named: Link,
    ) -> Links:
        """``self`` (this request's URL unless given) plus one link per item, keyed by
        name (by id when missing or taken)."""
        result: Links = {"self": self_link or self.self_link(), **named}
        for name, item_id, link in items:
            key = name if name and name not in result else item_id
            result[key] = link
        return result

    # --- answers ----------------------------------------------------------------

    def respond(self, body: Any, headers: dict[str, str] | None = None) -> Response:
        return respond(self.request, body, 200, headers)

    def respond_page(self, body: Any, page: Page, total: int) -> Response:
        last = max(1, -(-total // page.per_page))
        rels = {"first": 1, "last": last}
        if page.page > 1:
            rels["prev"] = min(page.page - 1, last)
        if page.page < last:
            rels["next"] = page.page + 1
        url = self.request.url
        parts = []
        for rel, number in rels.items():
            query = dict(self.request.query_params)
            query.update(page=str(number), per_page=str(page.per_page))
            parts.append(f'<{url.replace(query=urlencode(query))}>; rel="{rel}"')
        headers = {"Link": ", ".join(parts), "X-Total-Count": str(total)}
        return respond(self.request, body, 200, headers)


_ROOTS: dict[tuple[str, bytes, str], str] = {}


def _plain(path: str) -> bool:
    """Nothing in the path that Starlette's URL would escape. Three ``in`` tests, not a
    regular expression: a character class scanned by ``re`` cost ~3,700 machine
    instructions for a path of a message (``python -m bench.instructions``)."""
    return "?" not in path and "#" not in path and "\\" not in path


def _root_url(request: Request) -> str:
    """``scheme://host[/root_path]`` as Starlette's ``base_url`` spells it, cached by
    what it depends on: building it is a URL parse per request otherwise."""
    scope = request.scope
    host = header(scope["headers"], b"host") or b""
    key = (scope["scheme"], host, scope.get("root_path", ""))
    root = _ROOTS.get(key)
    if root is None:
        if len(_ROOTS) >= 256:  # the Host header is the client's: keep the cache small
            _ROOTS.clear()
        root = _ROOTS[key] = str(request.base_url).rstrip("/")
    return root


def respond(
    request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    data = _encoder.encode(body)
    query: bytes = request.scope["query_string"]
    # Else skip parsing the query. Not ``b"..." in query`` on an empty one: ``bytes``
    # first tries the operand as an integer and raises and clears a TypeError inside
    # (~1,400 machine instructions a test).
    maybe_pretty = bool(query) and (query.find(b"pretty") >= 0 or query.find(b"%") >= 0)
    if maybe_pretty and request.query_params.get("pretty") == "true":
        data = msgspec.json.format(data, indent=2)
    if headers is None and status in _PLAIN_STATUSES:
        return json_response(data, status)
    return Response(data, status_code=status, headers=headers, media_type="application/json")


_PLAIN_STATUSES = frozenset({200, 201, 202})  # with a body, hence a Content-Length
_CONTENT_TYPE = (b"content-type", b"application/json")


def json_response(data: bytes, status: int = 200) -> Response:
    """``Response(data, status, media_type="application/json")`` with the same raw
    headers in the same order, without Starlette's per-answer work (rendering the
    content, scanning the given headers, building the media type): every JSON answer
    of the API goes through here (docs/benchmarks.md, "API CPU per request")."""
    response = Response.__new__(Response)
    response.status_code = status
    response.media_type = "application/json"
    response.background = None
    response.body = data
    response.raw_headers = [(b"content-length", b"%d" % len(data)), _CONTENT_TYPE]
    return response
