"""Ids: base32hex of (48-bit ms clock, 120 random bits), strictly increasing in a process."""

from __future__ import annotations

import base64
import re

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
