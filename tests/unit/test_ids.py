"""Ids: base32hex of (48-bit ms clock, 120 random bits), strictly increasing in a process."""

from __future__ import annotations

import base64
import os
import re
import time

import pytest

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


def _spelled(value: str) -> int:
    return int.from_bytes(base64.b32hexdecode(value.upper() + "======"), "big")


def test_every_id_spells_its_value_also_when_the_random_part_carries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The top of an id is spelled once and reused while it stays the same: an
    # increment that carries into it must spell it again.
    made = [ids.new_id() for _ in range(2000)]
    ms = ids.now_ms() + 10_000  # a clock that does not move: the random part counts up
    monkeypatch.setattr(ids, "now_ms", lambda: ms)
    monkeypatch.setattr(ids, "_last_ms", ms)
    monkeypatch.setattr(ids, "_last_random", (1 << 88) - 3)
    carried = [ids.new_id() for _ in range(6)]
    assert [_random_part(v) for v in carried] == [(1 << 88) - 2 + i for i in range(6)]
    assert all(_spelled(v) >> 120 == ms for v in carried)
    made += carried
    assert made == sorted(made) and len(set(made)) == len(made)
    for value in made:
        assert re.fullmatch(r"[0-9a-v]{34}", value)


def _random_part(value: str) -> int:
    return _spelled(value) & ((1 << 120) - 1)


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
