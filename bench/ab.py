"""Before/after of a change, interleaved in one run:
``python -m bench.ab BEFORE_DIR {delivery,latency,ingest,get,get-message,get-listener}
[--db sqlite] [--rounds 3] [--cpu]``.

BEFORE_DIR is a source tree of the old version (e.g. ``git archive <commit> | tar -x
-C /tmp/before``); the servers of "before" rounds import tidings from there, the
"after" rounds from the installed (working) tree. Rounds alternate before/after so
the machine's drift hits both alike; prints every round and the medians' ratio.
``get`` reads one queue; ``get-message`` and ``get-listener`` read one message (with
its delivery) and one listener of it. ``--cpu`` (ingest and the reads): the API
worker's CPU microseconds per request instead of the rate, which on this shared
machine drifts less with the neighbours' load.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from bench import delivery, get, ingest, latency, wrk
from bench.api import MESSAGE
from bench.procs import SOURCE, cpu_s, load, receiver
from bench.profile import _worker as worker_pid  # the API worker of a serve
from bench.stats import median

Measure = Callable[[str], Awaitable[float]]


def _delivery(kind: str) -> Measure:
    async def one(recv_url: str) -> float:
        # Seeded in plain SQL: this tree's ingest may not fit the "before" schema.
        return await delivery._subject(kind, recv_url, 20_000, plain=True)

    return one


def _latency(kind: str, rate: float) -> Measure:
    async def one(_recv_url: str) -> float:
        row = await latency.measure(kind, rate, 5.0, 1)
        return float(row["e2e_from_200"]["p50_ms"])

    return one


def _wrk_measure(kind: str, connections: int, what: str, cpu: bool) -> Measure:
    """Requests/s of ``wrk`` at ``connections``; with ``cpu``, the API worker's CPU
    microseconds per request instead (lower is better): on a shared machine the
    rate follows the neighbours' load, the CPU a request costs much less so."""
    body = MESSAGE if what == "ingest" else None
    headers = ingest.HEADERS if what == "ingest" else get.HEADERS

    async def one(recv_url: str) -> float:
        async with get.resource_urls(kind, recv_url) as (server, urls):
            target = {
                "ingest": f"{urls['queue']}/messages",
                "get": urls["queue"],
                "get-message": urls["message"],
                "get-listener": urls["listener"],
            }[what]
            await wrk.post(target, body, headers, connections, 2)
            worker = worker_pid(server)
            before = cpu_s(worker)
            result = await wrk.post(target, body, headers, connections, 8)
            if result.errors:
                raise RuntimeError(f"{what} answered {result.errors} errors")
            if cpu:
                return (cpu_s(worker) - before) / result.requests * 1e6
            return result.requests_per_s

    return one


async def ab(before: str, measure: Measure, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"before": [], "after": []}
    async with receiver() as recv:
        for i in range(rounds):
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            for side in order:
                SOURCE["path"] = before if side == "before" else None
                value = await measure(recv.url)
                runs[side].append(value)
                print(f"round {i + 1} {side}: {value:.2f} (load {load()[0]})", flush=True)
    SOURCE["path"] = None
    b, a = median(runs["before"]), median(runs["after"])
    return {"before": b, "after": a, "after_over_before": round(a / b, 3), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("before")
    parser.add_argument(
        "what", choices=["delivery", "latency", "ingest", "get", "get-message", "get-listener"]
    )
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="latency: messages/s")
    parser.add_argument("-c", type=int, default=64, help="ingest: connections")
    parser.add_argument(
        "--cpu", action="store_true", help="ingest, the reads: API worker CPU us per request"
    )
    args = parser.parse_args()
    measure = {
        "delivery": lambda: _delivery(args.db),
        "latency": lambda: _latency(args.db, args.rate),
        "ingest": lambda: _wrk_measure(args.db, args.c, "ingest", args.cpu),
    }.get(args.what, lambda: _wrk_measure(args.db, get.CONNECTIONS, args.what, args.cpu))()
    started = time.monotonic()
    result = uvloop.run(ab(args.before, measure, args.rounds))
    unit = {"delivery": "deliveries/s", "latency": "p50 ms"}.get(args.what, "req/s")
    unit = "CPU us/req" if args.cpu else unit
    print(
        f"{args.what} {args.db}: before {result['before']:.1f} {unit}, after"
        f" {result['after']:.1f} {unit}, after/before {result['after_over_before']}"
        f" ({time.monotonic() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
