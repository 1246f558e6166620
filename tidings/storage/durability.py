"""Checks run once before ``serve`` and ``worker`` start: is a commit really durable,
and is the SQLite file sound?

``200`` on a message promises it survives a crash (SPEC §5). That promise rests on
database settings tidings does not fully own: PostgreSQL's ``fsync``,
``synchronous_commit`` and ``full_page_writes`` (set per server, database or role),
SQLite's journal mode and ``synchronous`` level (WAL can be unavailable, e.g. on
some network file systems). A weaker setting refuses to start, naming it, unless
``TIDINGS_ALLOW_UNSAFE_DURABILITY=1`` says the operator accepts losing acknowledged
messages. A SQLite file that fails ``PRAGMA quick_check`` (or is no database at
all) refuses to start too, instead of serving errors or wrong answers later.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from tidings.config import Settings, sqlite_path

ALLOW_VARIABLE = "TIDINGS_ALLOW_UNSAFE_DURABILITY"
# synchronous_commit values that wait for the local WAL flush; "off" does not.
_DURABLE_COMMIT = frozenset({"on", "local", "remote_write", "remote_apply"})
_SQLITE_SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


class StartRefused(Exception):
    """The database cannot be served safely; the message says why and what to do."""


def sqlite_problems(journal_mode: str, synchronous: int) -> list[str]:
    problems = []
    if journal_mode.lower() != "wal":
        problems.append(f"SQLite journal_mode is {journal_mode!r}, not 'wal'")
    if synchronous < 2:
        name = _SQLITE_SYNC_NAMES.get(synchronous, str(synchronous))
        problems.append(f"SQLite synchronous is {name}, not FULL")
    return problems


def postgres_problems(settings: Mapping[str, str]) -> list[str]:
    problems = []
    if settings.get("fsync") != "on":
        problems.append(f"PostgreSQL fsync is {settings.get('fsync')!r}, not 'on'")
    commit = settings.get("synchronous_commit", "")
    if commit not in _DURABLE_COMMIT:
        problems.append(f"PostgreSQL synchronous_commit is {commit!r}, not 'on'")
    if settings.get("full_page_writes") != "on":
        problems.append(
            f"PostgreSQL full_page_writes is {settings.get('full_page_writes')!r}, not 'on'"
        )
    return problems


def _sqlite_check(path: str) -> list[str]:
    from tidings.storage.sqlite import _connect

    try:
        conn = _connect(path, readonly=False)
        try:
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            sync = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            found = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:  # no such directory, permissions, locked, ...
        raise StartRefused(f"cannot open the SQLite database {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed", ...
        raise StartRefused(_corrupt(path, str(exc))) from None
    if found != ["ok"]:
        raise StartRefused(_corrupt(path, "; ".join(found)))
    return sqlite_problems(mode, sync)


def _corrupt(path: str, why: str) -> str:
    return (
        f"the SQLite database {path} is damaged ({why}). Restore it from a backup, "
        "or move it aside to start with an empty one; `sqlite3 FILE .recover` may save "
        "part of it."
    )


async def _postgres_settings(url: str) -> dict[str, str]:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StartRefused(f"cannot reach PostgreSQL: {type(exc).__name__}: {exc}") from None
    try:
        rows = await conn.fetch(
            "SELECT name, setting FROM pg_settings"
            " WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"
        )
    finally:
        await conn.close()
    return {row["name"]: row["setting"] for row in rows}


async def check_database(settings: Settings) -> list[str]:
    """Raise :class:`StartRefused`, or answer the accepted weaknesses to warn about."""
    if settings.is_sqlite:
        path = sqlite_path(settings.database_url)
        problems = _sqlite_check(str(path))
    else:
        problems = postgres_problems(await _postgres_settings(settings.database_url))
    if problems and not settings.allow_unsafe_durability:
        raise StartRefused(
            "; ".join(problems)
            + ". A message answered 200 could be lost in a crash, so tidings will not start."
            + f" Fix the setting, or set {ALLOW_VARIABLE}=1 to run anyway (tests, scratch data)."
        )
    return problems
