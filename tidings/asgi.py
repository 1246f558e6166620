"""Import target for ASGI servers that load the app by name (granian, hypercorn).

``tidings serve`` uses it too, so every server runs the very same app: settings from
the ``TIDINGS_*`` environment, logging configured once, lifespan in the worker.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from tidings.config import load_settings

# Set by `tidings serve --no-engine` for its worker process (internal, not a setting).
ENGINE_ENV = "TIDINGS_SERVE_ENGINE"


def app() -> Starlette:
    """Factory: build the app from the environment."""
    from tidings.api.app import create_app

    return create_app(load_settings(), engine=os.environ.get(ENGINE_ENV, "1") != "0")
