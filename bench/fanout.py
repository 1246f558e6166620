"""Fan-out: one message rate, 1, 10 and 100 listeners on the fast receiver (issue 6,
scenario 4): deliveries/s and per-listener lag (POST 200 -> arrival at that listener).

The offered delivery rate is rate x listeners; the ratio says whether the broker kept
up with it. Lag is reported per listener (median of the listeners' p50s, worst p99)
and as the spread of the listeners' p50s: one listener must not trail the others.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import aiohttp

from bench import arrivals
from bench.api import Api
from bench.loadgen import open_loop, wait_count
from bench.procs import database, load, receiver, tidings
from bench.stats import median, percentile, ratio, summary_ms

LISTENERS = (1, 10, 100)


async def measure(kind: str, listeners: int, rate: float, seconds: float) -> dict[str, Any]:
    load_before = load()
    async with (
        database(kind) as url,
        receiver() as recv,
        tidings(url) as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(server.url, session)
        queue_id = await api.queue()
        for i in range(listeners):
            await api.listener(queue_id, recv.url, f"l{i}")
        await arrivals.reset(session, recv.url)

        async def fire() -> tuple[str, float]:
            message_id = await api.post(queue_id)
            return message_id, time.monotonic()

        started = time.monotonic()
        posted = dict(await open_loop(rate, seconds, fire))
        want = len(posted) * listeners
        got = await wait_count(lambda: arrivals.count(session, recv.url), want, 300)
        rows = await arrivals.take(session, recv.url)
    lags: defaultdict[str, list[float]] = defaultdict(list)
    for path, message_id, at in rows:
        if path.startswith("/notify/") and message_id in posted:
            lags[path].append(at - posted[message_id])
    last = max(at for _p, _m, at in rows)
    per_listener_p50 = [percentile(v, 50) * 1000 for v in lags.values()]
    per_listener_p99 = [percentile(v, 99) * 1000 for v in lags.values()]
    achieved = got / (last - started)
    return {
        "db": kind,
        "listeners": listeners,
        "rate_per_s": rate,
        "messages": len(posted),
        "deliveries": got,
        "expected": want,
        "deliveries_per_s": round(achieved),
        "offered_per_s": round(rate * listeners),
        "of_offered": ratio(achieved, rate * listeners),
        "lag_p50_ms_median": round(median(per_listener_p50), 2),
        "lag_p50_ms_spread": round(max(per_listener_p50) - min(per_listener_p50), 2),
        "lag_p99_ms_worst": round(max(per_listener_p99), 2),
        "lag_all": summary_ms([x for v in lags.values() for x in v]),
        "load": [load_before, load()],
        "samples_ms": {
            f"{listeners} listeners lag": [round(x * 1000, 3) for v in lags.values() for x in v]
        },
    }


async def run(kinds: list[str], quick: bool) -> dict[str, Any]:
    seconds = 5.0 if quick else 15.0
    rate = 20.0  # 2,000 deliveries/s offered at 100 listeners
    rows = [await measure(kind, n, rate, seconds) for kind in kinds for n in LISTENERS]
    return {"name": "fanout", "rows": rows}
