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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tidings.domain.liveness import judge, record_probe
from tidings.domain.models import DeliveryState, LivenessState
from tidings.storage import channels
from tidings.storage.database import DatabaseUnavailable, LockState
from tidings.storage.deliveries import AttemptResult, Claimed
from tidings.storage.engines import Membership
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

    @property
    def state(self) -> LivenessState:
        return judge(self.recent_probes)


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
    ) -> list[Claimed]:
        self.claims += 1
        taken: list[Row] = []
        for lid in sorted(self.listeners, key=lambda i: (i <= after, i)):
            if lid in busy or self.listeners[lid].state is LivenessState.DOWN:
                continue
            due = sorted(
                (
                    r
                    for r in self.rows.values()
                    if r.listener_id == lid
                    and r.state is DeliveryState.PENDING
                    and r.next_attempt_at <= now
                    and r.lease_until <= now
                ),
                key=lambda r: r.next_attempt_at,
            )
            taken.extend(due[:per_listener])
            if len(taken) >= limit:
                break
        for r in taken[:limit]:
            r.lease_until, r.claimed_by = lease_until, by
        return [self.claimed(r) for r in taken[:limit]]

    def claimed(self, r: Row) -> Claimed:
        """What a claim of ``r`` answers."""
        listener = self.listeners[r.listener_id]
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

    async def record(self, results: Sequence[AttemptResult]) -> None:
        await self.record_gate.wait()
        if self.record_failures:
            self.record_failures -= 1
            raise DatabaseUnavailable("recording failed (test)")
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
                if lr.next_probe_at <= now and lr.probe_lease_until <= now
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
