"""The retry policy and liveness judging, pure functions (SPEC §5)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tidings.domain.liveness import judge, record_probe
from tidings.domain.models import DeliveryState, LivenessState
from tidings.domain.retry import after_attempt, parse_retry_after

SCHEDULE = (0.2, 0.4, 0.8)
NOW = 1_700_000_000_000


def test_success_is_delivered_whatever_the_attempt() -> None:
    for attempts in (1, 4):
        assert after_attempt(SCHEDULE, attempts, 204, None, NOW).state is DeliveryState.DELIVERED


@pytest.mark.parametrize("status", [None, 301, 404, 500])
def test_failure_schedules_the_next_delay_with_jitter(status: int | None) -> None:
    rng = random.Random(7)
    for attempts, delay_s in enumerate(SCHEDULE, start=1):
        delays = [
            (after_attempt(SCHEDULE, attempts, status, None, NOW, rng).next_attempt_at or 0) - NOW
            for _ in range(300)
        ]
        assert min(delays) >= delay_s * 1000 * 0.8 - 1
        assert max(delays) <= delay_s * 1000 * 1.2 + 1
        assert max(delays) - min(delays) > delay_s * 1000 * 0.2  # jitter is really applied


def test_schedule_of_three_delays_means_four_attempts() -> None:
    assert after_attempt(SCHEDULE, 3, 500, None, NOW).state is DeliveryState.PENDING
    last = after_attempt(SCHEDULE, 4, 500, None, NOW)
    assert last == type(last)(DeliveryState.MISSED, None)
    assert after_attempt((), 1, 500, None, NOW).state is DeliveryState.MISSED


def test_retry_after_replaces_the_delay_on_429_and_503_only() -> None:
    for status in (429, 503):
        nxt = after_attempt((1.0, 60.0), 1, status, 30.0, NOW)
        assert nxt.next_attempt_at == NOW + 30_000
    capped = after_attempt((1.0, 60.0), 1, 429, 3600.0, NOW)
    assert capped.next_attempt_at == NOW + 60_000  # capped at the largest delay
    ignored = after_attempt((1.0, 60.0), 1, 500, 30.0, NOW, random.Random(1))
    assert ignored.next_attempt_at is not None and ignored.next_attempt_at - NOW < 1300


def test_parse_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    when = datetime.fromtimestamp(NOW / 1000, UTC) + timedelta(seconds=90)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == pytest.approx(90, abs=1)
    past = datetime.fromtimestamp(NOW / 1000, UTC) - timedelta(seconds=90)
    assert parse_retry_after(format_datetime(past, usegmt=True), NOW) == 0.0
    for junk in (None, "", "soon", "-5", "1.5e9x"):
        assert parse_retry_after(junk, NOW) is None


@pytest.mark.parametrize(
    "junk",
    [
        "\u00b2",  # a digit to str.isdigit, not to float()
        "\u00b9\u00b3",
        "\u0661",  # ARABIC-INDIC DIGIT ONE: a digit, and float() takes it: not delta-seconds
        "1 Jan 99999999999999999999 00:00:00 GMT",  # past datetime's years
        "Mon, 01 Jan 10000 00:00:00 GMT",
        "Mon, 32 Jan 2026 00:00:00 GMT",
        "Mon, 01 Jan 2026 25:61:61 GMT",
    ],
)
def test_a_receivers_junk_retry_after_is_ignored_never_an_error(junk: str) -> None:
    """The header is the receiver's: whatever it holds, an answer is recorded (a 200 with
    an odd Retry-After was never recorded, and sent again every lease)."""
    assert parse_retry_after(junk, NOW) is None


def test_delta_seconds_of_any_length_are_capped_not_an_error() -> None:
    assert parse_retry_after("9" * 5000, NOW) == float("inf")
    nxt = after_attempt([0.2, 0.5, 1], 1, 503, parse_retry_after("9" * 5000, NOW), NOW)
    assert nxt.next_attempt_at == NOW + 1000


def test_liveness_is_judged_on_the_last_three_probes() -> None:
    assert judge("") is LivenessState.UNKNOWN
    recent = ""
    states = []
    for ok in (True, True, False, False, False, True):
        recent = record_probe(recent, ok)
        states.append(judge(recent))
    assert states == [
        LivenessState.STABLE,
        LivenessState.STABLE,
        LivenessState.UNSTABLE,
        LivenessState.UNSTABLE,
        LivenessState.DOWN,
        LivenessState.UNSTABLE,
    ]
    assert judge(record_probe("", False)) is LivenessState.DOWN  # fewer while fewer exist
