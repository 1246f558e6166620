"""Ids: base32hex of (48-bit ms clock, 120 random bits), strictly increasing in a process."""

from __future__ import annotations

import base64
import os
import re
import time

from tidings.domain import ids


def test_ids_are_rfc4648_base32hex_of_clock_and_randomness() -> None:
    made = [ids.new_id() for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    for value in made[-50:]:
        assert re.fullmatch(r"[0-9a-v]{34}", value)
        raw = base64.b32hexdecode(value.upper() + "======")
        assert len(raw) == 21
        ms = int.from_bytes(raw, "big") >> 120
        assert abs(ms - ids.now_ms()) < 60_000


def _random_part(value: str) -> int:
    raw = base64.b32hexdecode(value.upper() + "======")
    return int.from_bytes(raw, "big") & ((1 << 120) - 1)


def test_a_forked_process_draws_randomness_of_its_own() -> None:
    """granian forks the API workers from ``tidings serve``, which made ids while
    bootstrapping: a worker replaying its parent's random pool would make the ids its
    sibling makes in the same millisecond."""
    ids.new_id()  # the pool is filled here, before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, in a later millisecond
        time.sleep(0.005)
        os.write(write, ids.new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    time.sleep(0.005)
    assert _random_part(child) != _random_part(ids.new_id())
