"""The engine's scheduling, in-process: the in-memory store (tidings/delivery/memory.py),
a fake sender and looptime's virtual clock (no sleeps; virtual seconds pass in
microseconds). The same engine against real databases and receivers:
tests/integration/test_delivery.py and friends."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.fakes import EPOCH_MS, FakeSender, LoopClock, Reply, until, virtual_time
from tidings.config import Settings
from tidings.delivery import engine as engine_module
from tidings.delivery.engine import Engine
from tidings.delivery.memory import MemoryStore
from tidings.domain.models import DeliveryState
from tidings.storage.deliveries import Batch, Prefetch

SETTINGS = Settings(
    retry_schedule_s=(1.0, 2.0, 4.0),
    delivery_timeout_s=2.0,
    liveness_interval_s=1.0,
    liveness_timeout_s=1.0,
    max_in_flight_per_listener=4,
    max_in_flight=64,
    # These tests are about the schedule: the circuit breaker has its own tests.
    breaker_threshold=10_000,
)

# Attempts that outlast the takeover tests (the lease is then the default 60 s).
SLOW_ATTEMPTS = replace(SETTINGS, delivery_timeout_s=20.0)


def url(listener_id: str) -> str:
    return f"http://{listener_id}.test/hook"


@asynccontextmanager
async def running(
    store: MemoryStore, sender: FakeSender, settings: Settings = SETTINGS, seed: int = 1
) -> AsyncIterator[Engine]:
    engine = Engine(store, settings, sender, LoopClock(), random.Random(seed))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop(grace_s=0.5)


def add(store: MemoryStore, listeners: list[str], messages: int, at_ms: int = EPOCH_MS) -> None:
    for lid in listeners:
        if lid not in store.listeners:
            store.add_listener(lid)
    for n in range(messages):
        store.add_message(f"m{n:04}", at_ms, listeners)


def states(store: MemoryStore) -> set[DeliveryState]:
    return {r.state for r in store.rows.values()}


@virtual_time
async def test_per_listener_cap_and_claims_held() -> None:
    store, gate = MemoryStore(), asyncio.Event()
    sender = FakeSender(lambda _u, _n: Reply(hold=gate))
    add(store, ["a"], 30)
    async with running(store, sender) as engine:
        await until(lambda: len(sender.sent) == 4)
        await asyncio.sleep(1.5)  # nothing more happens on its own before the deadline
        # 4 requests open (the cap), 2 x 4 - 1 claimed: the rest wait in the table.
        assert (len(sender.sent), sender.most_open[url("a")], engine.in_flight) == (4, 4, 7)
        assert sum(r.lease_until > 0 for r in store.rows.values()) == 7
        gate.set()
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert sender.most_open[url("a")] == 4
    assert len(sender.sent) == 30


@virtual_time
async def test_a_listener_at_its_limit_is_claimed_for_once_an_outcome_is_written() -> None:
    """A slow listener: never more than 2 x max_in_flight - 1 held (the cap sending,
    the rest waiting for a slot); each written answer frees one claim at once (not at
    the next poll)."""
    store = MemoryStore()
    gates = [asyncio.Event() for _ in range(20)]
    sender = FakeSender(lambda _u, n: Reply(hold=gates[n]))
    add(store, ["a"], 20)
    async with running(store, sender, SLOW_ATTEMPTS) as engine:
        await asyncio.sleep(5.0)  # answers of 5 s and more: no prefetch (lease 60 s)
        assert (len(sender.sent), engine.in_flight) == (4, 7)
        gates[0].set()  # one answered: a waiting row takes its slot; once written, a
        await asyncio.sleep(0.1)  # new row is claimed in its place
        assert (len(sender.sent), engine.in_flight) == (5, 7)
        gates[1].set()
        await asyncio.sleep(0.1)
        assert (len(sender.sent), engine.in_flight) == (6, 7)
        for gate in gates:
            gate.set()
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert len({s.headers["webhook-id"] for s in sender.sent}) == 20


@virtual_time
async def test_a_fast_listener_gets_a_prefetch_until_it_slows_down() -> None:
    """A listener that answers fast has up to PREFETCH deliveries waiting in the engine
    beyond its send slots (a claim runs while they are sent); its first slow answer
    takes the prefetch away. max_in_flight holds throughout."""
    store = MemoryStore()
    sender = FakeSender(lambda _u, n: Reply(after_s=0.01) if n < 8 else Reply(after_s=1.9))
    add(store, ["a"], 4 + engine_module.PREFETCH + 20)
    async with running(store, sender, replace(SETTINGS, max_in_flight=256)) as engine:
        await until(lambda: len(sender.sent) >= 12)
        await asyncio.sleep(0.5)
        assert engine.in_flight == 4 + engine_module.PREFETCH
        # Answers now take 1.9 s: the prefetched rows drain, and claims keep at
        # most 2 x 4 - 1 from then on.
        await asyncio.sleep(30.0)
        assert 4 <= engine.in_flight <= 7
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert sender.most_open[url("a")] == 4
    assert len({s.headers["webhook-id"] for s in sender.sent}) == 4 + engine_module.PREFETCH + 20


class AskedStore(MemoryStore):
    """Keeps which listeners each claim asked the engine's prefetch of."""

    asked: list[set[str]]

    async def claim(self, *args: Any, prefetch: Prefetch | None = None, **kw: Any) -> Batch:
        asked: set[str] = set()
        self.asked.append(asked)

        def of(listener_id: str) -> int:
            asked.add(listener_id)
            return 0 if prefetch is None else prefetch(listener_id)

        return await super().claim(*args, prefetch=of, **kw)


