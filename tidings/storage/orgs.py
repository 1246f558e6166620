"""Owns the ``organizations`` and ``api_keys`` tables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from tidings.domain.errors import Conflict, NotFound
from tidings.domain.events import EventType, NewEvent, Ref
from tidings.domain.ids import new_id, now_ms
from tidings.domain.models import ApiKey, Organization, Page, Scope
from tidings.storage.database import Connection, Database, Row, UniqueViolation
from tidings.storage.events import EventLog

KEY_PREFIX_CHARS = 3


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
    return Organization(id=row["id"], name=row["name"], created_at=row["created_at"])


_KEY_COLUMNS = "id, org_id, name, status, scopes, prefix, created_at, updated_at, last_used_at"


def key_event(kind: EventType, api_key: ApiKey) -> NewEvent:
    """The event of a change to ``api_key`` (record it in the change's transaction)."""
    return NewEvent(api_key.org_id, kind, api_key=Ref(api_key.id, api_key.name))


class Organizations:
    def __init__(self, db: Database, events: EventLog) -> None:
        self._db = db
        self._events = events

    async def count(self) -> int:
        return int(await self._db.fetchval("SELECT count(*) FROM organizations"))

    async def get_by_name(self, name: str) -> Organization | None:
        row = await self._db.fetchrow(
            "SELECT id, name, created_at FROM organizations WHERE name = $1", name
        )
        return None if row is None else _org(row)

    async def create_with_key(
        self, name: str, key: str, key_name: str, scopes: Sequence[Scope]
    ) -> tuple[Organization, ApiKey]:
        """A new organization and its first key, in one transaction."""
        now = now_ms()
        org = Organization(id=new_id(), name=name, created_at=now)
        try:
            async with self._db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO organizations (id, name, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $3)",
                    org.id,
                    name,
                    now,
                )
                api_key = await _insert_key(tx, org.id, key, key_name, "enabled", scopes)
                await self._events.add(tx, key_event(EventType.API_KEY_ADDED, api_key))
        except UniqueViolation as exc:
            raise Conflict(f"An organization named {name!r} already exists.") from exc
        return org, api_key

    async def rename(self, org_id: str, name: str) -> Organization:
        try:
            async with self._db.transaction() as tx:
                row = await tx.fetchrow(
                    "UPDATE organizations SET name = $2, updated_at = $3 WHERE id = $1"
                    " RETURNING id, name, created_at",
                    org_id,
                    name,
                    now_ms(),
                )
        except UniqueViolation as exc:
            raise Conflict(f"An organization named {name!r} already exists.") from exc
        if row is None:
            raise NotFound("No such api client.")
        return _org(row)


async def _insert_key(
    db: Connection, org_id: str, key: str, name: str, status: str, scopes: Sequence[Scope]
) -> ApiKey:
    now = now_ms()
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


class ApiKeys:
    def __init__(self, db: Database, events: EventLog) -> None:
        self._db = db
        self._events = events

    async def find_by_key(self, key: str) -> ApiKey | None:
        row = await self._db.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", hash_key(key)
        )
        return None if row is None else _key(row)

    async def create(
        self, org_id: str, key: str, name: str, status: str, scopes: Sequence[Scope]
    ) -> ApiKey:
        async with self._db.transaction() as tx:
            api_key = await _insert_key(tx, org_id, key, name, status, scopes)
            await self._events.add(tx, key_event(EventType.API_KEY_ADDED, api_key))
        return api_key

    async def get(self, org_id: str, key_id: str) -> ApiKey:
        row = await self._db.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 AND id = $2", org_id, key_id
        )
        if row is None:
            raise NotFound("No api key with this id.")
        return _key(row)

    async def list_page(self, org_id: str, page: Page) -> tuple[list[ApiKey], int]:
        rows = await self._db.fetch(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
            org_id,
            page.per_page,
            page.offset,
        )
        total = await self._db.fetchval("SELECT count(*) FROM api_keys WHERE org_id = $1", org_id)
        return [_key(r) for r in rows], int(total)

    async def touch(self, key_ids: Sequence[str], at_ms: int) -> None:
        """Record use; callers batch this (at most once a minute per key)."""
        async with self._db.transaction() as tx:
            await tx.executemany(
                "UPDATE api_keys SET last_used_at = $2 WHERE id = $1",
                [(key_id, at_ms) for key_id in key_ids],
            )
