"""End-to-end latency: from the ``200`` of ``POST .../messages`` to the receiver's
arrival, at a fixed open-loop rate (issue 6, scenario 2).

Same-run baseline, interleaved round by round: one direct HTTP hop, the bench client
POSTing the same body straight to the same receiver (send -> arrival). That is the
floor of what any broker can add on top of its own commit.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from bench.api import MESSAGE, Api
from bench.arrivals import count, take
from bench.loadgen import open_loop, wait_count
from bench.procs import database, load, receiver, tidings
from bench.stats import median, ratio, summary_ms


async def _tidings_round(
    api: Api, queue_id: str, recv_url: str, rate: float, duration_s: float
) -> dict[str, list[float]]:
    async def fire() -> tuple[str, float, float]:
        sent = time.monotonic()
        message_id = await api.post(queue_id)
        return message_id, sent, time.monotonic()

    posted = await open_loop(rate, duration_s, fire)
    await wait_count(lambda: count(api.session, recv_url), len(posted), 30)
    arrived: dict[str, float] = {}
    for _path, message_id, at in await take(api.session, recv_url):
        arrived.setdefault(message_id, at)
    out: dict[str, list[float]] = {"from_200": [], "from_send": [], "post": [], "lost": []}
    for message_id, sent, ok in posted:
        out["post"].append(ok - sent)
        if message_id not in arrived:
            out["lost"].append(1.0)
            continue
        out["from_200"].append(arrived[message_id] - ok)
        out["from_send"].append(arrived[message_id] - sent)
    return out


async def _hop_round(
    session: aiohttp.ClientSession, recv_url: str, rate: float, duration_s: float
) -> list[float]:
    counter = iter(range(10**9))

    async def fire() -> tuple[str, float]:
        tag = f"hop-{next(counter)}"
        sent = time.monotonic()
        headers = {"webhook-id": tag, "Content-Type": "application/json"}
        async with session.post(recv_url + "/notify/hop", data=MESSAGE, headers=headers) as ans:
            await ans.read()
        return tag, sent

    sent = dict(await open_loop(rate, duration_s, fire))
    arrived = {tag: at for _p, tag, at in await take(session, recv_url)}
    return [arrived[tag] - at for tag, at in sent.items() if tag in arrived]


async def measure(kind: str, rate: float, duration_s: float, rounds: int) -> dict[str, Any]:
    load_before = load()
    async with (
        database(kind) as url,
        receiver() as recv,
        tidings(url) as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(server.url, session)
        queue_id = await api.queue()
        await api.listener(queue_id, recv.url, "fast")
        await open_loop(50, 0.5, lambda: api.post(queue_id))  # warm up both paths
        await wait_count(lambda: count(session, recv.url), 25, 10)
        await take(session, recv.url)
        pooled: dict[str, list[float]] = {"from_200": [], "from_send": [], "post": [], "lost": []}
        hops: list[float] = []
        p50s: list[float] = []
        hop_p50s: list[float] = []
        for _ in range(rounds):
            hop = await _hop_round(session, recv.url, rate, duration_s)
            got = await _tidings_round(api, queue_id, recv.url, rate, duration_s)
            for key, values in got.items():
                pooled[key] += values
            hops += hop
            hop_p50s.append(summary_ms(hop)["p50_ms"])
            p50s.append(summary_ms(got["from_200"])["p50_ms"])
    e2e = summary_ms(pooled["from_200"])
    return {
        "db": kind,
        "rate_per_s": rate,
        "seconds": duration_s * rounds,
        "e2e_from_200": e2e,
        "e2e_from_send": summary_ms(pooled["from_send"]),
        "post": summary_ms(pooled["post"]),
        "hop_baseline": summary_ms(hops),
        "lost": len(pooled["lost"]),
        # Per-round medians, so one noisy round cannot make the ratio.
        "p50_over_hop_p50": ratio(median(p50s), median(hop_p50s)),
        "load": [load_before, load()],
        "samples_ms": {
            "e2e_from_200": [round(s * 1000, 3) for s in pooled["from_200"]],
            "hop_baseline": [round(s * 1000, 3) for s in hops],
        },
    }


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    duration_s = 5.0 if quick else 15.0
    rounds = 2 if quick else 3
    rows = []
    for kind in kinds:
        for rate in (10.0, 200.0):
            rows.append(await measure(kind, rate, duration_s, rounds))
    return {"name": "latency", "rows": rows}