@virtual_time
async def test_a_claim_asks_the_prefetch_of_its_candidates_only() -> None:
    """200 listeners have answered once (the engine keeps their answer times); later
    claims ask only for the listeners with deliveries due. The prefetch still goes to
    a fast one and not to a slow one."""
    store = AskedStore()
    store.asked = []
    sender = FakeSender(lambda u, n: Reply(after_s=1.9 if u == url("slow") else 0.05))
    many = [f"l{n:03}" for n in range(200)]
    add(store, many, 1)
    async with running(store, sender, replace(SETTINGS, max_in_flight=256)) as engine:
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
        store.asked.clear()
        add(store, ["fast", "slow"], 1, EPOCH_MS)
        await until(lambda: len(sender.sent) == 202)
        await asyncio.sleep(5.0)
        for n in range(1, 301):
            store.add_message(f"n{n:04}", EPOCH_MS, ["fast", "slow"])
        await asyncio.sleep(0.3)
        leased = Counter(
            r.listener_id
            for r in store.rows.values()
            if r.state is DeliveryState.PENDING and r.lease_until > 0
        )
        # fast: 4 sending and PREFETCH waiting; slow: 4 sending and 3 waiting (no
        # prefetch: PREFETCH / 4 + 1 rounds of 1.9 s are more than a quarter of its 30 s
        # lease).
        assert leased["fast"] == 4 + engine_module.PREFETCH
        assert leased["slow"] == 7
        assert engine.in_flight >= leased["fast"] + leased["slow"]
    asked = set().union(*store.asked)
    assert asked == {"fast", "slow"}


@virtual_time
async def test_a_delivery_that_waited_past_its_lease_is_not_sent() -> None:
    """Two engines, a listener that answered fast and then takes nearly the whole
    timeout: deliveries prefetched by one engine that could not start well within their
    lease are left to run out rather than sent, so the other engine taking them over
    never sends one twice, and never more than max_in_flight are open."""
    store = MemoryStore()
    sender = FakeSender(lambda _u, n: Reply(after_s=0.01) if n < 8 else Reply(after_s=1.9))
    add(store, ["a"], 60)
    settings = replace(SETTINGS, delivery_timeout_s=2.0, delivery_lease_s=6.0)
    async with AsyncExitStack() as stack:
        for seed in (1, 2):
            await stack.enter_async_context(running(store, sender, settings, seed=seed))
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    ids = [s.headers["webhook-id"] for s in sender.sent]
    assert sorted(set(ids)) == sorted(ids) and len(ids) == 60
    assert sender.most_open[url("a")] <= 4


