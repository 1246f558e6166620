"""The retry policy (SPEC §5), pure: an attempt's outcome -> what happens next.

The first attempt is immediate; ``schedule[i]`` is the delay before retry ``i + 1``,
each with ±20 % jitter. A ``Retry-After`` on 429/503 replaces the delay, capped at
the schedule's largest delay. When the last attempt fails the delivery is missed.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Sequence
from dataclasses import dataclass

from tidings.domain.models import DeliveryState

JITTER = 0.2
_HONOURS_RETRY_AFTER = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Next:
    state: DeliveryState
    next_attempt_at: int | None  # ms; None unless still pending


# The outcomes without a time, built once (frozen, so shared): most attempts succeed.
_DELIVERED = Next(DeliveryState.DELIVERED, None)
_MISSED = Next(DeliveryState.MISSED, None)


def is_success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def parse_retry_after(value: str | None, now_ms: int) -> float | None:
    """Seconds to wait, from delta-seconds or an HTTP date; ``None`` if absent or junk.

    Never raises: the header is the receiver's, read on every answer. Delta-seconds are
    ASCII digits only (``str.isdigit`` also takes ``²``, which ``float`` refuses); a
    date past ``datetime``'s years is junk, not an OverflowError."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)  # however many digits: at most inf, capped by the caller
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now_ms / 1000)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def after_attempt(
    schedule_s: Sequence[float],
    attempts: int,
    status: int | None,
    retry_after_s: float | None,
    now_ms: int,
    rng: random.Random | None = None,
) -> Next:
    """``attempts`` counts the attempt just made (1 after the first)."""
    if is_success(status):
        return _DELIVERED
    if attempts > len(schedule_s):
        return _MISSED
    if retry_after_s is not None and status in _HONOURS_RETRY_AFTER:
        delay_s = min(retry_after_s, max(schedule_s))
    else:
        delay_s = schedule_s[attempts - 1] * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return Next(DeliveryState.PENDING, now_ms + round(delay_s * 1000))
