"""CPU per request of the app alone: ``python -m bench.inproc {get,get-listener,get-message,
ingest,health} [--profile]``.

Drives the ASGI app of a real runtime (SQLite in a temporary directory, or with
``--db postgres`` a fresh PostgreSQL database; no engine, the access log and the
cyclic collector's pace as ``tidings serve`` has them) straight through its callable,
no HTTP server: 64 requests in flight, like ``wrk -c64`` (``--clients N`` for another
number).
Prints requests/s and microseconds of this process's CPU per request (all its
threads, and the event loop's thread alone: the rest is SQLite's writer and readers);
``--profile`` adds cProfile's top functions.
``--before DIR --rounds N`` compares this repository's tidings with the tree in DIR
(``git archive <commit> tidings | tar -x -C DIR``): each run in a process of its own,
the two alternating and each going first in every other pair (the second run of a pair
measured slower on this VM), and prints each pair's ratio of CPU per request and their
median, also by which one ran first. A tree from before the runtime module (issue 18's
06a125c) has its app built by ``create_app`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvloop

from bench.api import MESSAGE
from bench.procs import database, load
from bench.stats import median
from tidings.config import load_settings
from tidings.logs import configure_logging

KEY = "bench-inproc-key-0123456789abcdef"
WARM_UP_S = 3.0


async def call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "headers": [
            (b"host", b"127.0.0.1:8080"), (b"x-api-key", KEY.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip
    sent = False
    status = 0
    out = b""

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, out
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            out += message.get("body", b"")

    await app(scope, receive, send)
    return status, out


class Lifespan:
    """The app's lifespan driven as a server does: startup on enter, shutdown on exit."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def __aenter__(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self._task = asyncio.ensure_future(self._app(scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._outbox.get()
        assert answer["type"] == "lifespan.startup.complete", answer

    async def __aexit__(self, *_exc: object) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._task


def _app(settings: Any) -> Any:
    try:
        from tidings.runtime import Runtime
    except ImportError:  # before the runtime module
        from tidings.api.app import create_app

        return create_app(settings, engine=False)  # type: ignore[call-arg]
    collector_as_served()
    return Runtime(settings, api=True, engine=False).asgi_app()


def collector_as_served() -> None:
    """The cyclic collector's pace as the tree's own server sets it in its API
    workers (``tidings.asgi:app``), so the requests cost here what they cost under
    ``tidings serve``; a tree from before that pace (0c2c887) keeps CPython's."""
    try:
        from tidings.runtime.process import pace_collector
    except ImportError:
        return
    pace_collector()


Request = tuple[str, str, bytes]  # method, path, body


@asynccontextmanager
async def serving(what: str, db: str = "sqlite") -> AsyncIterator[tuple[Any, Request]]:
    """The app of a real runtime, started, with a queue, a listener and a message, and
    the request ``what`` makes (also used by ``bench.instructions``)."""
    async with database(db) as url:
        settings = load_settings(
            {
                "TIDINGS_DATABASE_URL": url,
                "TIDINGS_BOOTSTRAP_API_KEY": KEY,
                "TIDINGS_RATE_LIMIT": "0",
                "TIDINGS_ALLOWED_NETWORKS": "127.0.0.0/8",
            }
        )
        configure_logging(settings.log_format, settings.log_level.upper())
        app = _app(settings)
        async with Lifespan(app):
            body = json.dumps({"name": "q"}).encode()
            status, out = await call(app, "POST", "/v1/queues", body)
            assert status == 200, out
            qid = json.loads(out)["queue"]["id"]
            listener = {
                "name": "l", "notify_url": "http://127.0.0.1:9/n",
                "liveness_url": "http://127.0.0.1:9/l",
            }  # fmt: skip
            status, out = await call(
                app, "POST", f"/v1/queues/{qid}/listeners", json.dumps(listener).encode()
            )
            assert status == 200, out
            lid = json.loads(out)["listener"]["id"]
            status, out = await call(app, "POST", f"/v1/queues/{qid}/messages", MESSAGE)
            assert status == 200, out
            mid = json.loads(out)["message"]["id"]
            if what == "get":
                request = "GET", f"/v1/queues/{qid}", b""
            elif what == "get-listener":
                request = "GET", f"/v1/queues/{qid}/listeners/{lid}", b""
            elif what == "get-message":
                request = "GET", f"/v1/queues/{qid}/messages/{mid}", b""
            elif what == "health":  # the shell alone: no key, no store beyond a ping
                request = "GET", "/health", b""
            else:
                request = "POST", f"/v1/queues/{qid}/messages", MESSAGE
            yield app, request


