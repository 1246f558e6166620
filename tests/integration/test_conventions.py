"""SPEC §1 conventions: paths, JSON only, pretty, errors, pagination, auth basics."""

from __future__ import annotations

import httpx

from tests.conftest import Running


async def test_health_and_openapi_need_no_key(server: Running) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        assert (await anonymous.get("/health")).json() == {"status": "ok"}
        assert (await anonymous.get("/v1/health")).status_code == 200
        spec = (await anonymous.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.")
        assert "post" in spec["paths"]["/v1/queues/{queue_id}/messages"]
        assert "get" in spec["paths"]["/queues/{queue_id}/listeners/{listener_id}"]
        docs = await anonymous.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_openapi_lists_every_routed_endpoint(server: Running) -> None:
    from tidings.api.routes import ENDPOINTS

    spec = (await server.call("GET", "/openapi.json")).json()
    for ep in ENDPOINTS:
        for prefix in ("/v1", ""):
            assert ep.method.lower() in spec["paths"][prefix + ep.path], (ep.method, ep.path)


async def test_missing_or_wrong_key_is_401(server: Running) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        r = await anonymous.get("/v1/queues")
        assert r.status_code == 401
        assert r.json()["title"] == "Unauthorized"
        r = await anonymous.get("/v1/queues", headers={"X-API-KEY": "wrong-key"})
        assert r.status_code == 401


async def test_unknown_path_404_and_wrong_method_405_with_allow(server: Running) -> None:
    r = await server.call("GET", "/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["title"] == "Not Found"
    r = await server.call("PATCH", "/v1/queues")
    assert r.status_code == 405
    assert r.json() == {"title": "Method Not Allowed", "status": 405, "detail": r.json()["detail"]}
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


async def test_json_only_415_and_406(server: Running) -> None:
    r = await server.call(
        "POST",
        "/queues",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert r.json()["title"] == "Unsupported Media Type"
    r = await server.call(
        "POST",
        "/queues",
        content=b'{"name": "x"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200
    r = await server.call("GET", "/queues", headers={"Accept": "text/html"})
    assert r.status_code == 406
    assert r.json()["title"] == "Not Acceptable"
    r = await server.call("GET", "/queues", headers={"Accept": "text/html, */*;q=0.1"})
    assert r.status_code == 200
    # SPEC §1: JSON or */* admitted, with a quality above 0 from the most specific range
    # (RFC 9110); /health negotiates like every endpoint.
    for accept, status in [
        ("application/json", 200),
        ("Application/JSON; charset=utf-8", 200),
        ("application/*", 200),
        ("*/*", 200),
        ("", 200),
        ("text/html;q=0.9, application/json;q=0.1", 200),
        ("application/json;q=0, */*", 406),
        ("application/json;q=0.0", 406),
        ("*/*;q=0", 406),
        ("application/*;q=0, */*", 406),
        ("application/json;q=0.5, application/*;q=0", 200),
        ("application/problem+json", 406),
        ("image/png", 406),
    ]:
        for path in ("/queues", "/v1/queues", "/health", "/v1/health"):
            r = await server.call("GET", path, headers={"Accept": accept})
            assert r.status_code == status, (path, accept, r.text)
            assert r.headers["content-type"] == "application/json"


async def test_body_over_limit_is_413(server: Running) -> None:
    big = b'{"name": "' + b"x" * (server.settings.max_body_bytes + 10) + b'"}'
    r = await server.call(
        "POST", "/queues", content=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["title"] == "Payload Too Large"

    async def chunks():  # no Content-Length: the cap applies while reading
        for _ in range(40):
            yield b"x" * 10_000

    r = await server.call(
        "POST", "/queues", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


async def test_pretty_indents_the_same_body(server: Running) -> None:
    await server.call("POST", "/queues", json={"name": "a"})
    plain = await server.call("GET", "/queues")
    pretty = await server.call("GET", "/queues?pretty=true")
    assert pretty.json() == plain.json()
    assert "\n  " in pretty.text and "\n" not in plain.text


async def test_pagination_links_and_total(server: Running) -> None:
    for i in range(5):
        await server.call("POST", "/v1/queues", json={"name": f"q{i}"})
    r = await server.call("GET", "/v1/queues?page=2&per_page=2")
    assert [q["name"] for q in r.json()["queues"]] == ["q2", "q3"]
    assert r.headers["X-Total-Count"] == "5"
    links = {part.split('rel="')[1].rstrip('"'): part for part in r.headers["Link"].split(", ")}
    assert set(links) == {"first", "last", "prev", "next"}
    assert "page=3" in links["last"] and "page=1" in links["first"]
    assert links["next"].startswith(f"<{server.base_url}/v1/queues?")
    last = await server.call("GET", "/v1/queues?page=3&per_page=2")
    assert "next" not in last.headers["Link"]
    past = await server.call("GET", "/v1/queues?page=9&per_page=2")
    assert past.status_code == 200 and past.json()["queues"] == []
    first = await server.call("GET", "/v1/queues")
    assert 'rel="prev"' not in first.headers["Link"]
    for bad in ("page=0", "page=x", "per_page=0", "per_page=101", "per_page=-1"):
        r = await server.call("GET", f"/v1/queues?{bad}")
        assert r.status_code == 400, bad


async def test_routing_edges(server: Running) -> None:
    """HEAD answers a GET's headers without a body; a trailing slash, an empty id
    segment or a path under an unknown prefix is 404, never a redirect or a 500."""
    got = await server.call("GET", "/v1/queues")
    head = await server.call("HEAD", "/v1/queues")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    for path in ("/v1/queues/", "/queues//listeners", "/v2/queues", "/v1", "/v1/v1/queues"):
        r = await server.call("GET", path)
        assert r.status_code == 404, path
        assert r.json() == {"title": "Not Found", "status": 404, "detail": "No such path."}
    r = await server.call("OPTIONS", "/queues/abc/messages")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, POST"
