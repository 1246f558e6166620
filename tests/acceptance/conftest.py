"""Fixtures of the multi-process tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def pg_database(pg_url: str, database_url: str) -> str:
    """The PostgreSQL case only: several processes share PostgreSQL; on SQLite one
    engine and one API process per file is the supported set-up."""
    if not database_url.startswith("postgresql"):
        pytest.skip("several nodes share PostgreSQL; SQLite runs one node per file")
    return database_url
