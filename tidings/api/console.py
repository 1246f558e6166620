"""The web console (``/console``) and the interactive API docs (``/docs``): static
files shipped inside the package (``tidings/web/``), served without a key.

Each page is an ``index.html`` whose assets live under ``<page>/assets/<version>/``,
where the version is a hash of every file of that page: asset answers can then be
cached for a year (``immutable``) and a new release is fetched at once. Only files
read at start are servable, looked up by exact relative path, so no request can
reach anything else (no path traversal by construction). Every answer carries a
Content-Security-Policy that allows this origin only and no inline script or style;
the console talks to the API with the key a person signs in with, like any client.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable

from starlette.requests import Request
from starlette.responses import Response

from tidings.api import problems
from tidings.api.router import Router

_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "json": "application/json",
    "svg": "image/svg+xml",
    "txt": "text/plain; charset=utf-8",
}
_COMPRESSIBLE = ("text/", "application/json", "image/svg+xml")
_PLACEHOLDER = b"{{assets}}"  # in index.html: the assets' folder, relative to the page
_ONE_YEAR = "public, max-age=31536000, immutable"

# Nothing but this origin; no inline script or style, no eval, no framing. The
# console may use Trusted Types as well (it never writes HTML from strings).
_CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
)
# Swagger UI: its stylesheet draws icons from data: URIs (no request leaves), and
# "Try it out" calls this origin's API.
_DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@dataclass(slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    _gzipped: bytes | None = field(default=None, repr=False)

    @property
    def compressible(self) -> bool:
        return len(self.body) > 1024 and self.content_type.startswith(_COMPRESSIBLE)

    def gzipped(self) -> bytes:
        if self._gzipped is None:  # made on first demand, then kept (files are few)
            self._gzipped = gzip.compress(self.body, compresslevel=9, mtime=0)
        return self._gzipped


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif not entry.name.startswith("."):
            found[prefix + entry.name] = entry.read_bytes()
    return found


def _asset(body: bytes, name: str) -> Asset:
    content_type = _TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")
    return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@dataclass(frozen=True, slots=True)
class Site:
    """One page and its assets: what ``tidings/web/<folder>`` holds."""

    index: Asset
    assets: dict[str, Asset]
    version: str
    csp: str

    @staticmethod
    @functools.cache  # the files never change while the process runs
    def load(folder: str, csp: str) -> Site:
        files = _walk(resources.files("tidings") / "web" / folder)
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        version = digest.hexdigest()[:16]
        page = files.pop("index.html").replace(_PLACEHOLDER, f"{folder}/assets/{version}".encode())
        assets = {name: _asset(body, name) for name, body in files.items()}
        return Site(_asset(page, "index.html"), assets, version, csp)


def _guarded(csp: str, cache: str) -> dict[str, str]:
    """The headers of every answer of a page's routes, its 404s included."""
    return {
        "Cache-Control": cache,
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _answer(request: Request, asset: Asset, csp: str, cache: str) -> Response:
    headers = _guarded(csp, cache)
    body, etag = asset.body, asset.etag
    if asset.compressible:
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("accept-encoding", ""):
            body, etag = asset.gzipped(), etag[:-1] + '-gz"'
            headers["Content-Encoding"] = "gzip"
    headers["ETag"] = etag
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type=asset.content_type)


def _routes(router: Router, folder: str, csp: str) -> None:
    page = "/" + folder

    async def index(request: Request) -> Response:
        site = Site.load(folder, csp)
        return _answer(request, site.index, site.csp, "no-cache")

    async def asset(request: Request) -> Response:
        site = Site.load(folder, csp)
        params = request.path_params
        name = "/".join(params[p] for p in ("first", "second") if p in params)
        found = site.assets.get(name)
        if params["version"] != site.version or found is None:
            return problems.problem(
                404,
                "No such file (a reload of the page fetches new ones).",
                headers=_guarded(site.csp, "no-store"),
            )
        return _answer(request, found, site.csp, _ONE_YEAR)

    router.add("GET", page, index)
    # Two levels are enough: a file or one in a folder (vendor/).
    router.add("GET", page + "/assets/{version}/{first}", asset)
    router.add("GET", page + "/assets/{version}/{first}/{second}", asset)


def add_routes(router: Router) -> None:
    """``GET /console`` and ``GET /docs`` with their assets (and the same under ``/v1``)."""
    _routes(router, "console", _CONSOLE_CSP)
    _routes(router, "docs", _DOCS_CSP)
