"""Who may come in: lockout, then the API key, then the rate limit (SPEC §1, §2).

One background task keeps this node's view of the shared lockouts fresh
(:data:`SYNC_INTERVAL_S`), forgets finished rate windows and prunes old rows now and
then (the rate limit itself reserves its shares as requests come: api/ratelimit.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from tidings.api.auth import Authenticator, Principal
from tidings.api.lockout import Lockout
from tidings.api.middleware import header_text
from tidings.api.peers import ClientAddresses
from tidings.api.ratelimit import RateLimiter
from tidings.config import Settings
from tidings.domain.clock import Clock
from tidings.domain.errors import TooManyRequests, Unauthorized
from tidings.storage.store import Store
from tidings.tasks import BackgroundTask

log = logging.getLogger("tidings.gatekeeper")
SYNC_INTERVAL_S = 0.25
PRUNE_INTERVAL_S = 60.0


@dataclass(slots=True)  # not frozen: one per request (see router.Match)
class Admission:
    principal: Principal
    headers: dict[str, str] = field(default_factory=dict)  # X-RateLimit-* for the answer


class Gatekeeper:
    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self._clock = clock
        self.auth = Authenticator(store, clock)
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.lockout = Lockout(
            store.lockouts,
            settings.lockout_threshold,
            settings.lockout_window_s,
            settings.lockout_seconds,
            clock,
        )
        self.limiter = RateLimiter(
            store.rate_counters,
            settings.rate_limit_per_minute,
            settings.rate_limit_window_s,
            clock,
        )
        self._task = BackgroundTask("tidings-gatekeeper")

    async def admit(self, request: Request) -> Admission:
        """The caller, or raise: 403 locked out, 401 bad key, 429 over the limit.

        A 429 carries the rate headers in ``TooManyRequests.headers``.
        """
        address = self.addresses.of(request.scope)
        self.lockout.check(address)
        try:
            principal = await self.auth.authenticate(header_text(request.scope, b"x-api-key"))
        except Unauthorized:
            await self.lockout.failed(address)
            raise
        if not self.limiter.enabled:
            return Admission(principal)
        verdict = await self.limiter.hit(principal.key_id)
        if not verdict.allowed:
            raise TooManyRequests(
                verdict.retry_after_s(self._clock.now_ms() / 1000),
                f"This API key may make {verdict.limit} requests per window; "
                "retry after the window resets.",
                headers=verdict.headers(),
            )
        return Admission(principal, verdict.headers())

    def start(self) -> None:
        self._task.start(self._run())

    async def stop(self) -> None:
        await self._task.stop()  # nothing to hand over: failures and shares are written at once

    async def sync(self) -> None:
        self.limiter.forget_past()
        try:
            await self.lockout.sync()
        except Exception:  # the database is away: keep the local view, retry later
            log.warning("could not sync lockouts", exc_info=True)

    async def _run(self) -> None:
        # Timers run on the monotonic clock; the Clock is "now" for what is stored.
        next_prune = time.monotonic() + PRUNE_INTERVAL_S
        while True:
            await asyncio.sleep(SYNC_INTERVAL_S)
            await self.sync()
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_INTERVAL_S
                try:
                    await self.limiter.prune()
                    await self.lockout.prune()
                except Exception:
                    log.warning("could not prune old counters", exc_info=True)
