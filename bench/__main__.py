"""``python -m bench {all,latency,...} [--quick] [--db sqlite,postgres]``: run scenarios
of issue 6 and write ``bench/results/<UTC stamp>.{md,json,png}``."""

from __future__ import annotations

import argparse
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from bench import delivery, fanout, get, ingest, latency, memory, pipeline, publishing, report
from bench.procs import SOURCE, load

Scenario = Callable[[list[str], bool], Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {
    "latency": latency.run,
    "ingest": ingest.run,
    "get": get.run,
    "delivery": delivery.run,
    "fanout": fanout.run,
    "memory": memory.run,
    "publishing": publishing.run,
    "pipeline": pipeline.run,
}
RESULTS = Path(__file__).parent / "results"


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def _run(names: list[str], kinds: list[str], quick: bool) -> list[dict[str, Any]]:
    sections = []
    for name in names:
        started = time.monotonic()
        print(f"[bench] {name} on {','.join(kinds)} ({_uptime()})", flush=True)
        section = await SCENARIOS[name](kinds, quick)
        section["seconds"] = round(time.monotonic() - started, 1)
        sections.append(section)
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=["all", *SCENARIOS])
    parser.add_argument("--quick", action="store_true", help="shorter rounds (~minutes)")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--source",
        help="run the servers from this source tree (e.g. `git archive C | tar -x -C DIR`)"
        " with this tree's scenarios and baselines: before/after with the same instruments",
    )
    args = parser.parse_args()
    SOURCE["path"] = args.source
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    meta = {
        "command": "python -m bench "
        + " ".join([args.scenario, *(["--quick"] if args.quick else []), "--db", args.db])
        + (f" --source {args.source}" if args.source else ""),
        "uptime_at_start": _uptime(),
        "load_at_start": load(),
    }
    sections = uvloop.run(_run(names, kinds, args.quick))
    meta["uptime_at_end"] = _uptime()
    print(f"[bench] wrote {report.write(args.out, stamp, meta, sections)}")


if __name__ == "__main__":
    main()
