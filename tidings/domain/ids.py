"""Ids and clocks.

Ids are 120 random bits behind a 48-bit millisecond timestamp, in lower-case
base32hex so that sorting ids sorts by creation time. Within one process they are
strictly increasing (the random part is bumped when the clock has not moved), so
"oldest first" lists can order by id alone.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time

_RANDOM_BITS = 120
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id() -> str:
    global _last_ms, _last_random
    with _lock:
        ms = now_ms()
        if ms <= _last_ms:
            ms = _last_ms
            rand = (_last_random + 1) % (1 << _RANDOM_BITS)
        else:
            rand = secrets.randbits(_RANDOM_BITS)
        _last_ms, _last_random = ms, rand
    raw = ((ms << _RANDOM_BITS) | rand).to_bytes(21, "big")
    return base64.b32hexencode(raw).decode("ascii").rstrip("=").lower()


def new_secret_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
