"""Key scopes (SPEC §2): which resource kinds a key may read or write, and where."""

from __future__ import annotations

from collections.abc import Iterable

from tidings.domain.models import Scope

RESOURCES = (
    "api_clients",
    "api_keys",
    "events",
    "queues",
    "listeners",
    "messages",
    "schemas",
    "stats",
    "subscriptions",
)
# Only operator keys (CLI, bootstrap setting) hold these; the API refuses to grant them.
PROTECTED = frozenset({"api_clients", "api_keys", "subscriptions"})
ACCESS_LEVELS = ("read", "write")
ANY_TARGET = "*"


def operator_scopes() -> tuple[Scope, ...]:
    return tuple(Scope(r, "write", (ANY_TARGET,)) for r in RESOURCES)


def default_scopes() -> tuple[Scope, ...]:
    return tuple(Scope(r, "write", (ANY_TARGET,)) for r in RESOURCES if r not in PROTECTED)


def _enough(granted: str, needed: str) -> bool:
    return granted == "write" or needed == "read"


def allows(
    scopes: Iterable[Scope], resource: str, access: str, targets: Iterable[str] = ()
) -> bool:
    """True when a scope for ``resource`` with enough access holds ``*`` or one target.

    ``targets`` are the ids the request concerns (the resource's own id and its
    queue's id). With no targets the request is on the whole collection: a list
    (``read``) needs any scope for the kind, since the list is then cut down to
    :func:`visible_targets`; a create at the top (``write``) needs ``*``, because a
    key limited to some ids must not make new ones outside them.
    """
    wanted = set(targets)
    for scope in scopes:
        if scope.resource != resource or not _enough(scope.access, access):
            continue
        if ANY_TARGET in scope.targets or wanted.intersection(scope.targets):
            return True
        if not wanted and access == "read":
            return True
    return False


def visible_targets(scopes: Iterable[Scope], resource: str) -> list[str] | None:
    """Ids a key may read for ``resource`` (sorted); ``None`` means all of them.

    A list shows an item when its own id or its queue's id is among them.
    """
    found: set[str] = set()
    for scope in scopes:
        if scope.resource != resource:
            continue
        if ANY_TARGET in scope.targets:
            return None
        found.update(scope.targets)
    return sorted(found)
