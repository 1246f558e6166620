"""Durability settings and database integrity are checked before serving."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.faults.pgcluster import private_cluster
from tests.processes import free_port, serve, tidings_env
from tidings.storage.durability import postgres_problems, sqlite_problems

SAFE_PG = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def _start(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``tidings serve`` expecting it to refuse: it must exit on its own, quickly."""
    return subprocess.run(
        [sys.executable, "-m", "tidings", "serve", "--port", str(free_port())],
        env=tidings_env(url, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_judging_settings() -> None:
    assert sqlite_problems("wal", 2) == []
    assert sqlite_problems("wal", 3) == []
    assert sqlite_problems("delete", 1) == [
        "SQLite journal_mode is 'delete', not 'wal'",
        "SQLite synchronous is NORMAL, not FULL",
    ]
    assert postgres_problems(SAFE_PG) == []
    assert postgres_problems(SAFE_PG | {"synchronous_commit": "local"}) == []
    assert len(postgres_problems(SAFE_PG | {"synchronous_commit": "off"})) == 1
    assert len(postgres_problems({})) == 3


def _scribble(path: Path, pages: tuple[int, ...]) -> None:
    with path.open("r+b") as f:
        for page in pages:
            f.seek(4096 * (page - 1))
            f.write(b"\xff" * 64)


@pytest.mark.timeout(90)
async def test_damaged_sqlite_files_refuse_to_start(tmp_path: Path) -> None:
    db = tmp_path / "tidings.db"
    proc, _ = await serve(f"sqlite:///{db}", tmp_path / "serve.log")
    proc.terminate()
    _scribble(db, (2, 3, 4))  # b-tree pages of the first tables
    done = _start(f"sqlite:///{db}")
    assert done.returncode == 2, done.stderr
    assert "is damaged (database disk image is malformed)" in done.stderr
    assert "Traceback" not in done.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    done = _start(f"sqlite:///{garbage}")
    assert done.returncode == 2 and "is damaged (file is not a database)" in done.stderr


async def _sql(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.mark.timeout(120)
async def test_unsafe_postgres_settings_refuse_to_start(tmp_path: Path) -> None:
    with private_cluster(fsync="off") as cluster:
        done = await asyncio.to_thread(_start, cluster.url)
        assert done.returncode == 2, done.stderr
        assert "PostgreSQL fsync is 'off', not 'on'" in done.stderr
        assert "TIDINGS_ALLOW_UNSAFE_DURABILITY=1" in done.stderr
        proc, _ = await serve(
            cluster.url, tmp_path / "unsafe.log", None, TIDINGS_ALLOW_UNSAFE_DURABILITY="1"
        )
        proc.terminate()
        assert "WARNING: PostgreSQL fsync is 'off'" in (tmp_path / "unsafe.log").read_text()
        await _sql(
            cluster.url,
            "CREATE DATABASE lazy",
            "ALTER DATABASE lazy SET synchronous_commit = off",
        )
        lazy = cluster.url.rsplit("/", 1)[0] + "/lazy"
        done = await asyncio.to_thread(_start, lazy)
        assert done.returncode == 2, done.stderr
        # Both weaknesses named at once (fsync is off on the command line of this cluster).
        assert "synchronous_commit is 'off'" in done.stderr and "fsync is 'off'" in done.stderr
