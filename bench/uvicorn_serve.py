"""`tidings serve` as it would be on uvicorn (uvloop + httptools), for comparisons:
the same settings, the same logging configuration, the same app."""

from __future__ import annotations

import sys

import uvicorn

from tidings.config import load_settings
from tidings.logs import configure_logging
from tidings.runtime import Runtime

if __name__ == "__main__":
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level.upper())
    uvicorn.run(
        Runtime(settings, api=True, engine=True).asgi_app(),
        host=settings.host,
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_config=None,  # ours, as `tidings serve` has it
        log_level="warning",  # uvicorn's start-up lines; the access log is ours
        access_log=False,
    )