@virtual_time
async def test_a_claim_whose_window_ran_out_is_followed_by_another_at_once() -> None:
    """40 listeners with one due delivery each, an engine window of 64 and 4 slots a
    listener: the first claim shares its 64 among the first 16 listeners (it cannot
    know they have one each), so the engine claims again at once instead of leaving
    the other 24 to the next poll a second later (fan-out to many listeners)."""
    store = MemoryStore()
    sender = FakeSender(lambda _u, _n: Reply(after_s=0.01))
    listeners = [f"l{i:02}" for i in range(40)]
    add(store, listeners, 1)
    async with running(store, sender):
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert max(s.at for s in sender.sent) - min(s.at for s in sender.sent) < 0.1


@virtual_time
async def test_listeners_take_turns_under_backlog() -> None:
    """More backlogged listeners than slots: the claim cursor rotates, so every
    listener is served before any one of them is drained."""
    store = MemoryStore()
    sender = FakeSender(lambda _u, _n: Reply(after_s=0.05))
    listeners = [f"l{i}" for i in range(8)]
    add(store, listeners, 8)
    few_slots = replace(SETTINGS, max_in_flight=4, max_in_flight_per_listener=2)
    async with running(store, sender, few_slots):
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    firsts = [sender.to(url(lid))[0].at for lid in listeners]
    lasts = [sender.to(url(lid))[-1].at for lid in listeners]
    assert max(firsts) < min(lasts)
    assert max(sender.most_open.values()) <= 2


@virtual_time
async def test_a_slow_listener_does_not_delay_the_others() -> None:
    store = MemoryStore()
    never = asyncio.Event()
    sender = FakeSender(lambda u, _n: Reply(hold=never) if "slow" in u else Reply())
    add(store, ["slow", "fast"], 20)
    async with running(store, sender) as engine:
        done = await until(
            lambda: all(
                r.state is DeliveryState.DELIVERED
                for r in store.rows.values()
                if r.listener_id == "fast"
            )
        )
        # Every fast delivery done before the slow listener's first deadline (2 s).
        assert done < SETTINGS.delivery_timeout_s
        assert len(sender.to(url("slow"))) == 4
        assert engine.in_flight == 7  # the slow one's claims only
        await until(lambda: len(sender.to(url("slow"))) == 8)  # deadlines: next round
    assert sender.most_open[url("slow")] == 4


@virtual_time
async def test_retries_follow_the_schedule_with_jitter() -> None:
    store = MemoryStore()
    sender = FakeSender(lambda _u, _n: Reply(500))
    add(store, ["a"], 10)
    async with running(store, sender, seed=7):
        await until(lambda: states(store) == {DeliveryState.MISSED})
    gaps: list[float] = []
    for n in range(10):
        times = [s.at for s in sender.sent if s.headers["webhook-id"] == f"m{n:04}"]
        assert len(times) == 4  # the first attempt and one per scheduled delay
        for delay, (earlier, later) in zip(
            SETTINGS.retry_schedule_s, itertools.pairwise(times), strict=True
        ):
            gap = later - earlier
            # +-20 % jitter; the claim loop adds at most a flush interval or so.
            assert delay * 0.8 <= gap <= delay * 1.2 + 0.05, (delay, gap)
            gaps.append(gap / delay)
    assert max(gaps) - min(gaps) > 0.1, "no jitter"
    row = store.row("m0000", "a")
    assert (row.attempts, row.last_status, row.state) == (4, 500, DeliveryState.MISSED)


@pytest.mark.parametrize(
    ("retry_after", "expected_s"),
    [("3", 3.0), ("100", 4.0), ("soon", None)],  # None: the schedule (1 s +- 20 %)
)
@virtual_time
async def test_retry_after_sets_the_next_delay(retry_after: str, expected_s: float | None) -> None:
    store = MemoryStore()
    sender = FakeSender(lambda _u, n: Reply(503, retry_after=retry_after) if n == 0 else Reply())
    add(store, ["a"], 1)
    async with running(store, sender):
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    first, second = (s.at for s in sender.sent)
    if expected_s is None:
        assert 0.8 <= second - first <= 1.25
    else:  # capped at the schedule's largest delay (4 s)
        assert expected_s <= second - first <= expected_s + 0.05


