"""Pure parts of usage events: kinds, stats windows, wire shape, the retention setting."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from tidings.api.wire import EventCounts
from tidings.config import SettingsError, load_settings
from tidings.domain.clock import ManualClock
from tidings.domain.events import KINDS, EventType, covering_buckets, kind_of, window_starts


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def test_every_type_has_the_kind_its_name_says() -> None:
    by_word = {"api": "api_keys", "queue": "queues", "listener": "listeners", "message": "messages"}
    assert set(by_word.values()) == set(KINDS)
    for event_type in EventType:
        assert kind_of(event_type) == by_word[event_type.value.split("_")[0]]


def test_stats_windows_are_whole_minutes_and_utc_days() -> None:
    now = _ms(2026, 3, 11, 0, 0, 17)
    starts = window_starts(now)
    assert starts["today_so_far"] * 60_000 == _ms(2026, 3, 11)
    assert starts["last_1_hours"] * 60_000 == _ms(2026, 3, 10, 23, 1)
    assert starts["last_24_hours"] * 60_000 == _ms(2026, 3, 10, 0, 1)
    late = window_starts(_ms(2026, 3, 11, 23, 59, 59))
    assert late["today_so_far"] == starts["today_so_far"]
    assert late["last_24_hours"] == starts["today_so_far"]  # the day so far is the last 24 h


@pytest.mark.parametrize("first", [0, 1, 59, 60, 61, 119, 120, 1000, 1441])
@pytest.mark.parametrize("length", [1, 2, 59, 60, 61, 119, 120, 1439, 1440])
def test_covering_buckets_cover_each_minute_exactly_once(first: int, length: int) -> None:
    last = first + length - 1
    covered: list[int] = []
    for part in covering_buckets(first, last):
        assert part.start < part.end
        assert part.span_minutes in (1, 60)
        if part.span_minutes == 60:  # whole, aligned hours only
            assert part.start % 60 == 0 and part.end % 60 == 0
        covered += range(part.start, part.end)
    assert covered == list(range(first, last + 1))
    minutes = sum(p.end - p.start for p in covering_buckets(first, last) if p.span_minutes == 1)
    assert minutes <= 2 * 59 or length < 60


def test_stats_wire_shape_has_the_twelve_types_and_the_four_health_events() -> None:
    fields = [f.name for f in msgspec.structs.fields(EventCounts)]
    assert fields == [t.value for t in EventType]
    assert len(fields) == 16


def test_retention_setting() -> None:
    assert load_settings({}).event_retention_s == 7 * 86_400
    assert load_settings({"TIDINGS_EVENT_RETENTION": "86400"}).event_retention_s == 86_400
    assert load_settings({"TIDINGS_EVENT_RETENTION": "1209600.5"}).event_retention_s == 1209600.5
    for bad in ("86399", "0", "-5", "a week"):
        with pytest.raises(SettingsError, match="TIDINGS_EVENT_RETENTION"):
            load_settings({"TIDINGS_EVENT_RETENTION": bad})
    with pytest.raises(SettingsError, match="TIDINGS_EVENT_RETENTION"):
        load_settings({}).with_overrides(event_retention_s=3600.0)


def test_manual_clock() -> None:
    clock = ManualClock(5)
    clock.advance(10)
    assert clock.now_ms() == 15
    clock.set(3)
    assert clock.now_ms() == 3
