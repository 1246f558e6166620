"""Plain-HTTP rate of the real app on several servers, measured in one run.

    python -m bench.servers [--rounds 3] [--duration 10] [--only uvicorn,granian]

Each server runs as a subprocess on a fresh SQLite file; wrk (-t1 -c64) POSTs a
~100-byte message to a queue (``--script get``: GETs the queue instead). Rounds
alternate the order of the servers so the machine's drift hits all of them alike;
the median per server is printed with its ratio to the first server listed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

KEY = "bench-operator-key-" + "x" * 24
PORT = 8099
HERE = Path(__file__).parent

SERVERS: dict[str, list[str]] = {
    # The app on uvicorn (uvloop + httptools) with the same logging as `tidings serve`.
    "uvicorn": [sys.executable, "-m", "bench.uvicorn_serve", str(PORT)],
    "granian": [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop",
        "--port", str(PORT), "--no-access-log", "tidings.asgi:app",
    ],
    "hypercorn": [
        sys.executable, "-m", "hypercorn", "-k", "uvloop", "-b", f"127.0.0.1:{PORT}",
        "tidings.asgi:app()",
    ],
    "serve": [sys.executable, "-m", "tidings", "serve", "--port", str(PORT)],
}  # fmt: skip
# Variants of `tidings serve` (granian) for the cost of logging and metrics.
SERVERS["serve+metrics"] = SERVERS["serve"]
SERVERS["serve-accesslog"] = SERVERS["serve"]
SERVERS["uvicorn-accesslog"] = SERVERS["uvicorn"]
VARIANT_ENV: dict[str, dict[str, str]] = {
    "serve+metrics": {"TIDINGS_METRICS_TOKEN": "bench-metrics-token-0123456789"},
    "serve-accesslog": {"TIDINGS_LOG_LEVEL": "warning"},
    "uvicorn-accesslog": {"TIDINGS_LOG_LEVEL": "warning"},
}


def _wait_ready(proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def run_one(
    name: str, cmd: list[str], duration: int, extra_env: dict[str, str], script: str = "post"
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "TIDINGS_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "TIDINGS_BOOTSTRAP_API_KEY": KEY,
            "TIDINGS_RATE_LIMIT": "0",
            **VARIANT_ENV.get(name, {}),
            **extra_env,
        }
        # Logs go to a file, as in production: a pipe nobody reads would block.
        log = open(f"{tmp}/server.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        try:
            _wait_ready(proc)
            r = httpx.post(
                f"http://127.0.0.1:{PORT}/v1/queues",
                json={"name": "bench"},
                headers={"X-API-KEY": KEY},
            )
            qid = r.json()["queue"]["id"]
            path = f"/v1/queues/{qid}" + ("/messages" if script == "post" else "")
            out = subprocess.run(
                ["wrk", "-t1", "-c64", f"-d{duration}s", "--latency", "-s",
                 str(HERE / f"{script}.lua"), f"http://127.0.0.1:{PORT}"],
                env={**env, "QUEUE_PATH": path, "API_KEY": KEY},
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(15)
            log.close()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(
        f"  {name:<12} {rate:>9.0f} req/s  p50 {p50.group(1) if p50 else '?'}"
        f"  p99 {p99.group(1) if p99 else '?'}"
        + (f"  NON-2xx {errors.group(1)}" if errors else ""),
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--only", default=",".join(SERVERS))
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every server")
    parser.add_argument("--script", choices=["post", "get"], default="post")
    args = parser.parse_args()
    names = args.only.split(",")
    extra = dict(e.split("=", 1) for e in args.env)
    results: dict[str, list[float]] = {n: [] for n in names}
    for round_no in range(args.rounds):
        order = names if round_no % 2 == 0 else list(reversed(names))
        print(f"round {round_no + 1}", flush=True)
        for name in order:
            results[name].append(run_one(name, SERVERS[name], args.duration, extra, args.script))
    base = statistics.median(results[names[0]])
    print("median of rounds:")
    for name in names:
        med = statistics.median(results[name])
        print(f"  {name:<12} {med:>9.0f} req/s  {med / base:.2f}x {names[0]}")


if __name__ == "__main__":
    main()