@virtual_time
async def test_a_down_listener_spends_no_attempt_and_is_never_missed() -> None:
    store = MemoryStore()
    live = {"ok": True}

    def behaviour(u: str, n: int) -> Reply:
        if u.endswith("/live"):
            return Reply(200 if live["ok"] else 503)
        if n == 1:  # the last attempt: meanwhile the probes found the listener down
            store.listeners["a"].recent_probes = "000"
            live["ok"] = False
        return Reply(500 if not live["ok"] or n == 0 else 200)

    sender = FakeSender(behaviour)
    one_retry = replace(SETTINGS, retry_schedule_s=(1.0,))
    add(store, ["a"], 1)
    async with running(store, sender, one_retry):
        await until(lambda: len(sender.to(url("a"))) == 2)
        await asyncio.sleep(600)  # ten minutes down: waits, unspent, never missed
        row = store.row("m0000", "a")
        assert (row.state, row.attempts) == (DeliveryState.PENDING, 1)
        assert len(sender.to(url("a"))) == 2
        live["ok"] = True
        store.listeners["a"].next_probe_at = 0  # the next probe succeeds
        await until(lambda: row.state is DeliveryState.DELIVERED)
    assert (row.attempts, len(sender.to(url("a")))) == (2, 3)
    assert store.listeners["a"].acknowledged_count == 1


@virtual_time
async def test_outcomes_waiting_to_be_written_hold_claiming_back() -> None:
    """Backpressure: outcomes not yet written count against the in-flight window, so
    a store that cannot keep up stops new claims instead of letting leases run out."""
    store = MemoryStore()
    sender = FakeSender()
    add(store, ["a", "b"], 30)
    window = replace(SETTINGS, max_in_flight=8)
    store.record_gate.clear()
    async with running(store, sender, window) as engine:
        await until(lambda: len(sender.sent) == 8)
        await asyncio.sleep(20)  # the window stays full (within the 30 s lease)
        assert (len(sender.sent), engine.in_flight) == (8, 0)
        assert sum(r.lease_until > 0 for r in store.rows.values()) == 8
        store.record_gate.set()
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    sent = [(s.url, s.headers["webhook-id"]) for s in sender.sent]
    assert len(sent) == len(set(sent)) == 60


@virtual_time
async def test_failed_writes_are_retried_and_nothing_is_sent_twice() -> None:
    store = MemoryStore()
    sender = FakeSender()
    add(store, ["a"], 20)
    store.record_failures = 3
    async with running(store, sender):
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert len(sender.sent) == 20
    assert sum(len(batch) for batch in store.recorded) == 20


@virtual_time
async def test_outcomes_are_written_in_batches() -> None:
    store = MemoryStore()
    sender = FakeSender()
    add(store, [f"l{i}" for i in range(10)], 20)
    async with running(store, sender):
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert sum(len(batch) for batch in store.recorded) == 200
    assert len(store.recorded) < 200 / 4, [len(b) for b in store.recorded]


@virtual_time
async def test_stop_releases_the_leases_of_unfinished_attempts() -> None:
    store, never = MemoryStore(), asyncio.Event()
    sender = FakeSender(lambda _u, _n: Reply(hold=never))
    add(store, ["a"], 10)
    async with running(store, sender) as engine:
        await until(lambda: engine.in_flight == 7)
    assert all(r.lease_until == 0 and r.attempts == 0 for r in store.rows.values())
    assert states(store) == {DeliveryState.PENDING}
    assert store.engine_locks == {} and sender.closed


