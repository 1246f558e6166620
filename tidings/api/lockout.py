"""Lockout of client addresses after repeated failed authentications (SPEC §2).

Failures are recorded in the shared database at once (they are rare, and counting
them is the point), so the threshold holds across nodes. Whether an address is
locked is answered from memory on every request: this node learns of its own locks
at once and of other nodes' locks at the next :meth:`Lockout.sync` (every
``SYNC_INTERVAL_S``) or at the next failure it sees from that address.

Addresses come from :mod:`tidings.api.peers`: the TCP peer's, or behind trusted
reverse proxies the forwarded client's; an IPv6 client counts as its /64.
"""

from __future__ import annotations

import logging
import math

from tidings.domain.clock import Clock
from tidings.domain.errors import LockedOut
from tidings.storage.throttles import Lockouts

log = logging.getLogger("tidings.lockout")


class Lockout:
    def __init__(
        self,
        lockouts: Lockouts,
        threshold: int,
        window_s: float,
        lock_seconds: float,
        clock: Clock,
    ) -> None:
        self._lockouts = lockouts
        self._clock = clock
        self._threshold = threshold
        self._window_ms = int(window_s * 1000)
        self._lock_ms = int(lock_seconds * 1000)
        self._locked: dict[str, int] = {}  # address -> locked until (ms)

    @property
    def enabled(self) -> bool:
        return self._lock_ms > 0

    def check(self, address: str) -> None:
        """Raise :class:`LockedOut` (403) while ``address`` is locked."""
        until = self._locked.get(address)
        if until is None:
            return
        now = self._clock.now_ms()
        if until <= now:
            self._locked.pop(address, None)
            return
        raise LockedOut(
            math.ceil((until - now) / 1000),
            "Too many failed authentications from this address; try again later.",
        )

    async def failed(self, address: str) -> None:
        if not self.enabled:
            return
        until = await self._lockouts.record_failure(
            address, self._clock.now_ms(), self._window_ms, self._threshold, self._lock_ms
        )
        if until is not None:
            self._lock(address, until)
            log.warning("locked out %s after %d failed authentications", address, self._threshold)

    def _lock(self, address: str, until: int) -> None:
        self._locked[address] = max(until, self._locked.get(address, 0))

    async def sync(self) -> None:
        """Learn the locks other nodes made."""
        if not self.enabled:
            return
        now = self._clock.now_ms()
        for address, until in (await self._lockouts.active(now)).items():
            self._lock(address, until)
        for address, until in list(self._locked.items()):
            if until <= now:
                del self._locked[address]

    async def prune(self) -> None:
        await self._lockouts.prune(self._clock.now_ms(), self._window_ms)
