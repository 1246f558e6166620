"""/openapi.json describes what is served (SPEC §1): schemathesis, with all its checks
and phases (coverage, fuzzing, stateful), against a real `tidings serve`, finds
nothing: every operation under /v1, on SQLite and on PostgreSQL. The root paths are
the same routes and the same contract without the prefix (tests/unit/test_router.py
and test_openapi_document.py hold both to that), so fuzzing them again would only
double the run.

CI runs a fixed seed and a few examples per operation; for a deeper run set
``TIDINGS_SCHEMATHESIS_EXAMPLES`` (e.g. 200) and ``TIDINGS_SCHEMATHESIS_SEED``
(e.g. ``random``). docs/api.md says how to run the same by hand.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import BOOTSTRAP_KEY
from tests.processes import serve

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("TIDINGS_SCHEMATHESIS_EXAMPLES", "4"))
SEED = os.environ.get("TIDINGS_SCHEMATHESIS_SEED", "20261205")
RUN_TIMEOUT_S = max(240, EXAMPLES * 20)

pytestmark = pytest.mark.timeout(RUN_TIMEOUT_S + 60)


def _config(tmp_path: Path, org_id: str) -> Path:
    """The checked-in settings plus the one id no operation can create: our own
    organization's (PUT /api_clients/{id} answers 404 for any other)."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.read_text() + f'\n[parameters]\n"path.api_client_id" = "{org_id}"\n')
    return config


async def test_schemathesis_finds_nothing(database_url: str, tmp_path: Path) -> None:
    # No delivery engine: listeners get random public URLs here, and nothing may be sent
    # to them. A generous rate limit keeps its headers in every answer.
    proc, base = await serve(
        database_url,
        tmp_path / "serve.log",
        None,
        "--no-engine",
        TIDINGS_RATE_LIMIT="1000000",
        TIDINGS_LOCKOUT_THRESHOLD="1000000",
        TIDINGS_LOG_LEVEL="warning",
    )
    try:
        async with httpx.AsyncClient(base_url=base, headers={"X-API-KEY": BOOTSTRAP_KEY}) as c:
            assert (await c.post("/queues", json={"name": "seed"})).status_code == 200
            org_id = (await c.get("/events")).json()["events"][0]["client"]["id"]
        seed = [] if SEED == "random" else ["--seed", SEED]
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(_config(tmp_path, org_id)),
            "run",
            f"{base}/openapi.json",
            "--header",
            f"X-API-KEY: {BOOTSTRAP_KEY}",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
            *seed,
            "--include-path-regex",
            "^/v1/",
            "--generation-database",
            "none",
            # One worker: with two, schemathesis's threads call ast.parse (Hypothesis
            # describing a lambda) at once, and CPython 3.11 then fails the run with
            # "SystemError: AST constructor recursion depth mismatch" (seen in CI,
            # every request of that run had passed).
            "--workers",
            "1",
            "--no-color",
            "--warnings",
            "off",
        ]
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            cwd=tmp_path,
            check=False,
        )
    finally:
        proc.terminate()
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-20_000:]
    # It really ran: every operation under /v1 (34 of the 68 with the root's), every phase.
    assert "Selected: 34/68" in report, report[-5000:]
    assert "Tested: 34" in report, report[-5000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, (phase, report[-5000:])
    assert "No issues found" in report, report[-5000:]
