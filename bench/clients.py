"""HTTP clients for delivery, side by side: ``python -m bench.clients [--count N] [--rounds R]``.

Each variant posts the body a delivery carries, with webhook headers, ``--count``
times with 16 in flight (the engine's per-listener cap) to the bench receiver, in a
process of its own; rounds alternate the variants. Printed per variant: requests/s
and CPU of the client process per request (what the engine would spend). Variants:

- ``aiohttp``: the raw baseline of ``bench delivery`` (``bench.rawclient``);
- ``sender``: tidings' own ``Sender`` (tidings/delivery/sender.py: HTTP/1.1 over asyncio
  with llhttp, destination guard, keep-alive pool, deadline, capped read). Until issue 18
  it ran on aiohttp; the hand-written ``lean`` upper bound that was measured beside it
  (15 us CPU/request, Content-Length answers only) is what it replaced;
- ``pyreqwest``: a Rust-core client (not a dependency of tidings: ask for it with
  ``--variants`` where it is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import uvloop

from bench.procs import load, receiver
from bench.rawclient import BODY
from bench.stats import median

CONCURRENCY = 16
HEADERS = {
    "Content-Type": "application/json",
    "webhook-timestamp": "1795000000",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
}


async def _aiohttp(url: str, count: int) -> None:
    from bench.rawclient import post_all

    await post_all(url, count, CONCURRENCY)


async def _sender(url: str, count: int) -> None:
    from ipaddress import ip_network

    from tidings.delivery.sender import Sender
    from tidings.destinations import DestinationPolicy

    sender = Sender(DestinationPolicy([ip_network("127.0.0.0/8")]), CONCURRENCY)
    left = iter(range(count))

    async def worker() -> None:
        for i in left:
            answer = await sender.request(
                "POST", url, 10.0, BODY, {**HEADERS, "webhook-id": f"s-{i}"}
            )
            assert answer.status == 200, answer

    try:
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    finally:
        await sender.close()


async def _pyreqwest(url: str, count: int) -> None:
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder

    left = iter(range(count))
    builder = ClientBuilder().max_connections(CONCURRENCY).follow_redirects(False)
    async with builder.timeout(timedelta(seconds=10)).build() as client:

        async def worker() -> None:
            for i in left:
                request = client.post(url).headers({**HEADERS, "webhook-id": f"r-{i}"})
                answer = await request.body_bytes(BODY).build().send()
                await answer.bytes()
                assert answer.status == 200

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


VARIANTS = {"aiohttp": _aiohttp, "sender": _sender, "pyreqwest": _pyreqwest}


def _one(variant: str, url: str, count: int) -> None:
    """In a fresh process: print ``requests/s cpu_us_per_request``."""

    async def run() -> tuple[float, float]:
        cpu, wall = time.process_time(), time.monotonic()
        await VARIANTS[variant](url, count)
        return count / (time.monotonic() - wall), (time.process_time() - cpu) / count * 1e6

    rate, cpu = uvloop.run(run())
    print(f"{rate:.1f} {cpu:.1f}")


async def compare(variants: list[str], count: int, rounds: int) -> None:
    runs: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    async with receiver() as recv:
        url = recv.url + "/notify/clients"
        for n in range(rounds):
            order = variants if n % 2 == 0 else variants[::-1]
            for variant in order:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.clients", "--one", variant, url, str(count),
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                stdout, stderr = await proc.communicate()
                if proc.returncode != 0:
                    print(f"{variant}: failed: {stderr.decode().strip()[-300:]}", flush=True)
                    continue
                rate, cpu = (float(x) for x in stdout.split())
                runs[variant].append((rate, cpu))
                print(f"round {n + 1} {variant}: {rate:,.0f}/s, {cpu:.0f} us CPU/request"
                      f" (load {load()[0]})", flush=True)  # fmt: skip
    base = median([r for r, _ in runs["aiohttp"]]) if runs.get("aiohttp") else None
    for variant, values in runs.items():
        if not values:
            continue
        rate, cpu = median([r for r, _ in values]), median([c for _, c in values])
        vs = f", {rate / base:.2f}x aiohttp" if base else ""
        print(f"{variant}: median {rate:,.0f}/s, {cpu:.0f} us CPU per request{vs}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    # pyreqwest is not a dependency: ``--variants aiohttp,sender,pyreqwest`` where installed.
    parser.add_argument("--variants", default="aiohttp,sender")
    parser.add_argument("--one", nargs=3, metavar=("VARIANT", "URL", "COUNT"))
    args = parser.parse_args()
    if args.one:
        _one(args.one[0], args.one[1], int(args.one[2]))
        return
    uvloop.run(compare(args.variants.split(","), args.count, args.rounds))


if __name__ == "__main__":
    main()
