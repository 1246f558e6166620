"""What the delivery engine, its recorder and its prober need of storage, and no more.

``Store`` implements it over SQLite and PostgreSQL; ``delivery/memory.py`` implements
it in memory so the engine's scheduling (claim order, caps, fairness, retries,
liveness, backpressure, takeover) can be tested in-process against a virtual clock.
The protocols live here, beside their user: storage satisfies them without
importing delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from tidings.domain.health import BreakerPolicy
from tidings.domain.models import LivenessState
from tidings.storage.deliveries import AttemptResult, Batch, Claimed, Prefetch
from tidings.storage.engines import Membership
from tidings.storage.health import HealthChange
from tidings.storage.listeners import DueProbe


class DeliveryQueue(Protocol):
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
        """``prefetch`` is asked only for the claim's candidates (domain/flow.py
        ``window``): the engine knows the answer times of up to 10,000 listeners."""
        ...

    async def claim_trials(self, by: int, now: int, lease_until: int, limit: int) -> list[Claimed]:
        """The circuit breaker's due trials, one per failing listener (SPEC §11)."""
        ...

    async def record(
        self, results: Sequence[AttemptResult], policy: BreakerPolicy | None = None
    ) -> list[HealthChange]: ...

    async def held(self, listener_id: str) -> bool:
        """Down, failing or disabled: its deliveries wait without spending attempts."""
        ...

    async def release(self, keys: Sequence[tuple[str, str]]) -> None: ...

    async def wake_listener(self, listener_id: str, now: int) -> int: ...

    async def next_due(self, now: int) -> int | None: ...


class ProbeQueue(Protocol):
    async def claim(
        self, now: int, lease_until: int, next_probe_at: int, limit: int
    ) -> list[DueProbe]: ...

    async def record(self, listener_id: str, ok: bool) -> tuple[LivenessState, LivenessState]: ...

    async def state(self, listener_id: str) -> LivenessState | None: ...


class EngineRegistry(Protocol):
    async def join(self, now: int) -> Membership: ...

    async def take_over(self, me: Membership, now: int) -> int: ...

    async def leave(self, me: Membership) -> None: ...


class DeliveryStore(Protocol):
    @property
    def deliveries(self) -> DeliveryQueue: ...

    @property
    def probes(self) -> ProbeQueue: ...

    @property
    def engines(self) -> EngineRegistry: ...

    async def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        """``callback`` runs after every commit that notifies ``channel``."""
        ...
