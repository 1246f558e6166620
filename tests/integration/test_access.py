"""Every endpoint x every kind of caller -> the exact status (SPEC §1, §2).

The rows come from ``tidings.api.routes.ENDPOINTS``: an endpoint added without a row
here fails ``test_every_endpoint_has_a_row``, so none can be forgotten.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import BOOTSTRAP_KEY, Running, start_server
from tidings.api.routes import ENDPOINTS
from tidings.config import Settings
from tidings.domain.scopes import PROTECTED, RESOURCES

KINDS = (
    "no key",
    "wrong key",
    "disabled key",
    "read-only key",
    "write key",
    "key for another queue",
    "key of another org",
    "operator key",
)
_counter = itertools.count()


def _unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


Q = "/queues/{queue_id}"
L = Q + "/listeners/{listener_id}"
M = Q + "/messages/{message_id}"
K = "/api_keys/{api_key_id}"
C = "/api_clients/{api_client_id}"

# Statuses for the callers that hold a key of this organization or another one; the
# three without a valid key always get 401. Columns: read-only, write (the default
# scopes), limited to another queue, another organization's operator, our operator.
OK_FOR_ALL = (200, 200, 200, 200, 200)  # lists: a limited key sees a filtered list
READ = (200, 200, 403, 404, 200)  # reads of one of our resources
WRITE = (403, 200, 403, 404, 200)  # writes on one of our resources
CREATE_TOP = (403, 200, 403, 200, 200)  # creates at the top need "*"
PROTECTED_LIST = (403, 403, 403, 200, 200)  # api_keys/api_clients: operator keys only
PROTECTED_ONE = (403, 403, 403, 404, 200)
WHOLE_ORG = (200, 200, 403, 200, 200)  # answers about every id: a limited key may not

EXPECTED: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    ("POST", "/queues"): CREATE_TOP,
    ("GET", "/queues"): OK_FOR_ALL,
    ("GET", Q): READ,
    ("PUT", Q): WRITE,
    ("DELETE", Q): WRITE,
    ("GET", Q + "/schemas/{schema_id}"): READ,
    ("POST", Q + "/listeners"): WRITE,
    ("GET", Q + "/listeners"): READ,
    ("GET", "/listeners"): OK_FOR_ALL,
    ("GET", L): READ,
    ("PUT", L): WRITE,
    ("DELETE", L): WRITE,
    ("POST", L + "/redeliveries"): WRITE,
    ("POST", L + "/secret"): WRITE,
    ("GET", L + "/attempts"): READ,
    ("POST", Q + "/messages"): WRITE,
    ("POST", Q + "/messages/batch"): WRITE,
    ("GET", Q + "/messages"): READ,
    ("GET", "/messages"): OK_FOR_ALL,
    ("GET", M): READ,
    ("PUT", M): WRITE,
    ("DELETE", M): WRITE,
    ("GET", M + "/attempts"): READ,
    ("GET", "/events"): OK_FOR_ALL,
    ("GET", "/stats/messages"): WHOLE_ORG,
    ("GET", "/stats/messages/series"): WHOLE_ORG,
    ("POST", "/api_clients"): PROTECTED_LIST,
    ("PUT", C): PROTECTED_ONE,
    ("POST", "/api_keys"): PROTECTED_LIST,
    ("GET", "/api_keys"): PROTECTED_LIST,
    ("GET", K): PROTECTED_ONE,
    ("PUT", K): PROTECTED_ONE,
    ("DELETE", K): PROTECTED_ONE,
}

_LISTENER = {"notify_url": "http://127.0.0.1:9/n", "liveness_url": "http://127.0.0.1:9/l"}
BODIES: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
    ("POST", "/queues"): lambda: {"name": _unique("q")},
    ("PUT", Q): lambda: {"name": _unique("q")},
    ("POST", Q + "/listeners"): lambda: {"name": "l", **_LISTENER},
    ("PUT", L): lambda: {"name": "l2"},
    ("POST", L + "/redeliveries"): lambda: {},
    ("POST", L + "/secret"): lambda: {"grace_seconds": 0},
    ("POST", Q + "/messages"): lambda: {"data": '{"n": 1}'},
    ("POST", Q + "/messages/batch"): lambda: {"messages": [{"data": '{"n": 1}'}]},
    ("PUT", M): lambda: {"name": "m2"},
    ("POST", "/api_clients"): lambda: {"name": _unique("org")},
    ("PUT", C): lambda: {"name": _unique("org")},
    ("POST", "/api_keys"): lambda: {"name": "k"},
    ("PUT", K): lambda: {"name": "k2"},
}


def expected_status(method: str, path: str, kind: str) -> int:
    if kind in ("no key", "wrong key", "disabled key"):
        return 401
    return EXPECTED[(method, path)][KINDS.index(kind) - 3]


def test_every_endpoint_has_a_row() -> None:
    table = {(ep.method, ep.path) for ep in ENDPOINTS}
    assert table - EXPECTED.keys() == set(), "add these endpoints to EXPECTED"
    assert EXPECTED.keys() - table == set(), "these rows name no endpoint"
    for ep in ENDPOINTS:
        if ep.body is not None:
            assert (ep.method, ep.path) in BODIES, f"add a request body for {ep.method} {ep.path}"


@dataclass
class World:
    """Callers of every kind, plus fresh targets in our organization per request."""

    client: httpx.AsyncClient  # sends no key of its own
    keys: dict[str, str | None]
    org_id: str
    other_queue: str

    async def call(
        self, method: str, path: str, key: str | None, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {} if key is None else {"X-API-KEY": key}
        return await self.client.request(method, "/v1" + path, headers=headers, json=body)

    async def op(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.call(method, path, BOOTSTRAP_KEY, body)
        assert response.status_code == 200, (method, path, response.text)
        return response.json()

    async def fresh_targets(self) -> dict[str, str]:
        queue = (
            await self.op(
                "POST", "/queues", {"name": _unique("t"), "schema": {"n": {"type": "number"}}}
            )
        )["queue"]
        qid = queue["id"]
        listener = await self.op("POST", f"/queues/{qid}/listeners", {"name": "l", **_LISTENER})
        message = await self.op("POST", f"/queues/{qid}/messages", {"data": '{"n": 1}'})
        key = await self.op("POST", "/api_keys", {"name": "victim"})
        return {
            "queue_id": qid,
            "schema_id": queue["schema_id"],
            "listener_id": listener["listener"]["id"],
            "message_id": message["message"]["id"],
            "api_key_id": key["_links"]["self"]["href"].rsplit("/", 1)[1],
            "api_client_id": self.org_id,
        }


async def make_key(server: Running, body: dict[str, Any]) -> tuple[str, str]:
    """(id, full key) of a new key of the operator's organization."""
    response = await server.call("POST", "/v1/api_keys", json=body)
    assert response.status_code == 200, response.text
    created = response.json()
    return created["_links"]["self"]["href"].rsplit("/", 1)[1], created["api_key"]


