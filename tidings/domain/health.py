"""Listener health (SPEC §11): the circuit breaker and the automatic disable, as pure
rules. Storage applies them to the listener's row inside the engine's record batch
(storage/health.py); the in-memory store of the engine's tests applies the same ones.

    healthy --(the last ``threshold`` attempts failed)--> failing
    failing --(cool-down over: one trial; it fails)--> failing, cool-down doubled (<= 900 s)
    failing --(a trial succeeds)--> healthy
    failing --(failing for ``disable_after``, at a failed trial)--> disabled (reason failing)
    any     --(the endpoint answers 410 Gone)--> disabled (reason gone)
    disabled --(PUT status enabled)--> healthy
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from tidings.domain.models import DisabledReason, ListenerStatus

MAX_COOLDOWN_MS = 900_000
GONE = 410


class BreakerState(StrEnum):
    """The ``health`` column: ``disabled`` is the listener's ``status``, not a state here."""

    HEALTHY = "healthy"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int  # TIDINGS_BREAKER_THRESHOLD
    cooldown_ms: int  # TIDINGS_BREAKER_COOLDOWN, the first cool-down
    disable_after_ms: int  # TIDINGS_DISABLE_AFTER
    max_cooldown_ms: int = MAX_COOLDOWN_MS


@dataclass(frozen=True, slots=True)
class HealthRow:
    """The health columns of one listener."""

    status: ListenerStatus = ListenerStatus.ENABLED
    disabled_reason: DisabledReason | None = None
    state: BreakerState = BreakerState.HEALTHY
    consecutive_failures: int = 0
    last_success_at: int | None = None
    last_failure_at: int | None = None
    failing_since: int | None = None
    open_until: int = 0  # while failing: no attempt before this
    cooldown_ms: int = 0


@dataclass(slots=True)  # not frozen: one per attempt (storage/deliveries.py Claimed)
class Outcome:
    """One attempt's outcome as the breaker sees it."""

    at: int
    ok: bool
    status: int | None
    trial: bool


class Change(StrEnum):
    """A transition, reported as the health event of the same name."""

    FAILING = "listener_failing"
    RECOVERED = "listener_recovered"
    DISABLED = "listener_disabled"
    ENABLED = "listener_enabled"


def apply(
    row: HealthRow, outcomes: list[Outcome], policy: BreakerPolicy, now: int
) -> tuple[HealthRow, list[tuple[Change, DisabledReason | None]]]:
    """The row after these outcomes (in the order they happened) and its transitions."""
    changes: list[tuple[Change, DisabledReason | None]] = []
    for o in outcomes:
        if o.ok:
            row = replace(row, last_success_at=o.at)
            if row.state is BreakerState.HEALTHY:
                row = replace(row, consecutive_failures=0)
            elif o.trial and row.status is ListenerStatus.ENABLED:
                # Only a trial closes the breaker: an attempt that was already in
                # flight when it opened says little about the endpoint now.
                row = _healthy(row)
                changes.append((Change.RECOVERED, None))
            continue
        row = replace(row, consecutive_failures=row.consecutive_failures + 1, last_failure_at=o.at)
        if row.status is ListenerStatus.DISABLED:
            continue  # an attempt that was in flight when it was disabled
        if o.status == GONE:
            row = replace(row, status=ListenerStatus.DISABLED, disabled_reason=DisabledReason.GONE)
            changes.append((Change.DISABLED, DisabledReason.GONE))
        elif row.state is BreakerState.HEALTHY:
            if row.consecutive_failures >= policy.threshold:
                row = replace(
                    row,
                    state=BreakerState.FAILING,
                    failing_since=o.at,
                    cooldown_ms=policy.cooldown_ms,
                    open_until=now + policy.cooldown_ms,
                )
                changes.append((Change.FAILING, None))
        elif o.trial:
            cooldown = min(2 * max(row.cooldown_ms, policy.cooldown_ms), policy.max_cooldown_ms)
            row = replace(row, cooldown_ms=cooldown, open_until=now + cooldown)
            since = row.failing_since if row.failing_since is not None else o.at
            if now - since >= policy.disable_after_ms:
                row = replace(
                    row, status=ListenerStatus.DISABLED, disabled_reason=DisabledReason.FAILING
                )
                changes.append((Change.DISABLED, DisabledReason.FAILING))
    return row, changes


def _healthy(row: HealthRow) -> HealthRow:
    return replace(
        row,
        state=BreakerState.HEALTHY,
        consecutive_failures=0,
        failing_since=None,
        open_until=0,
        cooldown_ms=0,
    )


def enabled(row: HealthRow) -> HealthRow:
    """``PUT {"status": "enabled"}``: health reset (SPEC §11)."""
    return replace(_healthy(row), status=ListenerStatus.ENABLED, disabled_reason=None)


def disabled(row: HealthRow) -> HealthRow:
    """``PUT {"status": "disabled"}``."""
    return replace(row, status=ListenerStatus.DISABLED, disabled_reason=DisabledReason.MANUAL)
