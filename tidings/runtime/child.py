"""``python -m tidings.runtime.child``: the delivery engine of ``tidings serve``.

Started and restarted by ``runtime.supervisor`` with the server's environment (the
database URL included); not a command for users (``tidings worker`` is). Its metrics
go to the directory the parent's ``/metrics`` reads; it serves none itself.
"""

from __future__ import annotations

import uvloop

from tidings.config import load_settings
from tidings.logs import configure_logging
from tidings.runtime.supervisor import die_with_parent
from tidings.runtime.worker import run_worker


def main() -> None:
    die_with_parent()
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level.upper())
    # uvloop: the engine's CPU per delivery 0.90x of asyncio's loop (docs/benchmarks.md).
    uvloop.run(run_worker(settings, child=True))


if __name__ == "__main__":
    main()
