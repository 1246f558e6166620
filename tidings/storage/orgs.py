"""Owns the ``organizations`` and ``api_keys`` tables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from tidings.domain.clock import Clock
from tidings.domain.errors import Conflict, Invalid, NotFound, Violation
from tidings.domain.events import EventType, NewEvent, Ref
from tidings.domain.ids import new_id
from tidings.domain.models import ApiKey, Organization, Page, Scope
from tidings.storage import channels
from tidings.storage.cache import NotifiedCache
from tidings.storage.database import Connection, Database, Row, UniqueViolation, assignments
from tidings.storage.events import EventLog
from tidings.storage.paging import fetch_page

KEY_PREFIX_CHARS = 3
# A backstop only (see storage.cache), well inside SPEC §2's 1 s for revocations.
KEY_CACHE_TTL_S = 0.5
# Sentinel for "leave this column as it is" in updates.
KEEP: Any = object()


def hash_key(key: str) -> str:
    # Keys carry >= 190 random bits (or 32+ chars for bootstrap keys), so a fast
    # hash is enough: there is nothing to brute-force from the digest.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _scopes_json(scopes: Sequence[Scope]) -> str:
    return json.dumps(
        [{"resource": s.resource, "access": s.access, "targets": list(s.targets)} for s in scopes]
    )


def _key(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        org_id=row["org_id"],
        name=row["name"],
        status=row["status"],
        scopes=tuple(
            Scope(s["resource"], s["access"], tuple(s["targets"]))
            for s in json.loads(row["scopes"])
        ),
        prefix=row["prefix"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_used_at=row["last_used_at"],
    )


def _org(row: Row) -> Organization:
    return Organization(
        id=row["id"],
        name=row["name"],
        created_at=row["created_at"],
        alerts_queue_id=row["alerts_queue_id"],
    )


_ORG_COLUMNS = "id, name, created_at, alerts_queue_id"


_KEY_COLUMNS = "id, org_id, name, status, scopes, prefix, created_at, updated_at, last_used_at"


def key_event(kind: EventType, api_key: ApiKey) -> NewEvent:
    """The event of a change to ``api_key`` (record it in the change's transaction)."""
    return NewEvent(api_key.org_id, kind, api_key=Ref(api_key.id, api_key.name or None))


class Organizations:
    def __init__(self, db: Database, events: EventLog, clock: Clock) -> None:
        self._db = db
        self._events = events
        self._clock = clock

    async def count(self) -> int:
        return int(await self._db.fetchval("SELECT count(*) FROM organizations"))

    async def get(self, org_id: str) -> Organization:
        row = await self._db.point.fetchrow(
            f"SELECT {_ORG_COLUMNS} FROM organizations WHERE id = $1", org_id
        )
        if row is None:
            raise NotFound("No api client with this id.")
        return _org(row)

    async def get_by_name(self, name: str) -> Organization | None:
        row = await self._db.point.fetchrow(
            f"SELECT {_ORG_COLUMNS} FROM organizations WHERE name = $1", name
        )
        return None if row is None else _org(row)

    async def create_with_key(
        self, name: str, key: str, key_name: str, scopes: Sequence[Scope]
    ) -> tuple[Organization, ApiKey]:
        """A new organization and its first key, in one transaction."""
        now = self._clock.now_ms()
        org = Organization(id=new_id(), name=name, created_at=now)

        async def body(tx: Connection) -> ApiKey:
            await tx.execute(
                "INSERT INTO organizations (id, name, created_at, updated_at)"
                " VALUES ($1, $2, $3, $3)",
                org.id,
                name,
                now,
            )
            return await _add_key(self._db, self._events, tx, org.id, key, key_name, scopes, now)

        try:
            api_key = await self._db.run(body)
        except UniqueViolation as exc:
            raise Conflict(f"An organization named {name!r} already exists.") from exc
        return org, api_key

    async def update(self, org_id: str, changes: dict[str, Any]) -> Organization:
        """Change ``name`` and/or ``alerts_queue_id`` (one of the organization's queues,
        or None), in one statement, like every update."""
        queue_id = changes.get("alerts_queue_id")
        sets, values = assignments({**changes, "updated_at": self._clock.now_ms()}, 3)
        # The queue must be the organization's own: checked in the same statement.
        mine = "($2::text IS NULL OR EXISTS (SELECT 1 FROM queues WHERE id = $2 AND org_id = $1))"
        if self._db.dialect != "postgresql":
            mine = mine.replace("$2::text", "$2")
        try:
            row = await self._db.write(
                f"UPDATE organizations SET {sets} WHERE id = $1 AND {mine}"
                f" RETURNING {_ORG_COLUMNS}",
                org_id,
                queue_id,
                *values,
            )
        except UniqueViolation as exc:
            raise Conflict(f"An organization named {changes['name']!r} already exists.") from exc
        if not row:
            if await self._db.fetchval("SELECT 1 FROM organizations WHERE id = $1", org_id):
                raise Invalid(
                    "alerts_queue_id must be the id of one of this organization's queues.",
                    [Violation("$.alerts_queue_id", "no queue of this organization")],
                )
            raise NotFound("No api client with this id.")
        return _org(row[0])


async def _add_key(
    db: Database,
    events: EventLog,
    tx: Connection,
    org_id: str,
    key: str,
    name: str,
    scopes: Sequence[Scope],
    now: int,
    status: str = "enabled",
) -> ApiKey:
    api_key = await _insert_key(tx, org_id, key, name, status, scopes, now)
    await events.add(tx, key_event(EventType.API_KEY_ADDED, api_key))
    # Nothing caches a key before it exists, except a bootstrap key presented early.
    await db.notify(tx, channels.API_KEYS)
    return api_key


async def _insert_key(
    db: Connection,
    org_id: str,
    key: str,
    name: str,
    status: str,
    scopes: Sequence[Scope],
    now: int,
) -> ApiKey:
    api_key = ApiKey(
        id=new_id(),
        org_id=org_id,
        name=name,
        status=status,
        scopes=tuple(scopes),
        prefix=key[:KEY_PREFIX_CHARS],
        created_at=now,
        updated_at=now,
        last_used_at=None,
    )
    await db.execute(
        "INSERT INTO api_keys (id, org_id, name, key_hash, prefix, status, scopes,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        api_key.id,
        org_id,
        name,
        hash_key(key),
        api_key.prefix,
        status,
        _scopes_json(scopes),
        now,
    )
    return api_key


def _not_found() -> NotFound:
    return NotFound("No api key with this id.")


class ApiKeys:
    def __init__(self, db: Database, events: EventLog, clock: Clock) -> None:
        self._db = db
        self._events = events
        self._clock = clock
        self._recent: NotifiedCache[str, tuple[ApiKey, str] | None] = NotifiedCache(
            db, channels.API_KEYS, KEY_CACHE_TTL_S
        )

    async def listen(self) -> None:
        await self._recent.listen()

    async def find_by_key(self, key: str) -> ApiKey | None:
        found = await self.lookup(hash_key(key))
        return None if found is None else found[0]

    async def lookup(self, digest: str) -> tuple[ApiKey, str] | None:
        """The key with this SHA-256 and the digest as stored, for a constant-time check."""
        row = await self._db.point.fetchrow(
            f"SELECT {_KEY_COLUMNS}, key_hash FROM api_keys WHERE key_hash = $1", digest
        )
        return None if row is None else (_key(row), row["key_hash"])

    async def lookup_recent(self, digest: str) -> tuple[ApiKey, str] | None:
        """:meth:`lookup` through this node's cache (unknown keys included), which
        every change to a key on any node empties (storage.cache)."""
        return await self._recent.get(digest, lambda: self.lookup(digest))

    async def create(
        self, org_id: str, key: str, name: str, status: str, scopes: Sequence[Scope]
    ) -> ApiKey:
        return await self._db.run(
            lambda tx: _add_key(
                self._db, self._events, tx, org_id, key, name, scopes, self._clock.now_ms(), status
            )
        )

    async def get(self, org_id: str, key_id: str) -> ApiKey:
        row = await self._db.point.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 AND id = $2", org_id, key_id
        )
        if row is None:
            raise _not_found()
        return _key(row)

    async def list_page(
        self, org_id: str, page: Page, within: Sequence[str] | None = None
    ) -> tuple[list[ApiKey], int]:
        """One page of the organization's keys; ``within`` keeps only those ids."""
        rows, total = await fetch_page(
            self._db, "api_keys", _KEY_COLUMNS, org_id, page, within=within
        )
        return [_key(r) for r in rows], total

    async def update(
        self,
        org_id: str,
        key_id: str,
        name: str = KEEP,
        status: str = KEEP,
        scopes: Sequence[Scope] = KEEP,
    ) -> ApiKey:
        """Change only the given fields, in one statement (concurrent updates of
        different fields both take effect)."""
        changes: dict[str, Any] = {}
        if name is not KEEP:
            changes["name"] = name
        if status is not KEEP:
            changes["status"] = status
        if scopes is not KEEP:
            changes["scopes"] = _scopes_json(scopes)
        return await self._change(
            "WHERE org_id = $1 AND id = $2", [org_id, key_id], changes, EventType.API_KEY_UPDATED
        )

    async def delete(self, org_id: str, key_id: str) -> None:
        await self._write(
            f"DELETE FROM api_keys WHERE org_id = $1 AND id = $2 RETURNING {_KEY_COLUMNS}",
            [org_id, key_id],
            EventType.API_KEY_DELETED,
        )

    async def _change(
        self, where: str, args: list[Any], changes: dict[str, Any], event: EventType
    ) -> ApiKey:
        """``UPDATE api_keys SET <changes>, updated_at`` of the row ``where`` picks."""
        sets, values = assignments({**changes, "updated_at": self._clock.now_ms()}, len(args) + 1)
        return await self._write(
            f"UPDATE api_keys SET {sets} {where} RETURNING {_KEY_COLUMNS}", [*args, *values], event
        )

    async def _write(self, statement: str, args: list[Any], event: EventType) -> ApiKey:
        """Run ``statement`` (one key ``RETURNING`` its columns), record ``event`` and
        empty every node's cache of keys; 404 if no key matched."""

        async def body(tx: Connection) -> Row | None:
            row = await tx.fetchrow(statement, *args)
            if row is not None:
                await self._events.add(tx, key_event(event, _key(row)))
                await self._db.notify(tx, channels.API_KEYS)
            return row

        row = await self._db.run(body)
        if row is None:
            raise _not_found()
        return _key(row)

    async def touch(self, key_ids: Sequence[str], at_ms: int) -> None:
        """Record use; callers batch this (at most once a minute per key)."""
        await self._db.run(
            lambda tx: tx.executemany(
                "UPDATE api_keys SET last_used_at = $2 WHERE id = $1",
                [(key_id, at_ms) for key_id in sorted(key_ids)],
            )
        )

    # --- operator (CLI) access: across organizations, by design -------------------

    async def list_for_operator(self, org_name: str | None) -> list[tuple[str, ApiKey]]:
        """``(organization name, key)`` of every key, or of one organization's keys."""
        sql = (
            "SELECT o.name AS org_name, k.id, k.org_id, k.name, k.status, k.scopes, k.prefix,"
            " k.created_at, k.updated_at, k.last_used_at FROM api_keys k"
            " JOIN organizations o ON o.id = k.org_id"
        )
        if org_name is None:
            rows = await self._db.fetch(sql + " ORDER BY o.name, k.id")
        else:
            rows = await self._db.fetch(sql + " WHERE o.name = $1 ORDER BY k.id", org_name)
        return [(r["org_name"], _key(r)) for r in rows]

    async def set_status_for_operator(self, key_id: str, status: str) -> ApiKey:
        return await self._change(
            "WHERE id = $1", [key_id], {"status": status}, EventType.API_KEY_UPDATED
        )
