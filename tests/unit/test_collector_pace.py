"""The server's processes collect cyclic garbage at tidings' pace, not CPython's
default (runtime/process.py says why: 1.17-1.22x requests/s under load)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tidings.runtime.process import GEN0_THRESHOLD

_PROBE = """
import asyncio, gc, os, signal, sys
from tidings.config import load_settings
which = sys.argv[1]
print(gc.get_threshold()[0])
if which == "api":
    from tidings.asgi import app
    app()
    print(gc.get_threshold()[0])
else:
    from tidings.runtime.worker import run_worker
    async def main():
        async def look():
            await asyncio.sleep(0.3)
            print(gc.get_threshold()[0])
            os.kill(os.getpid(), signal.SIGTERM)
        asyncio.get_running_loop().create_task(look())
        await run_worker(load_settings())
    asyncio.run(main())
"""


def _thresholds(which: str, tmp_path: Path) -> list[int]:
    env = {"TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'pace.db'}", "PATH": ""}
    if which == "worker":
        subprocess.run(
            [sys.executable, "-m", "tidings", "migrate"], env=env, check=True, capture_output=True
        )
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, which], env=env, check=True, capture_output=True, timeout=60
    ).stdout
    return [int(line) for line in out.split()]


def test_the_api_worker_and_the_engine_collect_less_often(tmp_path: Path) -> None:
    # Before: CPython's own default (700 on 3.11 and 3.12, 2,000 on 3.13).
    for which in ("api", "worker"):
        before, after = _thresholds(which, tmp_path)
        assert before != GEN0_THRESHOLD and after == GEN0_THRESHOLD