def every(access: str, targets: list[str]) -> list[dict[str, Any]]:
    return [
        {"resource": r, "access": access, "targets": targets}
        for r in RESOURCES
        if r not in PROTECTED
    ]


async def build_world(server: Running, client: httpx.AsyncClient) -> World:
    org = await server.store.organizations.get_by_name("default")
    assert org is not None
    other_queue = (await server.call("POST", "/queues", json={"name": "other"})).json()["queue"]
    other_org = await server.call("POST", "/api_clients", json={"name": "elsewhere"})
    keys: dict[str, str | None] = {
        "no key": None,
        "wrong key": "not-a-key-" + "z" * 30,
        "disabled key": (await make_key(server, {"status": "disabled"}))[1],
        "read-only key": (await make_key(server, {"scopes": every("read", ["*"])}))[1],
        "write key": (await make_key(server, {}))[1],
        "key for another queue": (
            await make_key(server, {"scopes": every("write", [other_queue["id"]])})
        )[1],
        "key of another org": other_org.json()["api_key"],
        "operator key": BOOTSTRAP_KEY,
    }
    return World(client, keys, org.id, other_queue["id"])


async def test_every_endpoint_answers_every_caller_exactly(settings: Settings) -> None:
    # No delivery engine: this is about who may call what, and probes or deliveries of
    # the hundreds of listeners and messages made here would only slow it down.
    async with (
        start_server(settings, engine=False) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
    ):
        world = await build_world(server, client)
        wrong, cells = await _run_table(world)
    assert cells == len(ENDPOINTS) * len(KINDS)
    assert wrong == []


async def _run_table(world: World) -> tuple[list[str], int]:
    wrong: list[str] = []
    cells = 0
    shared = await world.fresh_targets()
    for ep, kind in itertools.product(ENDPOINTS, KINDS):
        # A call that may change its targets (a write that should succeed) gets fresh
        # ones; every other call can share one set.
        changes = ep.access == "write" and expected_status(ep.method, ep.path, kind) == 200
        targets = await world.fresh_targets() if changes else shared
        make_body = BODIES.get((ep.method, ep.path))
        response = await world.call(
            ep.method,
            ep.path.format(**targets),
            world.keys[kind],
            make_body() if make_body else None,
        )
        cells += 1
        want = expected_status(ep.method, ep.path, kind)
        if response.status_code != want:
            wrong.append(f"{ep.method} {ep.path} with {kind}: {response.status_code} != {want}")
        assert response.headers["content-type"] == "application/json"
    return wrong, cells
