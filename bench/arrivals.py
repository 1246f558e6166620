"""Reading the receiver's records from the benchmark process."""

from __future__ import annotations

import aiohttp


async def _get(session: aiohttp.ClientSession, url: str) -> object:
    async with session.get(url) as answer:
        return await answer.json()


async def count(session: aiohttp.ClientSession, receiver_url: str) -> int:
    return int(await _get(session, receiver_url + "/_count"))  # type: ignore[call-overload]


async def reset(session: aiohttp.ClientSession, receiver_url: str) -> int:
    return int(await _get(session, receiver_url + "/_reset"))  # type: ignore[call-overload]


async def take(session: aiohttp.ClientSession, receiver_url: str) -> list[tuple[str, str, float]]:
    """``(path, webhook-id, monotonic arrival)`` of every POST since the last take/reset."""
    rows: list[tuple[str, str, float]] = await _get(  # type: ignore[assignment]
        session, receiver_url + "/_arrivals"
    )
    return rows
