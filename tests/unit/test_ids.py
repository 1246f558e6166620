"""Ids: base32hex of (48-bit ms clock, 120 random bits), strictly increasing in a process."""

from __future__ import annotations

import base64
import itertools
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
    ms = ids.now_ms() + 10_000  # a clock that does not move: the random part steps up
    monkeypatch.setattr(ids, "now_ms", lambda: ms)
    monkeypatch.setattr(ids, "_last_ms", ms)
    monkeypatch.setattr(ids, "_last_random", (1 << 88) - 3)
    monkeypatch.setattr(ids, "_STEP_BYTES", 0)  # steps of exactly 1: the carry is known
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


def test_ids_of_one_millisecond_do_not_tell_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """SPEC §1: ids are unguessable. Made in one millisecond, each id is the one before
    plus a random step of 1 to 2^80: increasing, but no id tells the next."""
    ms = ids.now_ms() + 20_000  # a clock that does not move
    monkeypatch.setattr(ids, "now_ms", lambda: ms)
    made = [ids.new_id() for _ in range(200)]
    assert all(_spelled(v) >> 120 == ms for v in made)
    parts = [_random_part(v) for v in made]
    steps = [b - a for a, b in itertools.pairwise(parts)]
    assert all(1 <= s <= 1 << 80 for s in steps)
    assert len(set(steps)) == len(steps)  # 80 random bits each: no two alike
    assert sum(s > 1 << 70 for s in steps) > 190  # not small ones a client could walk


def test_a_step_past_120_bits_moves_to_the_next_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ms = ids.now_ms() + 30_000
    monkeypatch.setattr(ids, "now_ms", lambda: ms)
    monkeypatch.setattr(ids, "_last_ms", ms)
    monkeypatch.setattr(ids, "_last_random", (1 << 120) - 2)
    last = base64.b32hexencode(((ms << 120) | ((1 << 120) - 2)).to_bytes(21, "big"))
    last_id = last.decode().lower().rstrip("=")
    made = [ids.new_id() for _ in range(3)]
    assert [_spelled(v) >> 120 for v in made] == [ms + 1] * 3
    assert [last_id, *made] == sorted([last_id, *made])
    assert len(set(made)) == 3
