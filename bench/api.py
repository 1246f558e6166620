"""The few discue calls a scenario needs, over one aiohttp session."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bench.procs import json_headers

ORDER = {"order": 12345, "total": 99.5, "currency": "EUR", "customer": "c-88120"}
# About 120 bytes on the wire, like the ingest figures in BASELINES.md.
MESSAGE = json.dumps(
    {"name": "order-created", "data": json.dumps(ORDER)},
    separators=(",", ":"),
).encode()


class Api:
    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base = base_url + "/v1"
        self.session = session

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, self.base + path, json=body, headers=json_headers()
        ) as answer:
            data = await answer.json()
            if answer.status != 200:
                raise RuntimeError(f"{method} {path}: {answer.status} {data}")
            return data

    async def queue(self, name: str = "bench") -> str:
        queue_id: str = (await self.call("POST", "/queues", {"name": name}))["queue"]["id"]
        return queue_id

    async def listener(self, queue_id: str, receiver_url: str, name: str) -> str:
        body = {
            "name": name,
            "notify_url": f"{receiver_url}/notify/{name}",
            "liveness_url": f"{receiver_url}/live/{name}",
        }
        created = await self.call("POST", f"/queues/{queue_id}/listeners", body)
        listener_id: str = created["listener"]["id"]
        return listener_id

    async def post(self, queue_id: str, body: bytes = MESSAGE) -> str:
        async with self.session.post(
            f"{self.base}/queues/{queue_id}/messages", data=body, headers=json_headers()
        ) as answer:
            data = await answer.json()
            if answer.status != 200:
                raise RuntimeError(f"POST message: {answer.status} {data}")
            message_id: str = data["message"]["id"]
            return message_id
