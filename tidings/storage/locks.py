"""Row locks, taken in one order so concurrent transactions never deadlock (SPEC §1).

On PostgreSQL a transaction that locks rows of more than one of these tables takes
them in this order, each table's rows sorted by key:

1. ``queues``, by id;
2. ``deliveries``, by (listener_id, message_id), then ``lease_counts`` by key (the
   claim and the record count the leases they change: storage/leases.py);
3. ``listeners``, by id;
4. ``messages``, by id;
5. ``events`` and ``event_counts`` (new rows; counter bumps sorted), last.

Deliveries come before their listeners because the hottest writer of both, the
engine's record of attempt outcomes, changes many deliveries and then bumps their
listeners' counters: it writes its batch in that order and never locks a listener
early. (Locking its listeners first cost ingest plus delivery 0.79x with one busy
listener: every concurrent message insert, whose foreign-key check locks the same
listener row, then shared the row with the recorder for the whole batch.)
Deletes follow the order by locking what their cascades will reach first: a queue's
delete locks the queue, then every delivery of its listeners in order; a listener's
or a message's delete locks their deliveries. A listener's delete first takes the
lock every claim of its deliveries tries (``listener_claims``): otherwise a message
inserted after the delete locked the deliveries gets a delivery the delete did not
lock, an engine claims and attempts it, and the recorder holds that row while it
waits for the listener row the delete's cascade holds (a deadlock seen under load).
Every other writer of several deliveries (redeliveries, wake-ups, takeovers,
releases) locks them in order before changing them. The engine's claim skips locked
rows and never waits, so it cannot close a circle; a message insert only creates
deliveries, which nobody else can see before it commits.

Locks that neither delete a row nor change its key are ``FOR NO KEY UPDATE``, which
does not block the ``FOR KEY SHARE`` of a foreign-key check. SQLite has one writer
at a time; there every function here is a no-op.

A deadlock that happens anyway (an order missed here) is run again by
``Database.run``, which logs it; the order is what keeps it from happening.
"""

from __future__ import annotations

from typing import Any

from tidings.storage.database import Connection, Database

NO_KEY_UPDATE = "FOR NO KEY UPDATE"
UPDATE = "FOR UPDATE"
SHARE = "FOR SHARE"
# The order deliveries are locked in; writers of a batch sort it the same way.
DELIVERY_ORDER = "listener_id, message_id"
# Key space of the per-listener transaction lock that claims try (storage/claims.py):
# the two-int form, apart from the engines' one-int session locks.
CLAIMS_SPACE = 1953064051


def clause(db: Database, mode: str) -> str:
    """`` FOR ...`` to append to a SELECT on PostgreSQL; nothing on SQLite."""
    return f" {mode}" if db.dialect == "postgresql" else ""


async def deliveries(
    db: Database, tx: Connection, where: str, *args: Any, mode: str = NO_KEY_UPDATE
) -> None:
    """Lock the deliveries ``where`` picks, in order, before a statement that changes
    (``NO_KEY_UPDATE``) or deletes (``UPDATE``) them, or their listeners' rows."""
    if db.dialect == "postgresql":
        await tx.execute(
            f"SELECT 1 FROM deliveries WHERE {where} ORDER BY {DELIVERY_ORDER} {mode}", *args
        )


async def queue_and_deliveries(db: Database, tx: Connection, org_id: str, queue_id: str) -> None:
    """Lock a queue, then every delivery of its listeners, before deleting the queue."""
    if db.dialect == "postgresql":
        await tx.execute(
            "SELECT 1 FROM queues WHERE org_id = $1 AND id = $2 FOR UPDATE", org_id, queue_id
        )
        await deliveries(
            db,
            tx,
            "listener_id IN (SELECT id FROM listeners WHERE org_id = $1 AND queue_id = $2)",
            org_id,
            queue_id,
            mode=UPDATE,
        )


async def listener_claims(db: Database, tx: Connection, listener_id: str) -> None:
    """Wait for, and hold until the transaction ends, the lock every claim of
    ``listener_id``'s deliveries tries first: no engine leases them meanwhile."""
    if db.dialect == "postgresql":
        await tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", CLAIMS_SPACE, listener_id
        )
