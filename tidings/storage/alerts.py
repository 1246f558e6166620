"""The alerts queue (SPEC §11): each health event is also stored as a message in the
organization's ``alerts_queue_id`` queue (reads ``organizations``, which orgs.py owns),
inside the transaction that records the event, so its listeners (a chat webhook, a
pager) receive it with retries and signatures like any message.

No alert loops: the health events of the alerts queue's own listeners are not posted
into it (a failing pager would otherwise feed itself alerts about itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from tidings.domain.events import HEALTH_EVENTS, Event, Ref
from tidings.domain.ids import new_id
from tidings.domain.models import NewMessage
from tidings.storage.database import Connection, Database, id_list
from tidings.storage.events import StoredRow, stored_event
from tidings.storage.messages import Messages

_encoder = msgspec.json.Encoder()


def _ref(ref: Ref | None) -> dict[str, Any] | None:
    return None if ref is None else {"id": ref.id, "name": ref.name}


def event_json(e: Event) -> str:
    """The event as ``GET /events`` shows it."""
    shown: dict[str, Any] = {
        "id": e.id,
        "type": e.type.value,
        "stored_at": e.stored_at,
        "client": {"id": e.org_id},
    }
    for name, ref in (("queue", e.queue), ("listener", e.listener)):
        if ref is not None:
            shown[name] = _ref(ref)
    if e.reason is not None:
        shown["reason"] = e.reason
    return _encoder.encode(shown).decode()


async def post(
    db: Database, tx: Connection, messages: Messages, rows: Sequence[StoredRow], now: int
) -> int:
    """Post the health events among ``rows`` (just stored by ``tx``) into their
    organizations' alerts queues; answers how many were posted."""
    events = [e for e in map(stored_event, rows) if e.type in HEALTH_EVENTS]
    if not events:
        return 0
    in_ids, value = id_list(db, 1, sorted({e.org_id for e in events}))
    found = await tx.fetch(
        "SELECT id, alerts_queue_id FROM organizations"
        f" WHERE id {in_ids} AND alerts_queue_id IS NOT NULL",
        value,
    )
    targets = {r["id"]: r["alerts_queue_id"] for r in found}
    alerts = [
        NewMessage(new_id(), e.org_id, queue, e.type.value, event_json(e), now)
        for e in events
        if (queue := targets.get(e.org_id)) is not None
        and (e.queue is None or e.queue.id != queue)  # no alert loops
    ]
    await messages.insert_in(tx, alerts)
    return len(alerts)
