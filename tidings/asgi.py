"""Import target for ASGI servers that load the app by name (granian, hypercorn).

``tidings serve`` uses it too, so every server runs the very same app: settings from
the ``TIDINGS_*`` environment, logging configured once, lifespan in the worker.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

from tidings.config import load_settings

if TYPE_CHECKING:
    from tidings.api.application import App


def die_with_parent() -> None:
    """Linux: have the kernel SIGTERM this process when its parent dies.

    granian runs the app in a worker process; if the supervising process is killed
    (``kill -9``, OOM killer) the worker would otherwise live on as an orphan holding
    the port and running a delivery engine nobody supervises.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def app() -> App:
    """Factory: build the app from the environment (called in granian's worker)."""
    from tidings.runtime import Runtime
    from tidings.runtime.serving import ENGINE_ENV

    die_with_parent()
    engine = os.environ.get(ENGINE_ENV, "1") != "0"
    return Runtime(load_settings(), api=True, engine=engine).asgi_app()