@virtual_time
async def test_a_dead_engines_claims_are_taken_over_by_a_running_one() -> None:
    store, never = MemoryStore(), asyncio.Event()
    sender = FakeSender(lambda _u, n: Reply(hold=never) if n < 5 else Reply())
    add(store, ["a"], 5)
    doomed = Engine(store, SLOW_ATTEMPTS, sender, LoopClock())
    await doomed.start()
    await until(lambda: len(sender.sent) == 5)
    async with running(store, FakeSender()) as survivor:
        assert survivor.in_flight == 0  # everything is leased to the first engine
        loop = asyncio.get_running_loop()
        killed = loop.time()
        store.kill(doomed.id)  # type: ignore[arg-type]
        taken = await until(lambda: states(store) == {DeliveryState.DELIVERED})
    # Within one takeover interval (plus a claim), not the 30 s lease.
    assert taken - killed <= engine_module.TAKEOVER_INTERVAL_S + 0.1
    assert {r.claimed_by for r in store.rows.values()} == {survivor.id}
    never.set()
    await doomed.stop(grace_s=0)


@virtual_time
async def test_an_engine_that_starts_takes_over_at_once() -> None:
    store, never = MemoryStore(), asyncio.Event()
    add(store, ["a"], 3)
    held = FakeSender(lambda _u, _n: Reply(hold=never))
    doomed = Engine(store, SLOW_ATTEMPTS, held, LoopClock())
    await doomed.start()
    await until(lambda: doomed.in_flight == 3)
    store.kill(doomed.id)  # type: ignore[arg-type]
    restarted = asyncio.get_running_loop().time()
    async with running(store, FakeSender()):
        done = await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert done - restarted < 0.1
    never.set()
    await doomed.stop(grace_s=0)


@virtual_time
async def test_an_engine_that_lost_its_lock_claims_nothing_until_it_has_it_again() -> None:
    store = MemoryStore()
    sender = FakeSender()
    store.add_listener("a")
    async with running(store, sender) as engine:
        lock = store.engine_locks[engine.id]  # type: ignore[index]
        lock.lose()
        store.add_message("m1", EPOCH_MS, ["a"])
        await asyncio.sleep(60)
        assert sender.sent == []
        lock.regain()
        await until(lambda: len(sender.sent) == 1)


@virtual_time
async def test_probes_run_at_the_interval_and_judge_the_last_three() -> None:
    store = MemoryStore()
    store.add_listener("a")
    store.listeners["a"].next_probe_at = 0  # due on creation
    answers = [200, 503, 503, 503, 200]
    sender = FakeSender(lambda _u, n: Reply(answers[min(n, len(answers) - 1)]))
    seen = []
    async with running(store, sender):
        for _ in range(5):
            await until(lambda: len(sender.sent) > len(seen))
            await until(lambda: store.listeners["a"].probe_lease_until == 0)
            seen.append(store.listeners["a"].state.value)
    assert seen == ["stable", "unstable", "unstable", "down", "unstable"]
    times = [s.at for s in sender.sent[:5]]
    assert all(0.99 <= b - a <= 1.1 for a, b in itertools.pairwise(times))
    assert {s.method for s in sender.sent} == {"GET"}


BREAKER = replace(SETTINGS, breaker_threshold=3, breaker_cooldown_s=10.0, disable_after_s=10**6)


@virtual_time
async def test_the_breaker_stops_attempts_and_trials_one_at_a_time() -> None:
    """The in-memory store keeps the breaker's rules (domain/health.py) like storage:
    failing after 3 failures, single trials at doubling cool-downs, healthy again."""
    store, up = MemoryStore(), {"now": False}
    sender = FakeSender(lambda _u, _n: Reply(200 if up["now"] else 500))
    add(store, ["a"], 20)
    async with running(store, sender, BREAKER):
        await until(lambda: store.listeners["a"].health.state.value == "failing")
        loop = asyncio.get_running_loop()
        tripped_at, tripped = loop.time(), len(sender.sent)
        await asyncio.sleep(75)  # cool-downs of 10, 20 and 40 s: three trials
        trials = [s.at for s in sender.sent[tripped:]]
        assert len(trials) == 3, trials
        gaps = [b - a for a, b in itertools.pairwise([tripped_at, *trials])]
        assert [round(g) for g in gaps] == [10, 20, 40], gaps
        assert states(store) == {DeliveryState.PENDING}
        up["now"] = True
        await until(lambda: states(store) == {DeliveryState.DELIVERED}, 120)
    assert store.listeners["a"].health.state.value == "healthy"
