"""An in-memory :class:`~tidings.delivery.port.DeliveryStore` for fast tests of the
engine's scheduling, in the manner of procrastinate's in-memory connector.

It keeps the rules of the SQL it stands in for (storage/deliveries.py, listeners.py,
engines.py): due means pending, ``next_attempt_at <= now`` and the lease run out;
a claim goes listener by listener in id order after a cursor, skips listeners that
are down or busy, takes at most ``per_listener`` each; an outcome is written only
while the delivery is pending; a dead engine's leases are released by a takeover.
The real stores are held to the same rules by the integration tests.

Tests drive it with :meth:`add_listener`, :meth:`add_message`, :meth:`kill` and
can hold or fail the recorder's writes (:attr:`record_gate`, :attr:`record_failures`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tidings.domain.flow import RATE_LOOKAHEAD_MS, Flow, allowances, start_times
from tidings.domain.health import BreakerPolicy, BreakerState, HealthRow, Outcome, apply
from tidings.domain.liveness import judge, record_probe
from tidings.domain.models import DeliveryState, ListenerStatus, LivenessState
from tidings.storage import channels
from tidings.storage.database import DatabaseUnavailable, LockState
from tidings.storage.deliveries import DEFAULT_POLICY, AttemptResult, Batch, Claimed, Prefetch
from tidings.storage.engines import Membership
from tidings.storage.health import HealthChange
from tidings.storage.listeners import DueProbe


@dataclass
class Row:
    """One ``deliveries`` row."""

    message_id: str
    listener_id: str
    next_attempt_at: int
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    last_status: int | None = None
    last_attempt_at: int | None = None
    lease_until: int = 0
    claimed_by: int | None = None


@dataclass
class ListenerRow:
    id: str
    notify_url: str
    liveness_url: str
    recent_probes: str = ""
    next_probe_at: int = 0
    probe_lease_until: int = 0
    acknowledged_count: int = 0
    health: HealthRow = field(default_factory=HealthRow)
    # flow control (SPEC §10), as in storage/claims.py
    max_in_flight: int | None = None
    rate_limit: float | None = None
    rate_next_at: float = 0.0
    ordered: bool = False

    @property
    def state(self) -> LivenessState:
        return judge(self.recent_probes)

    @property
    def claimable(self) -> bool:
        """Enabled and not failing (storage.health.CLAIMABLE)."""
        h = self.health
        return h.status is ListenerStatus.ENABLED and h.state is BreakerState.HEALTHY


class MemoryLock(LockState):
    def __init__(self) -> None:
        super().__init__()
        self.alive = True  # False: its process died
        self._held.set()

    def lose(self) -> None:
        self._held.clear()

    def regain(self) -> None:
        self._held.set()

    async def release(self) -> None:
        self.alive = False


@dataclass
class MemoryStore:
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)
    listeners: dict[str, ListenerRow] = field(default_factory=dict)
    engine_locks: dict[int, MemoryLock] = field(default_factory=dict)
    # Every batch the recorder wrote, in order.
    recorded: list[list[AttemptResult]] = field(default_factory=list)
    # While cleared, writes of outcomes wait (a database that cannot keep up).
    record_gate: asyncio.Event = field(default_factory=asyncio.Event)
    record_failures: int = 0  # the next this many writes of outcomes fail
    claims: int = 0  # how many claims were made
    _subscribers: defaultdict[str, list[Callable[[], None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.record_gate.set()

    # --- test set-up -----------------------------------------------------------

    def add_listener(self, listener_id: str, recent_probes: str = "") -> None:
        url = f"http://{listener_id}.test/hook"
        self.listeners[listener_id] = ListenerRow(
            listener_id, url, url + "/live", recent_probes, next_probe_at=2**62
        )

    def add_message(self, message_id: str, at: int, listeners: Sequence[str] = ()) -> None:
        """A committed message: one pending delivery per listener, due at ``at``."""
        for lid in listeners or sorted(self.listeners):
            self.rows[message_id, lid] = Row(message_id, lid, at)
        self.notify(channels.DELIVERIES)

    def kill(self, engine_id: int) -> None:
        """The engine's process died: the operating system dropped its lock."""
        lock = self.engine_locks[engine_id]
        lock.alive = False
        lock.lose()

    def notify(self, channel: str) -> None:
        for callback in self._subscribers[channel]:
            callback()

    def row(self, message_id: str, listener_id: str) -> Row:
        return self.rows[message_id, listener_id]

    # --- the port ----------------------------------------------------------------

    @property
    def deliveries(self) -> MemoryStore:
        return self

    @property
    def probes(self) -> MemoryProbes:
        return MemoryProbes(self)

    @property
    def engines(self) -> MemoryEngines:
        return MemoryEngines(self)

    async def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        self._subscribers[channel].append(callback)

    async def claim(
        self,
        by: int,
        now: int,
        lease_until: int,
        limit: int,
        per_listener: int,
        busy: Sequence[str],
        after: str = "",
        default_cap: int = 16,
        held: Mapping[str, int] | None = None,
        prefetch: Prefetch | None = None,
    ) -> Batch:
        self.claims += 1
        lease_until += int(RATE_LOOKAHEAD_MS)
        candidates: list[tuple[Flow, list[Row]]] = []
        for lid in sorted(self.listeners, key=lambda i: (i <= after, i)):
            listener = self.listeners[lid]
            if lid in busy or listener.state is LivenessState.DOWN or not listener.claimable:
                continue
            if listener.rate_limit is not None and listener.rate_next_at > now + RATE_LOOKAHEAD_MS:
                continue
            due = self._due(lid, now)
            if not due:
                continue
            flow = replace(
                self._flow(listener, now, default_cap, by, (held or {}).get(lid, 0)),
                prefetch=0 if prefetch is None else prefetch(lid),
            )
            candidates.append((flow, due))
            if len(candidates) >= limit:
                break
        room = allowances([flow for flow, _ in candidates], per_listener, limit, now)
        claimed = Batch()
        claimed.cut = sum(room.values()) >= limit
        for flow, due in candidates:
            taken = [r for r in due if flow.head in (None, r.message_id)]
            taken = taken[: room.get(flow.listener_id, 0)]
            if not taken:
                continue
            listener = self.listeners[flow.listener_id]
            starts, listener.rate_next_at = start_times(flow, len(taken), now)
            for r, start in zip(taken, starts, strict=True):
                r.lease_until, r.claimed_by = lease_until, by
                claimed.append(self.claimed(r, flow, start))
        return claimed

    def _due(self, listener_id: str, now: int) -> list[Row]:
        return sorted(
            (
                r
                for r in self.rows.values()
                if r.listener_id == listener_id
                and r.state is DeliveryState.PENDING
                and r.next_attempt_at <= now
                and r.lease_until <= now
            ),
            key=lambda r: r.next_attempt_at,
        )

    async def claim_trials(self, by: int, now: int, lease_until: int, limit: int) -> list[Claimed]:
        trials: list[Claimed] = []
        for lid, listener in sorted(self.listeners.items()):
            h = listener.health
            if len(trials) >= limit or h.status is not ListenerStatus.ENABLED:
                continue
            if h.state is not BreakerState.FAILING or h.open_until > now:
                continue
            if listener.state is LivenessState.DOWN:
                continue
            due = self._due(lid, now)
            if due:
                listener.health = replace(h, open_until=lease_until)
                due[0].lease_until, due[0].claimed_by = lease_until, by
                trials.append(replace(self.claimed(due[0]), trial=True))
        return trials

    async def held(self, listener_id: str) -> bool:
        listener = self.listeners.get(listener_id)
        return listener is None or listener.state is LivenessState.DOWN or not listener.claimable

    def _flow(self, listener: ListenerRow, now: int, default_cap: int, by: int, held: int) -> Flow:
        mine = [
            r
            for r in self.rows.values()
            if r.listener_id == listener.id and r.state is DeliveryState.PENDING
        ]
        head: str | None = None
        if listener.ordered and mine:
            first = min(mine, key=lambda r: r.message_id)
            if first.next_attempt_at <= now and first.lease_until <= now:
                head = first.message_id
        return Flow(
            listener_id=listener.id,
            max_in_flight=listener.max_in_flight or default_cap,
            rate_limit=listener.rate_limit,
            rate_next_at=listener.rate_next_at,
            ordered=listener.ordered,
            leased=sum(1 for r in mine if r.lease_until > now and r.claimed_by != by),
            head=head,
            mine=held,
        )

    def claimed(self, r: Row, flow: Flow | None = None, start_at: float = 0.0) -> Claimed:
        """What a claim of ``r`` answers."""
        listener = self.listeners[r.listener_id]
        return replace(self._claimed(r, listener), **self._flow_fields(flow, start_at))

    @staticmethod
    def _flow_fields(flow: Flow | None, start_at: float) -> dict[str, Any]:
        if flow is None:
            return {}
        return {
            "start_at": start_at,
            "max_in_flight": flow.max_in_flight,
            "send_cap": flow.send_cap,
            "ordered": flow.ordered,
            "rate_limit": flow.rate_limit,
        }

    def _claimed(self, r: Row, listener: ListenerRow) -> Claimed:
        return Claimed(
            r.message_id,
            r.listener_id,
            r.attempts,
            "org",
            r.listener_id,
            listener.notify_url,
            "whsec_" + "A" * 32,
            None,
            "{}",
            0,
            "queue",
            "q",
        )

    async def record(
        self, results: Sequence[AttemptResult], policy: BreakerPolicy | None = None
    ) -> list[HealthChange]:
        await self.record_gate.wait()
        if self.record_failures:
            self.record_failures -= 1
            raise DatabaseUnavailable("recording failed (test)")
        changes: list[HealthChange] = []
        for result in sorted(results, key=lambda r: r.attempted_at):
            listener = self.listeners.get(result.claimed.listener_id)
            if listener is None:
                continue
            outcome = Outcome(
                result.attempted_at, result.acknowledged, result.status, result.claimed.trial
            )
            listener.health, happened = apply(
                listener.health, [outcome], policy or DEFAULT_POLICY, result.attempted_at
            )
            changes += [HealthChange("org", listener.id, c, why) for c, why in happened]
        for result in results:
            r = self.rows.get(result.claimed.key)
            if r is None or r.state is not DeliveryState.PENDING:
                continue
            r.state, r.attempts = result.state, result.attempts
            r.last_status, r.last_attempt_at = result.status, result.attempted_at
            r.next_attempt_at = result.next_attempt_at or 0
            r.lease_until = 0
            if result.state is DeliveryState.DELIVERED:
                self.listeners[r.listener_id].acknowledged_count += 1
        self.recorded.append(list(results))
        return changes

    async def release(self, keys: Sequence[tuple[str, str]]) -> None:
        for key in keys:
            r = self.rows.get(key)
            if r is not None and r.state is DeliveryState.PENDING:
                r.lease_until = 0

    async def wake_listener(self, listener_id: str, now: int) -> int:
        woken = 0
        for r in self.rows.values():
            pending = r.listener_id == listener_id and r.state is DeliveryState.PENDING
            if pending and r.attempts > 0 and r.next_attempt_at > now:
                r.next_attempt_at, woken = now, woken + 1
        self.notify(channels.DELIVERIES)
        return woken

    async def next_due(self, now: int) -> int | None:
        return min(
            (
                r.next_attempt_at
                for r in self.rows.values()
                if r.state is DeliveryState.PENDING and r.next_attempt_at > now
            ),
            default=None,
        )


