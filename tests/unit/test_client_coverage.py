"""The client covers every endpoint of the table, and _async.py is generated from _sync.py."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

from tidings.api.routes import ENDPOINTS
from tidings_client import AsyncClient, Client, calls

ROOT = Path(__file__).resolve().parents[2]


def _shape(path: str) -> str:
    """``queues/{queue_id}`` and ``queues/X`` -> ``/queues/_``."""
    return "/" + re.sub(r"\{[^}]+\}|X", "_", path.strip("/"))


def test_every_endpoint_has_a_call() -> None:
    covered = set()
    for name, factory in inspect.getmembers(calls, inspect.isfunction):
        signature = inspect.signature(factory)
        if factory.__module__ != calls.__name__ or name.startswith("_") or name == "raw":
            continue
        if not str(signature.return_annotation).startswith("Call["):
            continue
        params = signature.parameters.values()
        variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        required = [
            p for p in params if p.default is inspect.Parameter.empty and p.kind not in variadic
        ]
        built = [factory(*["X"] * len(required))]
        if "queue_id" in signature.parameters and not any(p.name == "queue_id" for p in required):
            built.append(factory(queue_id="X"))  # a queue's list, not everything's
        covered |= {(call.method, _shape(call.path)) for call in built}
    table = {(ep.method, _shape(ep.path)) for ep in ENDPOINTS}
    assert table - covered == set()


def test_both_clients_have_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_")} - {"close", "aclose"}

    assert public(Client) == public(AsyncClient)


def test_async_client_is_generated_from_the_sync_one() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_async_client.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
