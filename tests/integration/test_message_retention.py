"""Per-queue retention (SPEC §9): retention_seconds on queues and the message purge."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from tests.conftest import Running, start_server
from tests.polling import until
from tests.receivers import Answer, receiver
from tidings.config import Settings
from tidings.domain.clock import ManualClock
from tidings.storage.retention import MessageRetention

DAY_S = 86_400


async def test_queues_carry_retention_seconds(server: Running) -> None:
    async def create(**extra: Any) -> Any:
        return await server.call("POST", "/queues", json={"name": f"q{time.time_ns()}", **extra})

    default = (await create()).json()["queue"]
    assert default["retention_seconds"] == 30 * DAY_S  # TIDINGS_MESSAGE_RETENTION's default
    assert (await create(retention_seconds=None)).json()["queue"]["retention_seconds"] is None
    assert (await create(retention_seconds=3.0)).json()["queue"]["retention_seconds"] == 3
    for bad in (0, -1, 1.5, 2**62, "5"):
        assert (await create(retention_seconds=bad)).status_code == 400, bad
    qid = default["id"]
    put = await server.call("PUT", f"/queues/{qid}", json={"retention_seconds": 10})
    assert put.json()["queue"]["retention_seconds"] == 10
    renamed = await server.call("PUT", f"/queues/{qid}", json={"name": "renamed"})
    assert renamed.json()["queue"]["retention_seconds"] == 10  # partial update
    forever = await server.call("PUT", f"/queues/{qid}", json={"retention_seconds": None})
    assert forever.json()["queue"]["retention_seconds"] is None
    got = await server.call("GET", f"/queues/{qid}")
    assert got.json()["queue"]["retention_seconds"] is None


async def test_the_purge_goes_in_batches_and_only_past_retention(settings: Settings) -> None:
    clock = ManualClock(1_780_000_000_000)
    async with start_server(settings, engine=False, clock=clock) as server:

        async def queue(retention: int | None) -> str:
            body = {"name": f"q{retention}", "retention_seconds": retention}
            qid: str = (await server.call("POST", "/queues", json=body)).json()["queue"]["id"]
            items = [{"data": str(n)} for n in range(25)]
            r = await server.call("POST", f"/queues/{qid}/messages/batch", json={"messages": items})
            assert r.status_code == 200
            return qid

        short, forever = await queue(60), await queue(None)
        clock.advance(30_000)
        young = await queue(61)
        purge = MessageRetention(
            server.store.queues, server.store.messages, clock=clock, interval_s=1, batch_rows=10
        )
        assert await purge.run_once() == 0
        clock.advance(31_000)  # short's messages are 61 s old, young's 31 s
        assert await purge.run_once() == 25
        await server.call("PUT", f"/queues/{young}", json={"retention_seconds": 30})
        assert await purge.run_once() == 25  # a new value applies to stored messages
        for qid, left in ((short, 0), (forever, 25), (young, 0)):
            listed = await server.call("GET", f"/queues/{qid}/messages")
            assert listed.headers["X-Total-Count"] == str(left)


async def test_delivered_messages_go_owed_ones_stay(settings: Settings) -> None:
    """Retention 2 s: a delivered message is gone within the purge interval; one still
    pending for an enabled listener stays; pending for a disabled one does not hold."""
    quick = dataclasses.replace(settings, purge_interval_s=0.5, retry_schedule_s=(60.0,))
    failing = receiver(fail=lambda _path, _n: Answer(status=500))
    async with failing as rx, start_server(quick) as server:

        async def queue_with(name: str, path: str) -> tuple[str, str]:
            body = {"name": name, "retention_seconds": 2}
            qid: str = (await server.call("POST", "/queues", json=body)).json()["queue"]["id"]
            listener = {"name": "l", "notify_url": rx.url(path), "liveness_url": rx.url("/up")}
            r = await server.call("POST", f"/queues/{qid}/listeners", json=listener)
            return qid, r.json()["listener"]["id"]

        done_q, _ = await queue_with("done", "/ok")
        owed_q, _ = await queue_with("owed", "/fail")
        off_q, off_listener = await queue_with("off", "/fail")
        await server.store.db.write(
            "UPDATE listeners SET status = 'disabled' WHERE id = $1", off_listener
        )

        async def post(qid: str) -> tuple[str, float]:
            r = await server.call("POST", f"/queues/{qid}/messages", json={"data": "x"})
            return r.json()["message"]["id"], time.monotonic()

        (done, posted_at), (owed, _), (off, _) = (
            await post(done_q),
            await post(owed_q),
            await post(off_q),
        )
        await rx.wait_for("/ok", 1)
        await rx.wait_for("/fail", 1)  # the owed one failed once and waits for its retry

        async def gone(qid: str, mid: str) -> bool:
            r = await server.call("GET", f"/queues/{qid}/messages/{mid}")
            return r.status_code == 404

        await until(lambda: gone(done_q, done), 10)
        # Within the retention plus one purge interval (and some slack for this machine).
        assert time.monotonic() - posted_at <= 2 + 0.5 + 1.0
        await until(lambda: gone(off_q, off), 5)
        attempts = await server.store.db.fetchval(
            "SELECT count(*) FROM attempts WHERE message_id = $1", done
        )
        assert attempts == 0
        rounds = time.monotonic()
        await until(lambda: time.monotonic() - rounds > 1.2, 5, step_s=0.1)  # two rounds more
        assert not await gone(owed_q, owed)
