"""Usage events (SPEC §6): the twelve types, their kinds, and the stats windows.

An event names the resources it concerns by ``{id, name}`` as they were when it
was stored, so it reads the same after those resources are renamed or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


class EventType(StrEnum):
    API_KEY_ADDED = "api_key_added"
    API_KEY_UPDATED = "api_key_updated"
    API_KEY_DELETED = "api_key_deleted"
    QUEUE_ADDED = "queue_added"
    QUEUE_UPDATED = "queue_updated"
    QUEUE_DELETED = "queue_deleted"
    LISTENER_ADDED = "listener_added"
    LISTENER_UPDATED = "listener_updated"
    LISTENER_DELETED = "listener_deleted"
    MESSAGE_ADDED = "message_added"
    MESSAGE_PUBLISHED_OK = "message_published_ok"
    MESSAGE_PUBLISHED_NOT_OK = "message_published_not_ok"
    # Listener health (SPEC §11), beside discue's twelve.
    LISTENER_FAILING = "listener_failing"
    LISTENER_RECOVERED = "listener_recovered"
    LISTENER_DISABLED = "listener_disabled"
    LISTENER_ENABLED = "listener_enabled"


# Health events are also posted into the organization's alerts queue (SPEC §11).
HEALTH_EVENTS = frozenset(
    {
        EventType.LISTENER_FAILING,
        EventType.LISTENER_RECOVERED,
        EventType.LISTENER_DISABLED,
        EventType.LISTENER_ENABLED,
    }
)


# The values of ``GET /events?events=``; "all" means no filter.
KINDS = ("api_keys", "listeners", "messages", "queues")
ALL_KINDS = "all"
_KIND_BY_PREFIX = {"api_key_": "api_keys", "queue_": "queues", "listener_": "listeners"}


def kind_of(event_type: EventType) -> str:
    """The filter kind of a type; both ``message_published_*`` are ``messages``."""
    for prefix, kind in _KIND_BY_PREFIX.items():
        if event_type.value.startswith(prefix):
            return kind
    return "messages"


# Ref and NewEvent are not frozen: the engine builds them per attempt, and a frozen
# dataclass's __init__ costs ~0.1 us a field more (storage/deliveries.py Claimed).
@dataclass(slots=True)
class Ref:
    """``{id, name}`` of a resource an event concerns (a message's name may be null)."""

    id: str
    name: str | None


@dataclass(slots=True)
class NewEvent:
    """An event to record inside the transaction of the change it reports."""

    org_id: str
    type: EventType
    api_key: Ref | None = None
    queue: Ref | None = None
    listener: Ref | None = None
    message: Ref | None = None
    reason: str | None = None  # listener_disabled: gone | failing | manual


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    org_id: str
    type: EventType
    stored_at: int
    api_key: Ref | None = None
    queue: Ref | None = None
    listener: Ref | None = None
    message: Ref | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Events strictly after this (``stored_at``, ``id``) pair."""

    stored_at: int
    id: str


MINUTES_PER_HOUR = 60
MINUTES_PER_DAY = 24 * MINUTES_PER_HOUR


def window_starts(now_ms: int) -> dict[str, int]:
    """First minute (epoch minutes, UTC) of each stats window; each ends with ``now``'s minute.

    Windows are whole minutes: ``last_1_hours`` is the current minute and the 59
    before it, ``last_24_hours`` the current minute and the 1439 before it, and
    ``today_so_far`` every minute since 00:00 UTC.
    """
    minute = now_ms // MINUTE_MS
    return {
        "last_24_hours": minute - MINUTES_PER_DAY + 1,
        "last_1_hours": minute - MINUTES_PER_HOUR + 1,
        "today_so_far": minute - minute % MINUTES_PER_DAY,
    }


@dataclass(frozen=True, slots=True, order=True)
class Buckets:
    """Counter buckets of one size covering minutes ``start`` (inclusive) to ``end``."""

    span_minutes: int  # 1 or 60
    start: int
    end: int


def covering_buckets(first: int, last: int) -> list[Buckets]:
    """Cover minutes ``first..last`` with hour buckets where whole hours fit, minutes
    at the edges, so a day's window reads at most 24 + 2 x 59 buckets per type."""
    hour_start = -(-first // MINUTES_PER_HOUR) * MINUTES_PER_HOUR
    hour_end = (last + 1) // MINUTES_PER_HOUR * MINUTES_PER_HOUR
    if hour_start >= hour_end:
        return [Buckets(1, first, last + 1)]
    parts = [
        Buckets(1, first, hour_start),
        Buckets(MINUTES_PER_HOUR, hour_start, hour_end),
        Buckets(1, hour_end, last + 1),
    ]
    return [p for p in parts if p.start < p.end]


STATS_WINDOWS = ("last_24_hours", "last_1_hours", "today_so_far")
Stats = dict[str, dict[str, int]]  # window name -> event type -> count
