"""``tidings serve``: the app on granian, plain HTTP or HTTPS with HTTP/2.

Why granian for both: uvicorn has no HTTP/2, and on plain HTTP granian is as fast
(``python -m bench.servers``; figures in docs/benchmarks.md). So one server covers
plain HTTP and TLS + HTTP/2, and the TLS path is the tested one.

One worker process runs the ASGI lifespan, and with it the delivery engine and the
metrics registry; more workers would mean more engines and split metrics, so there
is no option for it (scale out with more nodes and ``tidings worker`` instead).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tidings.config import Settings
from tidings.logs import logging_config

log = logging.getLogger("tidings")
# Set for granian's worker process, which builds the app from the environment
# (``tidings.asgi:app``): "0" for `tidings serve --no-engine` (internal, not a setting).
ENGINE_ENV = "TIDINGS_SERVE_ENGINE"
# SIGTERM: granian stops accepting, the lifespan stops the engine (its grace is 4 s),
# and a worker that still hangs is killed, so the process is gone within 10 s.
KILL_TIMEOUT_S = 9


def run(settings: Settings, *, engine: bool = True) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, SSLProtocols
    from granian.log import LogLevels

    # The worker builds the app from the environment (tidings.asgi:app); hand it
    # what the command line chose.
    os.environ["TIDINGS_DATABASE_URL"] = settings.database_url
    os.environ[ENGINE_ENV] = "1" if engine else "0"
    tls = settings.tls_cert is not None and settings.tls_key is not None
    scheme = "https" if tls else "http"
    log.info("tidings listening on %s://%s:%d", scheme, settings.host, settings.port)
    Granian(
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
    ).serve()
