"""``tidings serve``: the app on granian, plain HTTP or HTTPS with HTTP/2.

Why granian for both: uvicorn has no HTTP/2, and on plain HTTP granian is as fast
(``python -m bench.servers``; figures in docs/benchmarks.md). So one server covers
plain HTTP and TLS + HTTP/2, and the TLS path is the tested one.

granian's worker processes (``--workers``, one by default) run the ASGI app; by
default the delivery engine runs beside them in one supervised child process
(``runtime.supervisor``), so the API and the engine each have a core, and all of
them write metrics to one shared directory that every worker's ``/metrics`` reads.
``--single-process`` keeps the engine in the API's one process (small boxes, one
core); ``--no-engine`` runs no engine (``tidings worker``s do).

Several workers are several nodes on one port: each has its own caches, rate-limit
and lockout counts, kept consistent through the database as between nodes (SPEC §2).
What cannot be done by each of them at once is done here, before granian starts
them: the schema upgrade and the bootstrap (the first organization's key is printed
once, by this process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any

from tidings.config import Settings
from tidings.logs import logging_config
from tidings.metrics import share_metrics
from tidings.runtime.supervisor import EngineSupervisor

log = logging.getLogger("tidings")
# Set for granian's worker process, which builds the app from the environment
# (``tidings.asgi:app``): "0" for `tidings serve --no-engine` (internal, not a setting).
ENGINE_ENV = "TIDINGS_SERVE_ENGINE"
# SIGTERM: granian stops accepting, the lifespan stops the engine (its grace is 4 s),
# and a worker that still hangs is killed, so the process is gone within 10 s.
KILL_TIMEOUT_S = 9


class EngineMode(Enum):
    CHILD = "child"  # the default: a supervised process of its own
    IN_PROCESS = "in-process"  # --single-process
    NONE = "none"  # --no-engine


def _stop_child_on_signals(supervisor: EngineSupervisor) -> None:
    """Chain the child's SIGTERM to granian's handlers, so the engine and the API
    stop side by side instead of one after the other."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            supervisor.signal_stop()
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)


def _prepare_database(settings: Settings) -> None:
    """Upgrade the schema and bootstrap the first key, once, before any worker (which
    then finds both done) or the engine child opens the database."""
    from tidings.bootstrap import announce, bootstrap
    from tidings.storage.store import Store

    async def prepare() -> None:
        store = await Store.open(settings.database_url)  # creates or upgrades the schema
        try:
            created = await bootstrap(store, settings.bootstrap_api_key)
        finally:
            await store.close()
        if created is not None:
            announce(created)

    asyncio.run(prepare())


def run(settings: Settings, *, engine: EngineMode = EngineMode.CHILD) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, SSLProtocols
    from granian.log import LogLevels

    # The worker builds the app from the environment (tidings.asgi:app); hand it
    # what the command line chose.
    os.environ["TIDINGS_DATABASE_URL"] = settings.database_url
    os.environ[ENGINE_ENV] = "1" if engine is EngineMode.IN_PROCESS else "0"
    os.environ["TIDINGS_WORKERS"] = str(settings.workers)  # they share the metrics address
    tls = settings.tls_cert is not None and settings.tls_key is not None
    scheme = "https" if tls else "http"
    supervisor = None
    shared_metrics = None
    _prepare_database(settings)
    several = engine is EngineMode.CHILD or settings.workers > 1
    if several and settings.metrics_enabled:
        shared_metrics = tempfile.mkdtemp(prefix="tidings-metrics-")
        share_metrics(shared_metrics)
    if engine is EngineMode.CHILD:
        supervisor = EngineSupervisor(dict(os.environ), KILL_TIMEOUT_S)
    log.info("tidings listening on %s://%s:%d", scheme, settings.host, settings.port)
    server = Granian(
        "tidings.asgi:app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        http=HTTPModes.auto,
        websockets=False,
        log_dictconfig=logging_config(settings.log_format, settings.log_level.upper()),
        log_level=LogLevels.warning,
        log_access=False,
        ssl_cert=Path(settings.tls_cert) if settings.tls_cert else None,
        ssl_key=Path(settings.tls_key) if settings.tls_key else None,
        ssl_protocol_min=SSLProtocols.tls12,
        workers_kill_timeout=KILL_TIMEOUT_S,
    )
    if supervisor is not None:
        # granian installs its signal handlers just before it runs the startup hooks.
        server.on_startup(lambda: _stop_child_on_signals(supervisor))
        supervisor.start()
    try:
        server.serve()
    finally:
        if supervisor is not None:
            supervisor.stop()
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)
