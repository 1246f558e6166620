"""Import target for ASGI servers that load the app by name (granian, hypercorn).

``tidings serve`` uses it too, so every server runs the very same app: settings from
the ``TIDINGS_*`` environment, logging configured once, lifespan in the worker.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tidings.config import load_settings

if TYPE_CHECKING:
    from tidings.api.application import App


def app() -> App:
    """Factory: build the app from the environment (called in granian's worker)."""
    from tidings.runtime import Runtime
    from tidings.runtime.process import pace_collector
    from tidings.runtime.serving import ENGINE_ENV
    from tidings.runtime.supervisor import die_with_parent

    die_with_parent()
    pace_collector()
    engine = os.environ.get(ENGINE_ENV, "1") != "0"
    return Runtime(load_settings(), api=True, engine=engine).asgi_app()
