"""``tidings serve``: the app on granian, plain HTTP or HTTPS with HTTP/2.

Why granian for both: uvicorn has no HTTP/2, and on plain HTTP granian is as fast
(``python -m bench.servers``; figures in docs/benchmarks.md). So one server covers
plain HTTP and TLS + HTTP/2, and the TLS path is the tested one.

One granian worker process runs the ASGI app; by default the delivery engine runs
beside it in a supervised child process (``runtime.supervisor``), so the API and the
engine each have a core, and both write metrics to one shared directory that the
API's ``/metrics`` reads. ``--single-process`` keeps the engine in the API's process
(small boxes, one core); ``--no-engine`` runs no engine (``tidings worker``s do).
More API workers would split the process-local caches and limits, so there is no
option for it (scale out with more nodes instead).
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


def _upgrade_schema(database_url: str) -> None:
    from tidings.storage.drivers import open_database
    from tidings.storage.migrate import is_current, upgrade

    async def current() -> bool:
        db = await open_database(database_url)
        try:
            return await is_current(db)
        finally:
            await db.close()

    if not asyncio.run(current()):
        upgrade(database_url)


def run(settings: Settings, *, engine: EngineMode = EngineMode.CHILD) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, SSLProtocols
    from granian.log import LogLevels

    # The worker builds the app from the environment (tidings.asgi:app); hand it
    # what the command line chose.
    os.environ["TIDINGS_DATABASE_URL"] = settings.database_url
    os.environ[ENGINE_ENV] = "1" if engine is EngineMode.IN_PROCESS else "0"
    tls = settings.tls_cert is not None and settings.tls_key is not None
    scheme = "https" if tls else "http"
    supervisor = None
    shared_metrics = None
    if engine is EngineMode.CHILD:
        _upgrade_schema(settings.database_url)  # before two processes open the database
        if settings.metrics_address is not None or settings.metrics_token:
            shared_metrics = tempfile.mkdtemp(prefix="tidings-metrics-")
            share_metrics(shared_metrics)
        supervisor = EngineSupervisor(dict(os.environ), KILL_TIMEOUT_S)
    log.info("tidings listening on %s://%s:%d", scheme, settings.host, settings.port)
    server = Granian(
        "tidings.asgi:app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=1,
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
    if supervisor is None:
        server.serve()
        return
    # granian installs its signal handlers just before it runs the startup hooks.
    server.on_startup(lambda: _stop_child_on_signals(supervisor))
    supervisor.start()
    try:
        server.serve()
    finally:
        supervisor.stop()
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)