async def run(
    what: str, seconds: float, profile: bool, clients: int = 64, db: str = "sqlite"
) -> None:
    async with serving(what, db) as (app, (method, path, payload)):
        done = 0
        deadline = 0.0

        async def client() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                status, out = await call(app, method, path, payload)
                assert status == 200, out
                done += 1

        # Warm-up past the first seconds, in which the caches read around themselves
        # until they surely hear their channels' wake-ups (storage.wakeups).
        deadline = time.monotonic() + WARM_UP_S
        await asyncio.gather(*(client() for _ in range(clients)))
        done = 0
        profiler = cProfile.Profile() if profile else None
        cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.monotonic()
        deadline = wall + seconds
        if profiler:
            profiler.enable()
        await asyncio.gather(*(client() for _ in range(clients)))
        if profiler:
            profiler.disable()
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        wall = time.monotonic() - wall
    print(
        f"{what}: {done / wall:,.0f} req/s in-process, "
        f"{cpu / done * 1e6:.1f} us CPU per request, {loop_cpu / done * 1e6:.1f} of it on the "
        f"event loop's thread ({done} requests)"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)


_CPU = re.compile(r"([\d.]+) us CPU per request")


def tree_env(tree: str | None) -> dict[str, str]:
    """The environment of a child process that imports tidings from ``tree`` (else this
    repository's) and this repository's ``bench``; run it in a directory without a
    ``tidings/``, since ``python -m`` puts the working directory first on the path."""
    root = str(Path(__file__).resolve().parent.parent)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (tree, root) if p))


def _cpu_per_request(tree: str | None, args: argparse.Namespace) -> float:
    """One run in a process of its own, with tidings from ``tree`` (else this
    repository's): its CPU per request."""
    env = tree_env(tree)
    command = [sys.executable, "-m", "bench.inproc", args.what, "--seconds", str(args.seconds)]
    command += ["--clients", str(args.clients), "--db", args.db]
    with tempfile.TemporaryDirectory() as cwd, open(Path(cwd) / "stderr", "w+") as errors:
        run = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=errors)
        found = _CPU.search(run.stdout.decode())
        if run.returncode or found is None:
            errors.seek(0)
            raise RuntimeError(f"the run failed:\n{errors.read()[-3000:]}")
    return float(found.group(1))


def check_tree(tree: str) -> None:
    """Stop unless ``tree`` holds a ``tidings`` package: without one, the runs would
    import this repository's and compare it with itself."""
    if not (Path(tree) / "tidings").is_dir():
        raise SystemExit(f"{tree} holds no tidings/ (git archive <commit> tidings | tar -x -C DIR)")


def compare(before: str, args: argparse.Namespace) -> None:
    """This repository against ``before``, alternating, each first in every other pair."""
    check_tree(before)
    firsts: dict[str, list[float]] = {"before": [], "after": []}
    for n in range(args.rounds):
        order = ["before", "after"] if n % 2 == 0 else ["after", "before"]
        cpu = {}
        for side in order:
            cpu[side] = _cpu_per_request(before if side == "before" else None, args)
            print(f"round {n + 1} {side}: {cpu[side]:.1f} us CPU per request (load {load()[0]})")
        firsts[order[0]].append(cpu["after"] / cpu["before"])
    pairs = firsts["before"] + firsts["after"]
    print(
        f"{args.what} {args.db}: after/before {median(pairs):.3f} of CPU per request "
        f"(pairs {min(pairs):.3f}-{max(pairs):.3f}; before first {median(firsts['before']):.3f}"
        + (f", after first {median(firsts['after']):.3f})" if firsts["after"] else ")")
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__)
    parser.add_argument("what", choices=["get", "get-listener", "get-message", "ingest", "health"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--clients", type=int, default=64, help="requests in flight")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--before", help="a tidings tree to compare with, alternating")
    parser.add_argument("--rounds", type=int, default=6, help="pairs, with --before")
    args = parser.parse_args()
    if args.before:
        compare(args.before, args)
        return
    uvloop.run(run(args.what, args.seconds, args.profile, args.clients, args.db))


if __name__ == "__main__":
    main()
