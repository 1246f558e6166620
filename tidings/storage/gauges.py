"""Counts for the metrics gauges, read at scrape time (never on a request path)."""

from __future__ import annotations

from tidings.storage.database import Database

# Pending rows are counted through the partial due-index; missed rows are few by
# nature (the end of a day of retries), so the full count stays cheap in practice.
_DELIVERIES = (
    "SELECT state, count(*) AS n FROM deliveries WHERE state <> 'delivered' GROUP BY state"
)
_LISTENERS = "SELECT liveness_state, count(*) AS n FROM listeners GROUP BY liveness_state"


async def delivery_counts(db: Database) -> dict[str, int]:
    """``{"pending": n, "missed": n}`` over every organization."""
    counts = {"pending": 0, "missed": 0}
    for row in await db.fetch(_DELIVERIES):
        counts[row["state"]] = int(row["n"])
    return counts


async def listener_states(db: Database) -> dict[str, int]:
    """Listeners per liveness state (every state present, zero included)."""
    counts = {"unknown": 0, "stable": 0, "unstable": 0, "down": 0}
    for row in await db.fetch(_LISTENERS):
        counts[row["liveness_state"]] = int(row["n"])
    return counts


_HEALTH = (
    "SELECT CASE WHEN status = 'disabled' THEN 'disabled' ELSE health END AS state,"
    " count(*) AS n FROM listeners GROUP BY 1"
)


async def listener_health(db: Database) -> dict[str, int]:
    """Listeners per health state (SPEC §11), every state present."""
    counts = {"healthy": 0, "failing": 0, "disabled": 0}
    for row in await db.fetch(_HEALTH):
        counts[row["state"]] = int(row["n"])
    return counts
