"""Listener flow control (SPEC §10) in the engine's scheduling, on the in-memory store
and virtual time: max_in_flight across engines, rate_limit, ordered delivery. The same
rules against SQLite and PostgreSQL: tests/integration/test_flow_control.py."""

from __future__ import annotations

import asyncio
import itertools
import random
from contextlib import AsyncExitStack

from tests.unit.fakes import FakeSender, LoopClock, Reply, until, virtual_time
from tests.unit.test_engine_scheduling import SETTINGS, add, running, states, url
from tidings.delivery.engine import Engine
from tidings.delivery.memory import MemoryStore
from tidings.domain.flow import Flow, allowance, allowances, start_times
from tidings.domain.models import DeliveryState


def test_allowance_rules() -> None:
    # Others hold 1 of 4: this engine may send 3 and hold 2 x 3 - 1, less its own 2.
    plain = Flow("a", 4, None, 0, False, leased=1, mine=2)
    assert (plain.send_cap, allowance(plain, take=10, now=0)) == (3, 3)
    assert allowance(plain, take=2, now=0) == 2
    full = Flow("a", 4, None, 0, False, leased=4)
    assert (full.send_cap, allowance(full, take=10, now=0)) == (0, 0)
    one = Flow("a", 1, None, 0, False, leased=0)
    assert allowance(one, take=10, now=0) == 1  # max_in_flight 1: nothing held back
    ordered = Flow("a", 4, None, 0, True, leased=0, head="m1")
    assert allowance(ordered, 10, 0) == 1
    assert allowance(Flow("a", 4, None, 0, True, leased=1, head="m1"), 10, 0) == 0
    assert allowance(Flow("a", 4, None, 0, True, leased=0, head="m1", mine=1), 10, 0) == 0
    assert allowance(Flow("a", 4, None, 0, True, leased=0, head=None), 10, 0) == 0
    rated = Flow("a", 100, 10.0, 0, False, leased=0)  # 10/s: 11 starts within 1 s
    assert allowance(rated, 100, 5_000) == 11
    starts, next_at = start_times(rated, 3, 5_000)
    assert (starts, next_at) == ([5000.0, 5100.0, 5200.0], 5300.0)
    busy = Flow("a", 100, 10.0, 7_000.0, False, leased=0)  # reserved up to 2 s ahead
    assert allowance(busy, 100, 5_000) == 0


def test_the_window_goes_first_to_what_each_listener_can_send() -> None:
    """A claim shares the engine's window in rounds: what each listener may send at
    once, then its waiting rows, then a fast listener's prefetch; so one listener's
    waiting rows never take the window while another has nothing in flight."""
    fast = Flow("a", 4, None, 0, False, leased=0, prefetch=32)
    flows = [fast, Flow("b", 4, None, 0, False, leased=0), Flow("c", 4, None, 0, False, leased=0)]
    assert allowances(flows, take=100, limit=10, now=0) == {"a": 4, "b": 4, "c": 2}
    assert allowances(flows, take=100, limit=20, now=0) == {"a": 7, "b": 7, "c": 6}
    assert allowances(flows, take=100, limit=40, now=0) == {"a": 26, "b": 7, "c": 7}
    assert allowances(flows, take=100, limit=100, now=0) == {"a": 36, "b": 7, "c": 7}
    # What the engine holds counts: b already sends 4 (its cap), so it gets nothing in
    # round one, and a is first in round two.
    busy_b = [fast, Flow("b", 4, None, 0, False, leased=0, mine=4)]
    assert allowances(busy_b, take=100, limit=5, now=0) == {"a": 5}
    assert allowances(busy_b, take=100, limit=12, now=0) == {"a": 9, "b": 3}


async def _two_engines(store: MemoryStore, sender: FakeSender) -> AsyncExitStack:
    stack = AsyncExitStack()
    for seed in (1, 2):
        await stack.enter_async_context(running(store, sender, seed=seed))
    return stack


@virtual_time
async def test_max_in_flight_holds_across_engines() -> None:
    store, gate = MemoryStore(), asyncio.Event()
    sender = FakeSender(lambda _u, _n: Reply(after_s=0.05))
    add(store, ["a"], 40)
    store.listeners["a"].max_in_flight = 2
    async with await _two_engines(store, sender):
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert sender.most_open[url("a")] == 2
    gate.set()


@virtual_time
async def test_rate_limit_spaces_starts_across_engines() -> None:
    store = MemoryStore()
    sender = FakeSender()
    add(store, ["a"], 60)
    store.listeners["a"].rate_limit = 20.0
    async with await _two_engines(store, sender):
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    times = sorted(s.at for s in sender.to(url("a")))
    # Never closer than 1/rate (a hair of float slack), and not much slower either.
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.0499
    assert times[-1] - times[0] < 60 / 20 * 1.2


@virtual_time
async def test_rate_limited_deliveries_wait_without_failing() -> None:
    store = MemoryStore()
    sender = FakeSender()
    add(store, ["a"], 5)
    store.listeners["a"].rate_limit = 1.0
    async with running(store, sender):
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    assert all(r.attempts == 1 for r in store.rows.values())  # none counted as failed


@virtual_time
async def test_ordered_listener_gets_store_order_through_retries() -> None:
    store = MemoryStore()
    rng = random.Random(3)
    # Fails about a third of the attempts; the schedule's last retry is 4 s away.
    sender = FakeSender(lambda _u, _n: Reply(500 if rng.random() < 0.3 else 200))
    add(store, ["a"], 30)
    store.listeners["a"].ordered = True
    async with running(store, sender):
        await until(lambda: DeliveryState.PENDING not in states(store))
    assert sender.most_open[url("a")] == 1
    # Each message is first sent only after every earlier one was settled.
    firsts: list[str] = []
    for s in sender.to(url("a")):
        mid = s.headers["webhook-id"]
        if mid not in firsts:
            firsts.append(mid)
    assert firsts == sorted(firsts)
    settled = [r for r in store.rows.values()]
    assert all(r.state is not DeliveryState.PENDING for r in settled)


@virtual_time
async def test_a_missed_message_releases_the_next() -> None:
    store = MemoryStore()
    sender = FakeSender(lambda _u, _n: Reply(500))
    add(store, ["a"], 3)
    store.listeners["a"].ordered = True
    async with running(store, sender):
        await until(lambda: states(store) == {DeliveryState.MISSED})
    order = [s.headers["webhook-id"] for s in sender.to(url("a"))]
    assert order == ["m0000"] * 4 + ["m0001"] * 4 + ["m0002"] * 4


@virtual_time
async def test_ordered_holds_across_engines_and_a_dead_one() -> None:
    store = MemoryStore()
    never = asyncio.Event()
    sender = FakeSender(lambda _u, n: Reply(hold=never) if n == 0 else Reply())
    add(store, ["a"], 10)
    store.listeners["a"].ordered = True
    doomed = Engine(store, SETTINGS, sender, LoopClock())
    await doomed.start()
    await until(lambda: len(sender.sent) == 1)  # the head, stuck in the doomed engine
    async with running(store, sender):
        await asyncio.sleep(1)
        assert len(sender.sent) == 1  # nobody passes the held head
        store.kill(doomed.id)  # type: ignore[arg-type]
        await until(lambda: states(store) == {DeliveryState.DELIVERED})
    order = [s.headers["webhook-id"] for s in sender.sent]
    assert order == ["m0000", *(f"m{n:04}" for n in range(10))]
    never.set()
    await doomed.stop(grace_s=0.1)
