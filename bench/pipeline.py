"""tidings against what a Python team builds instead (issue 18): ``python -m bench
pipeline [--quick] [--db sqlite,postgres]``.

The pipeline is ``bench.pipeline_app``: FastAPI + SQLAlchemy on PostgreSQL, Celery over
this machine's RabbitMQ, delivering to the same fast receiver. Each round runs the
same durable ingest (``wrk -t1 -c64`` POSTing ``bench.api.MESSAGE``) against the raw
ASGI app (the same-run baseline of ``bench ingest``), the pipeline and ``tidings
serve`` as a user starts it, one at a time with one listener each, and after each
broker run waits until the receiver has every message (sustained ingest + delivery,
as in ``bench ingest``). The figure issue 18 asks for is tidings' requests/s over the
pipeline's (it wants >= 30x); both are also given as shares of the raw ASGI app.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench import wrk
from bench.api import MESSAGE, Api
from bench.ingest import HEADERS, raw_asgi, tidings_run
from bench.procs import Proc, database, free_port, load, receiver, spawn, tidings, wait_ready
from bench.stats import median, ratio

CONNECTIONS = 64
DRAIN_TIMEOUT_S = 300.0
KEY = "pipeline-key-" + "p" * 24
QUEUE_ID = "q1"  # the pipeline's one queue


def _env(db_url: str, queue: str) -> dict[str, str]:
    return {
        **os.environ,
        "PIPELINE_DB": db_url.replace("postgresql://", "postgresql+psycopg://", 1),
        "PIPELINE_QUEUE": queue,
        "PIPELINE_KEY": KEY,
    }


def _app(env: dict[str, str], *args: str, check: bool = True) -> None:
    """``python -m bench.pipeline_app ARGS`` in a child, which reads the pipeline's
    settings from its environment as its servers do."""
    subprocess.run([sys.executable, "-m", "bench.pipeline_app", *args], env=env, check=check)


@asynccontextmanager
async def pipeline(receiver_url: str) -> AsyncIterator[Proc]:
    """The pipeline's API (uvicorn) and Celery worker on a fresh PostgreSQL database
    and Celery queue, with QUEUE_ID's one listener on the receiver; yields the API."""
    async with database("postgres") as db_url:
        env = _env(db_url, f"bench-pipeline-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        _app(env, "prepare", QUEUE_ID, receiver_url + "/pipeline")  # Celery declares its queue
        port = free_port()
        api = spawn(
            [
                sys.executable, "-m", "uvicorn", "bench.pipeline_app:app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            ],
            "pipeline-api", f"http://127.0.0.1:{port}", env,
        )  # fmt: skip
        worker = spawn(
            [
                sys.executable, "-m", "celery", "-A", "bench.pipeline_app:celery", "worker",
                "--pool", "prefork", "--concurrency", str(os.cpu_count() or 2),
                "--loglevel", "WARNING", "-Q", env["PIPELINE_QUEUE"],
            ],
            "pipeline-worker", "", env,
        )  # fmt: skip
        try:
            await wait_ready(api, "/openapi.json")
            yield api
        finally:
            worker.stop()
            api.stop()
            _app(env, "drop-queue", check=False)


async def _run_one(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], recv_url: str, seconds: float
) -> dict[str, Any]:
    run = await tidings_run(session, url, recv_url, CONNECTIONS, seconds, headers, DRAIN_TIMEOUT_S)
    return {**run, "load": load()[0]}


async def _round(
    kind: str, session: aiohttp.ClientSession, recv: Proc, raw: Proc, seconds: float, n: int
) -> dict[str, Any]:
    pipe_headers = {"X-API-KEY": KEY, "Content-Type": "application/json"}
    path = f"/v1/queues/{QUEUE_ID}/messages"  # the raw app and the pipeline
    raw_run = await wrk.post(raw.url + path, MESSAGE, HEADERS, CONNECTIONS, seconds)
    async with pipeline(recv.url) as api:
        target = api.url + path
        await _run_one(session, target, pipe_headers, recv.url, 1)  # warm-up, worker up
        piped = await _run_one(session, target, pipe_headers, recv.url, seconds)
    async with database(kind) as url, tidings(url) as server:
        api_calls = Api(server.url, session)
        tq = await api_calls.queue(f"bench-pipeline-{n}")
        await api_calls.listener(tq, recv.url, "fast")
        target = f"{server.url}/v1/queues/{tq}/messages"
        await _run_one(session, target, HEADERS, recv.url, 2)  # warm-up
        ours = await _run_one(session, target, HEADERS, recv.url, seconds)
    return {"raw": raw_run.as_dict(), "pipeline": piped, "tidings": ours}


def _summary(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def of(side: str, field: str) -> int:
        return round(median([r[side][field] for r in runs]))

    def over(side: str, base: str) -> float:
        return median([ratio(r[side]["rps"], r[base]["rps"]) for r in runs])

    return {
        "db": kind,
        "tidings_rps": of("tidings", "rps"),
        "pipeline_rps": of("pipeline", "rps"),
        "raw_asgi_rps": of("raw", "rps"),
        "tidings_over_pipeline": over("tidings", "pipeline"),
        "tidings_of_raw": over("tidings", "raw"),
        "pipeline_of_raw": over("pipeline", "raw"),
        "tidings_sustained": of("tidings", "sustained_msg_per_s"),
        "pipeline_sustained": of("pipeline", "sustained_msg_per_s"),
        "errors": sum(r["tidings"]["errors"] + r["pipeline"]["errors"] for r in runs),
        "runs": runs,
    }


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    seconds = 5.0 if quick else 10.0
    rounds = 2 if quick else 3
    wrk.ensure_wrk()
    rows = []
    async with receiver() as recv, raw_asgi() as raw, aiohttp.ClientSession() as session:
        for kind in kinds:
            runs = [await _round(kind, session, recv, raw, seconds, n) for n in range(rounds)]
            rows.append(_summary(kind, runs))
    return {"name": "pipeline", "rows": rows}
