"""Ids and clocks.

Ids are 120 random bits behind a 48-bit millisecond timestamp, in lower-case
base32hex so that sorting ids sorts by creation time. Within one process they are
strictly increasing, so "oldest first" lists can order by id alone: an id made in the
millisecond of the one before it takes that one's random part plus a random step of 1
to 2^80 (not plus 1: SPEC §1 ids are unguessable, and a known id must not tell the
next one). Should a step run past 120 bits (at 10,000 ids a second, about once in
eight years), the id moves to the next millisecond with fresh random bits.
"""

from __future__ import annotations

import os
import secrets
import threading
import time

_RANDOM_BITS = 120
_ALPHABET = "0123456789abcdefghijklmnopqrstuv"  # base32hex, lower case
# Two base32hex digits per 10 bits: 17 table lookups spell the 168-bit id (+2 pad bits,
# which are 0, exactly as RFC 4648 base32hex of the 21 big-endian bytes without "=").
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(160, -10, -10)
# The random step between two ids of one millisecond: 80 bits, so a known id leaves
# ~2^79 guesses for the next one.
_STEP_BYTES = 10
_lock = threading.Lock()
_last_ms = 0
_last_random = 0
# Randomness is read from the OS in blocks: one getrandom() per id was a tenth of
# the CPU of a POST on the ingest path.
_POOL_BYTES = 4096
_pool = b""
_pool_at = 0


def _random_bits(nbytes: int = _RANDOM_BITS // 8) -> int:
    global _pool, _pool_at
    if _pool_at + nbytes > len(_pool):
        _pool, _pool_at = os.urandom(_POOL_BYTES), 0
    start = _pool_at
    _pool_at += nbytes
    return int.from_bytes(_pool[start:_pool_at], "big")


def _forget_after_fork() -> None:
    """A forked process (granian's API workers are forked from ``tidings serve``, which
    made ids while bootstrapping) must not replay its parent's random pool: two workers
    would make the same ids in the same millisecond."""
    global _lock, _pool, _pool_at, _last_ms, _last_random
    _lock = threading.Lock()  # in case a thread of the parent held it
    _pool, _pool_at, _last_ms, _last_random = b"", 0, 0, 0


os.register_at_fork(after_in_child=_forget_after_fork)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# The id's top 80 bits (the millisecond and the random part's top 32) change about once
# a millisecond, not once an id: spelled once and reused. An id in 1.7-1.9 us instead
# of 2.7-3.0 (docs/benchmarks.md); a message costs four (its own, its event, its
# attempt and the attempt's event).
_LOW_BITS = 90
_LOW_MASK = (1 << _LOW_BITS) - 1
_WORD = (1 << 30) - 1
_high: tuple[int, str] = (-1, "")


def new_id() -> str:
    global _last_ms, _last_random, _high
    with _lock:
        ms = now_ms()
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_random + 1 + _random_bits(_STEP_BYTES)
            if rand >> _RANDOM_BITS:  # past 120 bits: the next millisecond, afresh
                ms, rand = ms + 1, _random_bits()
        else:
            rand = _random_bits()
        _last_ms, _last_random = ms, rand
    value = ((ms << _RANDOM_BITS) | rand) << 2
    high, prefix = _high
    if value >> _LOW_BITS != high:
        high = value >> _LOW_BITS
        prefix = "".join([_PAIRS[(high >> shift) & 1023] for shift in range(70, -10, -10)])
        _high = (high, prefix)  # one tuple: a thread reads a pair that goes together
    low = value & _LOW_MASK  # nine lookups on small ints, not 17 on a 170-bit one
    a, b, c = low >> 60, (low >> 30) & _WORD, low & _WORD
    p = _PAIRS
    return (
        prefix + p[a >> 20] + p[(a >> 10) & 1023] + p[a & 1023] + p[b >> 20]
        + p[(b >> 10) & 1023] + p[b & 1023] + p[c >> 20] + p[(c >> 10) & 1023] + p[c & 1023]
    )  # fmt: skip


def new_secret_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def id_floor(ms: int) -> str:
    """The smallest id made at millisecond ``ms``: ids made before it sort below it."""
    value = (ms << _RANDOM_BITS) << 2
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])
