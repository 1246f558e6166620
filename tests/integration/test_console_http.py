"""/console and /docs over HTTP: what is served, with which headers, and nothing else.

(No storage is involved: one SQLite server suffices. The pages themselves run in a
browser in tests/browser.)"""

from __future__ import annotations

import posixpath
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.conftest import Running, start_server
from tidings.config import Settings

WEB = Path(__file__).resolve().parents[2] / "tidings" / "web"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'tidings.db'}")
    running: Running
    async with start_server(settings, engine=False) as running:
        # What a browser sends, and no key: the pages are public, the API is not.
        headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        async with httpx.AsyncClient(base_url=running.base_url, headers=headers) as client:
            yield client


class Page(HTMLParser):
    """The tags of a page and what they load."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def loads(self) -> list[str]:
        return [str(a.get("src") or a.get("href")) for t, a in self.tags if t in ("script", "link")]


async def assets_of(site: httpx.AsyncClient, page: str) -> tuple[httpx.Response, list[str]]:
    answer = await site.get(page)
    assert answer.status_code == 200
    return answer, [u for u in Page(answer.text).loads() if not u.startswith("data:")]


def csp(answer: httpx.Response) -> dict[str, str]:
    policy = answer.headers["content-security-policy"]
    return {d.split(" ", 1)[0]: d.partition(" ")[2] for d in policy.split("; ")}


@pytest.mark.parametrize("page", ["/console", "/docs"])
async def test_the_pages_allow_this_origin_only_and_no_inline_code(
    site: httpx.AsyncClient, page: str
) -> None:
    answer, loads = await assets_of(site, page)
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = csp(answer)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-cache"  # so a new release shows at once
    tags = Page(answer.text).tags
    assert all(attrs.get("src") for tag, attrs in tags if tag == "script")  # no inline script
    assert not any(tag == "style" or "style" in attrs for tag, attrs in tags)
    # Relative, so /v1/console and a proxy's path prefix work; never another origin.
    assert loads and all(
        re.fullmatch(rf"{page[1:]}/assets/[0-9a-f]{{16}}/[\w./-]+", u) for u in loads
    )


async def test_assets_have_their_types_and_are_cached_for_good(site: httpx.AsyncClient) -> None:
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    types[".svg"] = "image/svg+xml"
    for page in ("/console", "/docs"):
        _, loads = await assets_of(site, page)
        for url in loads:
            answer = await site.get("/" + url)
            assert answer.status_code == 200, url
            assert answer.headers["content-type"] == types[Path(url).suffix], url
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert "content-security-policy" in answer.headers
            again = await site.get("/" + url, headers={"If-None-Match": answer.headers["etag"]})
            assert again.status_code == 304 and again.content == b""


async def test_every_module_the_console_imports_is_served(site: httpx.AsyncClient) -> None:
    """The import graph from app.js, followed over HTTP as a browser would."""
    _, loads = await assets_of(site, "/console")
    [entry] = [u for u in loads if u.endswith("/app.js")]
    seen, todo = set(), [entry]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        answer = await site.get("/" + url)
        assert answer.status_code == 200, url
        assert answer.headers["content-type"].startswith("text/javascript"), url
        # Static imports and dynamic ones (uPlot is loaded only by the page with charts).
        for spec in re.findall(r"""(?:from|import)\s*\(?\s*["'](\.[^"']+)["']""", answer.text):
            todo.append(posixpath.normpath(str(Path(url).parent / spec)))
    served = {u.split("/", 3)[3] for u in seen}
    assert {"app.js", "api.js", "ui.js", "vendor/preact.mjs", "vendor/preact-hooks.mjs"} <= served
    assert {"pages/charts.js", "vendor/uplot.mjs"} <= served


async def test_large_assets_are_compressed(site: httpx.AsyncClient) -> None:
    _, loads = await assets_of(site, "/docs")
    [bundle] = [u for u in loads if u.endswith("swagger-ui-bundle.js")]
    plain = await site.get("/" + bundle, headers={"Accept-Encoding": "identity"})
    packed = await site.get("/" + bundle, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.headers["etag"] != plain.headers["etag"]
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    assert packed.content == plain.content  # httpx decoded it
    assert plain.content == (WEB / "docs/vendor/swagger-ui-bundle.js").read_bytes()


async def test_the_v1_prefix_serves_the_same_console(site: httpx.AsyncClient) -> None:
    answer, loads = await assets_of(site, "/v1/console")
    for url in loads:  # relative to /v1/console: under /v1/console/assets/...
        assert (await site.get("/v1/" + url)).status_code == 200
    head = await site.head("/console")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == answer.headers["content-length"]


async def test_nothing_but_the_shipped_files_can_be_reached(site: httpx.AsyncClient) -> None:
    _, loads = await assets_of(site, "/console")
    version = loads[0].split("/")[2]
    base = f"/console/assets/{version}"
    raw = [
        f"{base}/../../api/console.py",
        f"{base}/%2e%2e/%2e%2e/api/console.py",
        f"{base}/vendor/..%2f..%2fapp.js",
        f"{base}/..%2f..%2f..%2fconfig.py",
        f"{base}/%2fetc%2fpasswd",
        f"{base}/..%5c..%5cconfig.py",
        f"{base}/index.html",  # the page itself is served at /console only
        f"{base}/vendor/VENDORED.json/x",
        "/console/assets/0000000000000000/app.js",  # another release's version
        "/docs/assets/" + version + "/app.js",  # the console's version is not the docs'
    ]
    for path in raw:
        url = site.base_url.copy_with(raw_path=path.encode())
        answer = await site.get(url)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/json"
    # The asset route's own 404s carry the page's policy and headers like its files.
    for path in (f"{base}/index.html", "/console/assets/0000000000000000/app.js"):
        answer = await site.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
    assert (await site.post("/console")).status_code == 405
    served = await site.get(f"{base}/vendor/preact.mjs")
    assert served.content == (WEB / "console/vendor/preact.mjs").read_bytes()
