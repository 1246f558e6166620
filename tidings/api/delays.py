"""``deliver_at`` / ``delay`` of published messages (SPEC §9): when each may first go out."""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import UNSET

from tidings.api import wire
from tidings.domain.errors import BadRequest, Violation

Item = wire.CreateMessage | wire.BatchItem


def _at(i: int, batch: bool, field: str) -> str:
    return f"$.messages[{i}].{field}" if batch else f"$.{field}"


def both_given(item: Item, i: int, batch: bool) -> Violation | None:
    """The refusal of an item that gives both ``deliver_at`` and ``delay`` (a 400)."""
    if item.deliver_at is UNSET or item.delay is UNSET:
        return None
    return Violation(_at(i, batch, "delay"), "give deliver_at or delay, not both")


def schedule(
    items: Sequence[Item], created_at: int, max_delay_s: float, batch: bool
) -> tuple[list[int | None], dict[int, Violation]]:
    """Each item's ``deliver_at`` to store (None: it asked for none; a past time is
    stored as ``created_at``, "now"), and the items that ask for too late a time.

    Raises :class:`BadRequest` naming every item that gives both fields."""
    malformed = [v for i, item in enumerate(items) if (v := both_given(item, i, batch))]
    if malformed:
        raise BadRequest("deliver_at or delay is malformed.", malformed)
    max_delay_ms = int(max_delay_s * 1000)
    due: list[int | None] = []
    late: dict[int, Violation] = {}
    for i, item in enumerate(items):
        if item.deliver_at is not UNSET:
            at, field = item.deliver_at, "deliver_at"
        elif item.delay is not UNSET:
            # Compared in seconds first: a huge float times 1000 would not fit an int.
            ahead_s = min(item.delay, max_delay_s + 1)
            at, field = created_at + round(ahead_s * 1000), "delay"
        else:
            due.append(None)
            continue
        if at - created_at > max_delay_ms:
            late[i] = Violation(
                _at(i, batch, field),
                f"more than TIDINGS_MAX_DELAY ({max_delay_s:g} s) ahead",
            )
        due.append(max(at, created_at))
    return due, late
