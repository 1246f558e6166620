"""kill -9 after the commit and before the client read the answer, then a retry with the
same Idempotency-Key: one message, and the retry gets the first answer (SPEC §9)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from tests.conftest import BOOTSTRAP_KEY
from tests.polling import until
from tests.processes import free_port, serve
from tidings.storage.store import Store

KEY = "crash-between-commit-and-answer"


async def _send_unread(port: int, qid: str, body: bytes) -> asyncio.StreamWriter:
    """Send the POST on a raw connection and never read the answer."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /queues/{qid}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-API-KEY: {BOOTSTRAP_KEY}\r\nIdempotency-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    return writer


async def test_a_retry_after_a_crash_stores_one_message(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    proc, base = await serve(database_url, tmp_path / "first.log", port)
    headers = {"X-API-KEY": BOOTSTRAP_KEY}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        qid = (await client.post("/queues", json={"name": "crash"})).json()["queue"]["id"]
    body = json.dumps({"name": "order", "data": "paid"}).encode()
    store = await Store.open(database_url, migrate=False)
    try:
        writer = await _send_unread(port, qid, body)

        async def committed() -> bool:
            found = await store.db.fetchval(
                "SELECT count(*) FROM idempotency_keys WHERE key = $1", KEY
            )
            return bool(found)

        await until(committed, 20, step_s=0.001)
        proc.kill()  # the answer may not even have been written yet; it is never read
        writer.close()
    finally:
        await store.close()

    again, base = await serve(database_url, tmp_path / "second.log", port)
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            retry = await client.post(
                f"/queues/{qid}/messages",
                content=body,
                headers={"Idempotency-Key": KEY, "Content-Type": "application/json"},
            )
            assert retry.status_code == 200, retry.text
            assert retry.headers["Idempotent-Replayed"] == "true"
            listed = (await client.get(f"/queues/{qid}/messages")).json()["messages"]
        assert [m["id"] for m in listed] == [retry.json()["message"]["id"]]
        assert listed[0]["data"] == "paid"
    finally:
        again.terminate()
