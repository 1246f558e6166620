"""Every route answers with and without the /v1 prefix, by the same handlers (SPEC §1):
what lets the contract tests fuzz /v1 only."""

from __future__ import annotations

import re

from tidings.api.router import Router
from tidings.api.routes import ENDPOINTS


async def _handler(request: object) -> None:  # never called: only its identity counts
    raise AssertionError


def test_both_prefixes_reach_one_route() -> None:
    router = Router()
    for ep in ENDPOINTS:
        router.add(ep.method, ep.path, _handler)
    for ep in ENDPOINTS:
        path = re.sub(r"\{[^}]+\}", "x1", ep.path)
        bare, prefixed = router.match(path), router.match("/v1" + path)
        assert bare is not None and prefixed is not None, ep.path
        assert prefixed.route is bare.route and bare.route.template == ep.path
        assert prefixed.params == bare.params
    assert router.match("/v1") is None and router.match("/v2/queues") is None
