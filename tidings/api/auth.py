"""Who is calling: ``X-API-KEY`` -> the key's organization and scopes.

Keys are looked up by their SHA-256 (the table stores nothing else) and the stored
digest is compared again in constant time. A short in-process cache spares the
database a read per request; disabling a key takes effect on this node at once and
on other nodes within ``CACHE_TTL_S``. ``last_used_at`` is written at most once a
minute per key, off the request path.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass

from tidings.domain.clock import Clock
from tidings.domain.errors import Unauthorized
from tidings.domain.models import ApiKey, Scope
from tidings.storage.orgs import hash_key
from tidings.storage.store import Store

log = logging.getLogger("tidings.auth")
CACHE_TTL_S = 5.0
LAST_USED_RESOLUTION_MS = 60_000
MAX_KEY_CHARS = 512


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: str
    key_id: str
    scopes: tuple[Scope, ...]


class Authenticator:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[ApiKey, str] | None]] = {}
        self._last_used: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached keys (all, or one) after a change to keys on this node."""
        if key_id is None:
            self._cache.clear()
            return
        for digest, (_, found) in list(self._cache.items()):
            if found is not None and found[0].id == key_id:
                del self._cache[digest]

    async def authenticate(self, presented: str | None) -> Principal:
        if not presented or len(presented) > MAX_KEY_CHARS:
            raise Unauthorized("Send a valid API key in the X-API-KEY header.")
        digest = hash_key(presented)
        key = await self._lookup(digest)
        if key is None or key.status != "enabled":
            raise Unauthorized("This API key is unknown or disabled.")
        self._touch(key.id)
        return Principal(org_id=key.org_id, key_id=key.id, scopes=key.scopes)

    async def _lookup(self, digest: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            found = cached[1]
        else:
            found = await self._store.api_keys.lookup(digest)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_TTL_S, found)
        if found is None:
            return None
        key, stored = found
        # The row was found by an index on the digest; confirm it without timing leaks.
        if not hmac.compare_digest(digest.encode(), stored.encode()):
            return None
        return key

    def _touch(self, key_id: str) -> None:
        now = self._clock.now_ms()
        if now - self._last_used.get(key_id, 0) < LAST_USED_RESOLUTION_MS:
            return
        self._last_used[key_id] = now
        task = asyncio.create_task(self._write_last_used(key_id, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_last_used(self, key_id: str, at_ms: int) -> None:
        try:
            await self._store.api_keys.touch([key_id], at_ms)
        except Exception:  # best effort: a lost timestamp is retried a minute later
            log.warning("could not record last use of key %s", key_id, exc_info=True)
            self._last_used.pop(key_id, None)
