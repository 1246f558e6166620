"""What one wake-up costs on this machine: ``python -m bench.wakeup [--rounds 20000]``.

Two threads pass a byte back and forth over two pipes, each blocking in ``read`` until
the other writes: every round trip is two sleeps and two wake-ups. Prints the wall
time and this process's CPU per round trip. Every cross-thread or cross-process
hand-off tidings makes (a read on a reader thread, a PostgreSQL round trip, granian
handing a request to the event loop) pays about this; compare machines with it
(docs/benchmarks.md: 67 us wall, 49 us CPU on issue 18's last machine).
"""

from __future__ import annotations

import argparse
import os
import threading
import time


def round_trip(rounds: int) -> tuple[float, float]:
    """Microseconds of wall time and of CPU per round trip."""
    to_peer, from_peer = os.pipe(), os.pipe()

    def peer() -> None:
        for _ in range(rounds):
            os.read(to_peer[0], 1)
            os.write(from_peer[1], b"x")

    thread = threading.Thread(target=peer)
    thread.start()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        os.write(to_peer[1], b"x")
        os.read(from_peer[0], 1)
    thread.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for fd in (*to_peer, *from_peer):
        os.close(fd)
    return wall / rounds * 1e6, cpu / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wakeup", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    wall, cpu = round_trip(args.rounds)
    print(f"thread ping-pong over pipes: {wall:.1f} us wall, {cpu:.1f} us CPU per round trip")


if __name__ == "__main__":
    main()
