"""Who is calling: ``X-API-KEY`` -> the key's organization and scopes.

Keys are looked up by their SHA-256 (the table stores nothing else) and the stored
digest is compared again in constant time. The lookup goes through the node's key
cache (``ApiKeys.lookup_recent``), which every change to a key on any node empties
(SPEC §2: a revoked key stops working everywhere within 1 s). ``last_used_at`` is
written at most once a minute per key, off the request path.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass

from tidings.domain.clock import Clock
from tidings.domain.errors import Unauthorized
from tidings.domain.models import ApiKey, Scope
from tidings.storage.orgs import hash_key
from tidings.storage.store import Store

log = logging.getLogger("tidings.auth")
LAST_USED_RESOLUTION_MS = 60_000
MAX_KEY_CHARS = 512
MAX_PRINCIPALS = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: str
    key_id: str
    scopes: tuple[Scope, ...]


class Authenticator:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._last_used: dict[str, int] = {}
        self._principals: dict[str, tuple[ApiKey, Principal]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def authenticate(self, presented: str | None) -> Principal:
        if not presented or len(presented) > MAX_KEY_CHARS:
            raise Unauthorized("Send a valid API key in the X-API-KEY header.")
        digest = hash_key(presented)
        key = await self._lookup(digest)
        if key is None or key.status != "enabled":
            raise Unauthorized("This API key is unknown or disabled.")
        self._touch(key.id)
        # One Principal per cached key object (a frozen dataclass costs ~0.4 us to
        # build, every request): a changed key is a new object from the key cache.
        known = self._principals.get(key.id)
        if known is None or known[0] is not key:
            if len(self._principals) >= MAX_PRINCIPALS:
                self._principals.clear()
            known = self._principals[key.id] = (
                key,
                Principal(org_id=key.org_id, key_id=key.id, scopes=key.scopes),
            )
        return known[1]

    async def _lookup(self, digest: str) -> ApiKey | None:
        found = await self._store.api_keys.lookup_recent(digest)
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
