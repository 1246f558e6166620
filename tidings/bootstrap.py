"""First-run setup: make sure someone holds an operator key."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tidings.domain.errors import Conflict
from tidings.domain.ids import new_secret_token
from tidings.domain.models import ApiKey, Organization
from tidings.domain.scopes import operator_scopes
from tidings.storage.store import Store

DEFAULT_ORG = "default"


@dataclass(frozen=True, slots=True)
class NewOperator:
    organization: Organization
    api_key: ApiKey
    key: str  # shown once


def announce(created: NewOperator) -> None:
    print(
        f"Created organization {created.organization.name!r} with operator API key:\n"
        f"  {created.key}\nIt is shown only this once; keep it safe.",
        file=sys.stdout,  # program output, not the log stream (stderr)
        flush=True,
    )


def new_api_key() -> str:
    return new_secret_token(32)


async def create_organization(store: Store, name: str, key: str | None = None) -> NewOperator:
    key = key or new_api_key()
    org, api_key = await store.organizations.create_with_key(
        name, key, "operator", operator_scopes()
    )
    return NewOperator(org, api_key, key)


async def bootstrap(store: Store, bootstrap_key: str | None) -> NewOperator | None:
    """With a bootstrap key: make sure it works as an operator key of ``default``.

    Without one, on a database with no organization: create ``default`` with a fresh
    operator key and return it so the caller can print it once.
    """
    if bootstrap_key is None:
        if await store.organizations.count() > 0:
            return None
        try:
            return await create_organization(store, DEFAULT_ORG)
        except Conflict:  # another node won the race
            return None
    if await store.api_keys.find_by_key(bootstrap_key) is not None:
        return None
    org = await store.organizations.get_by_name(DEFAULT_ORG)
    if org is None:
        try:
            await create_organization(store, DEFAULT_ORG, bootstrap_key)
            return None  # the operator already knows this key: nothing to print
        except Conflict:
            org = await store.organizations.get_by_name(DEFAULT_ORG)
            assert org is not None
    await store.api_keys.create(org.id, bootstrap_key, "bootstrap", "enabled", operator_scopes())
    return None
