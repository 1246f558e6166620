"""The engine's record batch on the real databases (storage/deliveries.py ``record``):
each outcome lands on its own row with the lease given back, a row already settled
keeps its state, and a key twice in one batch applies in order."""

from __future__ import annotations

from typing import Any

from tests.conftest import Running, start_server
from tidings.config import Settings
from tidings.domain.ids import now_ms
from tidings.domain.models import DeliveryState
from tidings.storage.deliveries import AttemptResult

PENDING, DELIVERED, MISSED = DeliveryState.PENDING, DeliveryState.DELIVERED, DeliveryState.MISSED


async def _rows(server: Running) -> dict[str, tuple[Any, ...]]:
    found = await server.store.db.fetch(
        "SELECT message_id, state, attempts, last_status, last_attempt_at, next_attempt_at,"
        " lease_until FROM deliveries"
    )
    return {r["message_id"]: tuple(r)[1:] for r in found}


async def test_a_batch_writes_each_outcome_on_its_row(settings: Settings) -> None:
    async with start_server(settings, engine=False) as server:
        r = await server.call("POST", "/v1/queues", json={"name": "orders"})
        queue_id = r.json()["queue"]["id"]
        hook = "http://127.0.0.1:9/hook"
        r = await server.call(
            "POST",
            f"/v1/queues/{queue_id}/listeners",
            json={"name": "l", "notify_url": hook, "liveness_url": hook},
        )
        assert r.status_code == 200, r.text
        ids = []
        for n in range(4):
            r = await server.call(
                "POST", f"/v1/queues/{queue_id}/messages", json={"data": f'{{"n": {n}}}'}
            )
            ids.append(r.json()["message"]["id"])
        at = now_ms() + 1_000  # claims compare with the real creation time
        claimed = {
            c.message_id: c
            for c in await server.store.deliveries.claim(1, at, at + 30_000, 100, 100, [])
        }
        a, b, c, d = (claimed[i] for i in ids)
        record = server.store.deliveries.record
        await record(
            [
                AttemptResult(a, 200, DELIVERED, 1, at, None),
                AttemptResult(b, 503, PENDING, 1, at, at + 50),
                AttemptResult(c, None, MISSED, 1, at, None),
            ]
        )
        rows = await _rows(server)
        assert rows[ids[0]] == ("delivered", 1, 200, at, None, 0)
        assert rows[ids[1]] == ("pending", 1, 503, at, at + 50, 0)
        assert rows[ids[2]] == ("missed", 1, None, at, None, 0)
        assert rows[ids[3]][0] == "pending" and rows[ids[3]][5] > 0  # still leased

        # A settled row keeps its state.
        later = at + 100
        await record(
            [
                AttemptResult(a, 500, PENDING, 2, later, later + 50),
                AttemptResult(b, 200, DELIVERED, 2, later, None),
            ]
        )
        # A key twice in one batch applies in order: the first settles it.
        await record(
            [
                AttemptResult(d, 200, DELIVERED, 1, later, None),
                AttemptResult(d, 500, PENDING, 2, later, later + 50),
            ]
        )
        rows = await _rows(server)
        assert rows[ids[0]] == ("delivered", 1, 200, at, None, 0)
        assert rows[ids[1]] == ("delivered", 2, 200, later, None, 0)
        assert rows[ids[3]] == ("delivered", 1, 200, later, None, 0)
