"""Machine instructions per request of the app in-process, counted by valgrind's
callgrind: ``python -m bench.instructions {get,get-listener,get-message,ingest,health}
[--requests 1280] [--before DIR] [--keep FILE]``; and per delivery of the engine with
``deliver`` (a tree from before the runtime module, 2026-12-06, has no engine to run
in-process this way).

On a shared 2-core VM the CPU time of the same code moves by 10-30 % from run to run
(the speed of the cores themselves drifts), more than most per-request changes; an
instruction count does not. The app is ``bench.inproc``'s (a real runtime on SQLite, no
engine, the access log as ``tidings serve`` writes it, to /dev/null), warmed up for 3 s of
wall time, then ``--requests`` requests (64 in flight) are counted, every thread's
instructions included, Python's, SQLite's and the C libraries'; the cyclic collector
keeps the pace the tree's own server sets (``bench.inproc.collector_as_served``).
Kernel time is not counted, nor waiting: a change that saves system calls or wake-ups
shows in ``bench.inproc``/``bench.ab --cpu``, not here. ``--before DIR`` counts a
second tree (``git archive <commit> tidings | tar -x -C DIR``: tidings only, as this
run's ``bench`` comes after it on the path) the same way, for a ratio.

Needs valgrind with its headers (Debian's ``valgrind``) and a C compiler: callgrind
instruments code only between two client requests, issued from a tiny C library built
on the fly. Instrumentation is on or off for every thread; callgrind's other switch,
collection (``CALLGRIND_TOGGLE_COLLECT``), is per thread, and counted the event loop's
thread alone until 2026-12-07 (SQLite's writer and readers were missing: ingest read
302k instructions per request instead of 467k). ``--keep FILE`` keeps callgrind's file
for ``callgrind_annotate --inclusive=yes [--tree=caller]``. About a minute per 1,280
requests.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_COUNTER_C = (
    "#include <valgrind/callgrind.h>\n"
    "void start(void) { CALLGRIND_START_INSTRUMENTATION; }\n"
    "void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }\n"
)
CLIENTS = 64


def _counter_library(directory: Path) -> Path:
    source, library = directory / "counter.c", directory / "libcounter.so"
    source.write_text(_COUNTER_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", library, source], check=True)
    return library


async def _counted(what: str, requests: int, library: str) -> None:
    """The inner run, under callgrind: counting is on only around the measured part."""
    from bench.inproc import WARM_UP_S, call, serving

    counter = ctypes.CDLL(library)
    async with serving(what) as (app, (method, path, payload)):

        async def client(until: float, count: int) -> None:
            while time.monotonic() < until or count > 0:
                status, out = await call(app, method, path, payload)
                assert status == 200, out
                count -= 1

        warm = time.monotonic() + WARM_UP_S
        await asyncio.gather(*(client(warm, 0) for _ in range(CLIENTS)))
        counter.start()
        await asyncio.gather(*(client(0.0, requests // CLIENTS) for _ in range(CLIENTS)))
        counter.stop()


async def _counted_deliveries(deliveries: int, library: str) -> int:
    """The inner run of ``deliver``: the engine of a runtime in this process drains a
    backlog to ``bench.receiver`` (its own process, not counted); counting is on from
    the 500th arrival for about ``deliveries`` more; answers the exact number counted
    (arrivals are read before the start and after the stop)."""
    import aiohttp

    from bench import arrivals
    from bench.inproc import collector_as_served
    from bench.procs import database, receiver, tidings_env
    from bench.seed import listening_queue, seed_plain
    from tidings.config import load_settings
    from tidings.logs import configure_logging
    from tidings.runtime import Runtime

    warm = 500
    counter = ctypes.CDLL(library)
    async with receiver() as recv, database("sqlite") as url, aiohttp.ClientSession() as s:
        queue_id = await listening_queue(url, s, recv.url, "fast")
        await seed_plain(url, queue_id, warm + deliveries * 2)
        await arrivals.reset(s, recv.url)
        settings = load_settings(tidings_env(url))
        configure_logging(settings.log_format, settings.log_level.upper())

        async def arrived(at_least: int) -> int:
            # Seldom (loadgen.wait_count polls every 50 ms): each poll is counted too.
            while (got := await arrivals.count(s, recv.url)) < at_least:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            return got

        collector_as_served()  # as the engine's own process has it (run_worker)
        async with Runtime(settings, api=False, engine=True).running():
            first = await arrived(warm)
            counter.start()
            await asyncio.sleep(0)
            last = await arrived(first + deliveries)
            counter.stop()
    return last - first


def count(what: str, requests: int, tree: str | None = None, keep: str | None = None) -> float:
    """Instructions per request of ``what``, with tidings from ``tree`` (else this one);
    callgrind's file copied to ``keep`` for ``callgrind_annotate``."""
    with tempfile.TemporaryDirectory() as tmp:
        library = _counter_library(Path(tmp))
        out = Path(tmp) / "callgrind.out"
        from bench.inproc import tree_env

        env = tree_env(tree)
        run = subprocess.run(
            [
                "valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable, "-m", "bench.instructions", "--inner", what,
                "--requests", str(requests), "--library", str(library),
            ],
            env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if run.returncode:
            raise RuntimeError(f"the counted run failed:\n{run.stderr[-3000:]}")
        if keep:
            shutil.copyfile(out, keep)
        counted = Path(tmp) / "counted.txt"
        done = int(counted.read_text()) if counted.exists() else requests // CLIENTS * CLIENTS
        # "totals:" (with instrumentation started late, "summary:" reads 0)
        for line in out.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1]) / done
    raise RuntimeError("callgrind wrote no totals")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument(
        "what", choices=["get", "get-listener", "get-message", "ingest", "health", "deliver"]
    )
    parser.add_argument("--requests", type=int, default=1280, help="(or deliveries)")
    parser.add_argument("--before", help="a source tree to count too, for a ratio")
    parser.add_argument("--keep", help="copy callgrind's output there (callgrind_annotate)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--library", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        import uvloop

        if args.what == "deliver":
            done = uvloop.run(_counted_deliveries(args.requests, args.library))
            Path("counted.txt").write_text(str(done))  # for the outer run's division
        else:
            uvloop.run(_counted(args.what, args.requests, args.library))
        return
    if args.before:
        from bench.inproc import check_tree

        check_tree(args.before)
    after = count(args.what, args.requests, keep=args.keep)
    print(f"{args.what}: {after:,.0f} instructions per request")
    if args.before:
        before = count(args.what, args.requests, args.before)
        print(f"before ({args.before}): {before:,.0f}; after/before {after / before:.3f}")


if __name__ == "__main__":
    main()
