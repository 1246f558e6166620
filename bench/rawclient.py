"""The delivery baseline (``python -m bench.rawclient URL COUNT CONCURRENCY``): a plain
aiohttp ``ClientSession`` loop (the fastest client measured here) posting the body a
delivery carries, with webhook-style headers, ``COUNT`` times with ``CONCURRENCY``
requests in flight. Prints requests/s."""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import uvloop

from bench.api import MESSAGE

BODY = (
    b'{"id":"06h1djduphkji13mlpo8muui0i2iusjfn8","name":"order-created",'
    b'"queue":{"id":"06h1djdujpm66vsg0jkhirsg1ibe6kh2r8","name":"bench"},"data":'
    + MESSAGE.split(b'"data":', 1)[1].rstrip(b"}")
    + b',"created_at":1795000000000}'
)


async def post_all(url: str, count: int, concurrency: int) -> float:
    left = iter(range(count))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in left:
                headers = {
                    "Content-Type": "application/json",
                    "webhook-id": f"raw-{i}",
                    "webhook-timestamp": "1795000000",
                    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                }
                async with session.post(url, data=BODY, headers=headers) as answer:
                    await answer.read()

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.monotonic() - started)


def main() -> None:
    url, count, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(f"{uvloop.run(post_all(url, count, concurrency)):.1f}")


if __name__ == "__main__":
    main()
