"""Create or upgrade a database to the newest schema (Alembic, run from code)."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

_MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["tidings_url"] = database_url
    return config


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