@dataclass
class MemoryProbes:
    store: MemoryStore

    async def claim(
        self, now: int, lease_until: int, next_probe_at: int, limit: int
    ) -> list[DueProbe]:
        due = sorted(
            (
                lr
                for lr in self.store.listeners.values()
                if lr.next_probe_at <= now
                and lr.probe_lease_until <= now
                and lr.health.status is ListenerStatus.ENABLED
            ),
            key=lambda lr: lr.next_probe_at,
        )[:limit]
        for lr in due:
            lr.probe_lease_until, lr.next_probe_at = lease_until, next_probe_at
        return [DueProbe(lr.id, lr.liveness_url) for lr in due]

    async def record(self, listener_id: str, ok: bool) -> tuple[LivenessState, LivenessState]:
        lr = self.store.listeners.get(listener_id)
        if lr is None:
            return LivenessState.UNKNOWN, LivenessState.UNKNOWN
        before = lr.state
        lr.recent_probes, lr.probe_lease_until = record_probe(lr.recent_probes, ok), 0
        return before, lr.state

    async def state(self, listener_id: str) -> LivenessState | None:
        lr = self.store.listeners.get(listener_id)
        return None if lr is None else lr.state


@dataclass
class MemoryEngines:
    store: MemoryStore

    async def join(self, now: int) -> Membership:
        engine_id = next(self.store._ids)
        lock = self.store.engine_locks[engine_id] = MemoryLock()
        return Membership(engine_id, lock)

    async def take_over(self, me: Membership, now: int) -> int:
        dead = {i for i, lock in self.store.engine_locks.items() if not lock.alive}
        released = 0
        for r in self.store.rows.values():
            if r.claimed_by in dead and r.state is DeliveryState.PENDING and r.lease_until > 0:
                r.lease_until, released = 0, released + 1
        for engine_id in dead:
            del self.store.engine_locks[engine_id]
        if released:
            self.store.notify(channels.DELIVERIES)
        return released

    async def leave(self, me: Membership) -> None:
        self.store.engine_locks.pop(me.id, None)
        await me.lock.release()
