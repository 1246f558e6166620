"""The "raw driver" baseline (``python -m bench.rawdriver KIND URL SECONDS``): insert
the same message row with one durable commit per row, as fast as one loop can, and
print rows/s. SQLite: stdlib ``sqlite3``, WAL, ``synchronous=FULL`` (tidings' own
settings). PostgreSQL: one asyncpg connection, each INSERT its own transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time

import asyncpg

from bench.api import MESSAGE
from tidings.domain.ids import new_id, now_ms

_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_messages (id TEXT PRIMARY KEY, org_id TEXT NOT NULL,"
    " queue_id TEXT NOT NULL, name TEXT, data TEXT NOT NULL, created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)"
)
_DATA = MESSAGE.decode()


def _row() -> tuple[str, str, str, str, str, int, int]:
    now = now_ms()
    return (new_id(), "org", "queue", "order-created", _DATA, now, now)


def sqlite_loop(path: str, seconds: float) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(_TABLE)
    insert = "INSERT INTO bench_messages VALUES (?, ?, ?, ?, ?, ?, ?)"
    rows = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        conn.execute("BEGIN")
        conn.execute(insert, _row())
        conn.execute("COMMIT")
        rows += 1
    elapsed = time.monotonic() - start
    conn.close()
    return rows / elapsed


async def postgres_loop(url: str, seconds: float) -> float:
    conn = await asyncpg.connect(url)
    await conn.execute(_TABLE)
    insert = "INSERT INTO bench_messages VALUES ($1, $2, $3, $4, $5, $6, $7)"
    rows = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        await conn.execute(insert, *_row())  # autocommit: one transaction per row
        rows += 1
    elapsed = time.monotonic() - start
    await conn.close()
    return rows / elapsed


def main() -> None:
    kind, url, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if kind == "sqlite":
        rate = sqlite_loop(url.removeprefix("sqlite:///"), seconds)
    else:
        rate = asyncio.run(postgres_loop(url, seconds))
    print(f"{rate:.1f}")


if __name__ == "__main__":
    main()
