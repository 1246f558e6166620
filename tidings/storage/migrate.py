"""Create or upgrade a database to the newest schema (Alembic, run from code)."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from tidings.storage.database import Database, StorageError

_MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["tidings_url"] = database_url
    return config


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest migration this version ships (read from the migration scripts once)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


async def is_current(db: Database) -> bool:
    """Whether ``db`` is at the newest schema already: one query, where a no-op Alembic
    run loads every migration script and connects again (a start of every process)."""
    try:
        rows = await db.fetch("SELECT version_num FROM alembic_version")
    except StorageError:  # no version table: a new database
        return False
    return [r["version_num"] for r in rows] == [head_revision()]


def upgrade(database_url: str) -> None:
    """Upgrade to head. Runs in its own thread: env.py may start an event loop."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            command.upgrade(alembic_config(database_url), "head")
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="tidings-migrate")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
