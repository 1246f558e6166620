"""The background batchers in-process, on virtual time: the recorder (attempt outcomes),
the ingest group commit and the API rate limiter, each against an in-memory stand-in
for the one repository call it makes (their SQL is tested on both databases in
tests/integration)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest

from tests.unit.fakes import EPOCH_MS, until, virtual_time
from tidings.api.ratelimit import RateLimiter
from tidings.delivery import recorder as recorder_module
from tidings.delivery.memory import MemoryStore
from tidings.delivery.recorder import Recorder
from tidings.domain.clock import ManualClock
from tidings.domain.errors import NotFound, Unavailable
from tidings.domain.models import DeliveryState, NewMessage, Publication
from tidings.storage.database import Contention, DatabaseUnavailable
from tidings.storage.deliveries import AttemptResult
from tidings.storage.ingest import IngestBatcher

# --- Recorder ---------------------------------------------------------------------


def _results(store: MemoryStore, count: int, retry_at: int | None = None) -> list[AttemptResult]:
    store.add_listener("a")
    for n in range(count):
        store.add_message(f"m{n}", EPOCH_MS, ["a"])
    claimed = [store.claimed(r) for r in store.rows.values()]
    state = DeliveryState.DELIVERED if retry_at is None else DeliveryState.PENDING
    return [AttemptResult(c, 200, state, 1, EPOCH_MS, retry_at) for c in claimed]


@virtual_time
async def test_recorder_writes_what_finished_meanwhile_in_one_batch() -> None:
    store, flushed = MemoryStore(), []
    recorder = Recorder(store, on_scheduled=lambda _t: None, on_flushed=lambda: flushed.append(1))
    results = _results(store, 300)
    store.record_gate.clear()
    recorder.start()
    recorder.add(results[0])  # written at once: the first after a quiet spell
    await asyncio.sleep(0)
    for r in results[1:]:
        recorder.add(r)  # all of these while that write is in flight
    assert recorder.backlog == 300  # still leased, still counted
    store.record_gate.set()
    await until(lambda: recorder.backlog == 0)
    await recorder.stop()
    assert [len(b) for b in store.recorded] == [1, 299]
    assert len(flushed) == 2
    assert {r.state for r in store.rows.values()} == {DeliveryState.DELIVERED}


@virtual_time
async def test_recorder_caps_a_batch_and_keeps_the_rest_for_the_next() -> None:
    store = MemoryStore()
    recorder = Recorder(store, on_scheduled=lambda _t: None)
    for r in _results(store, recorder_module.MAX_BATCH + 5):
        recorder.add(r)
    recorder.start()
    await until(lambda: recorder.backlog == 0)
    await recorder.stop()
    assert [len(b) for b in store.recorded] == [recorder_module.MAX_BATCH, 5]


@virtual_time
async def test_recorder_retries_a_failed_write_and_loses_nothing() -> None:
    store = MemoryStore()
    recorder = Recorder(store, on_scheduled=lambda _t: None)
    store.record_failures = 2
    loop = asyncio.get_running_loop()
    recorder.start()
    for r in _results(store, 10):
        recorder.add(r)
    await until(lambda: recorder.backlog == 0)
    await recorder.stop()
    assert loop.time() >= 2 * recorder_module.RETRY_S  # waited between tries
    assert [len(b) for b in store.recorded] == [10]


@virtual_time
async def test_recorder_reports_every_retry_time_it_wrote() -> None:
    store, scheduled = MemoryStore(), []
    recorder = Recorder(store, on_scheduled=scheduled.extend)
    retry_at = EPOCH_MS + 5000
    for r in _results(store, 3, retry_at):
        recorder.add(r)
    recorder.start()
    await until(lambda: recorder.backlog == 0)
    await recorder.stop()
    assert scheduled == [retry_at] * 3


@virtual_time
async def test_recorder_stop_writes_what_is_left() -> None:
    store = MemoryStore()
    recorder = Recorder(store, on_scheduled=lambda _t: None)
    for r in _results(store, 4):
        recorder.add(r)
    await recorder.stop()  # never started: stop still writes them
    assert sum(len(b) for b in store.recorded) == 4


# --- IngestBatcher ------------------------------------------------------------------


class FakeMessages:
    """``Messages.insert_batch`` in memory: batch sizes, a gate, chosen outcomes."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: BaseException | None = None
        self.missing_queues: set[str] = set()

    async def insert_batch(self, batch: Sequence[Publication]) -> list[BaseException | None]:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.batches.append([m.id for p in batch for m in p.messages])
        return [
            NotFound("No queue.") if p.messages[0].queue_id in self.missing_queues else None
            for p in batch
        ]


def _message(n: int, queue: str = "q") -> Publication:
    return Publication((NewMessage(f"m{n}", "org", queue, None, "{}", EPOCH_MS),))


@virtual_time
async def test_ingest_commits_what_queued_meanwhile_in_one_batch() -> None:
    messages, commits = FakeMessages(), []
    batcher = IngestBatcher(  # type: ignore[arg-type]
        messages, max_batch=100, on_commit=lambda size, ok: commits.append((size, ok))
    )
    batcher.start()
    messages.gate.clear()
    first = asyncio.create_task(batcher.add(_message(0)))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.add(_message(n))) for n in range(1, 251)]
    await asyncio.sleep(0)
    assert not first.done()  # answered only after its commit
    messages.gate.set()
    await asyncio.gather(first, *rest)
    await batcher.stop()
    assert [len(b) for b in messages.batches] == [1, 100, 100, 50]
    assert commits == [(1, 1), (100, 100), (100, 100), (50, 50)]


@virtual_time
async def test_ingest_answers_each_message_with_its_own_outcome() -> None:
    messages = FakeMessages()
    messages.missing_queues = {"gone"}
    batcher = IngestBatcher(messages)  # type: ignore[arg-type]
    batcher.start()
    ok, gone = await asyncio.gather(
        batcher.add(_message(1)), batcher.add(_message(2, "gone")), return_exceptions=True
    )
    await batcher.stop()
    assert ok is None and isinstance(gone, NotFound)


@virtual_time
async def test_ingest_hands_an_unreachable_database_to_every_request() -> None:
    messages = FakeMessages()
    messages.fail = DatabaseUnavailable("connection refused")
    batcher = IngestBatcher(messages)  # type: ignore[arg-type]
    batcher.start()
    outcomes = await asyncio.gather(
        *(batcher.add(_message(n)) for n in range(3)), return_exceptions=True
    )
    await batcher.stop()
    # Each request answers it as api/problems.py maps it (503), not ingest itself.
    assert all(isinstance(o, DatabaseUnavailable) for o in outcomes)


@virtual_time
async def test_ingest_answers_any_failed_commit_and_keeps_flushing() -> None:
    """A commit that fails with anything (a conflict that outlived its retries, a bug)
    answers its requests with that error; later messages are still stored (the flusher
    used to end on anything but a database outage, and every later POST waited)."""
    messages = FakeMessages()
    messages.fail = Contention("still conflicting after 5 runs")
    batcher = IngestBatcher(messages)  # type: ignore[arg-type]
    batcher.start()
    outcomes = await asyncio.gather(
        *(batcher.add(_message(n)) for n in range(3)), return_exceptions=True
    )
    assert all(o is messages.fail for o in outcomes)
    messages.fail = None
    await batcher.add(_message(3))
    await batcher.stop()
    assert messages.batches == [["m3"]]


@virtual_time
async def test_ingest_refuses_past_its_queue_and_fails_the_waiting_on_stop() -> None:
    messages = FakeMessages()
    batcher = IngestBatcher(messages, max_batch=2, max_pending=3)  # type: ignore[arg-type]
    messages.gate.clear()
    batcher.start()
    waiting = [asyncio.create_task(batcher.add(_message(n))) for n in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(Unavailable, match="overloaded"):
        await batcher.add(_message(9))
    await batcher.stop()  # the commit never came back: every waiting request is told
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, Unavailable) for o in outcomes)


# --- RateLimiter --------------------------------------------------------------------


class FakeCounters:
    """``RateCounters`` in memory, shared like the table between "nodes"."""

    def __init__(self) -> None:
        self.hits_of: Counter[tuple[str, int]] = Counter()
        self.reads = 0
        self.fail_writes = 0

    async def take(self, key_id: str, window_start: int, want: int, limit: int) -> tuple[int, int]:
        self.reads += 1
        await asyncio.sleep(0.01)  # a round trip: concurrent requests share it
        if self.fail_writes:
            self.fail_writes -= 1
            raise DatabaseUnavailable("down")
        got = max(0, min(want, limit - self.hits_of[key_id, window_start]))
        self.hits_of[key_id, window_start] += got
        return got, self.hits_of[key_id, window_start]

    async def prune(self, before_window: int) -> None:
        for key in [k for k in self.hits_of if k[1] < before_window]:
            del self.hits_of[key]


def _limiter(counters: FakeCounters, clock: ManualClock, limit: int = 5) -> RateLimiter:
    return RateLimiter(counters, limit, 60, clock)  # type: ignore[arg-type]


@virtual_time
async def test_rate_limit_is_exact_on_one_node_and_resets_with_the_window() -> None:
    clock = ManualClock(60_000 * 1000)  # the start of a window
    limiter = _limiter(FakeCounters(), clock)
    verdicts = [await limiter.hit("k") for _ in range(7)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 2
    assert [v.remaining for v in verdicts] == [4, 3, 2, 1, 0, 0, 0]
    assert verdicts[0].reset_at_s == 60_000 + 60
    assert verdicts[0].headers()["X-RateLimit-Limit"] == "5"
    assert verdicts[-1].retry_after_s(60_000 + 59.5) == 1
    clock.advance(60_000)  # the next window
    assert (await limiter.hit("k")).allowed
    assert (await limiter.hit("other")).remaining == 4  # keys are counted apart


@virtual_time
async def test_rate_limit_concurrent_requests_share_one_reservation() -> None:
    counters = FakeCounters()
    limiter = _limiter(counters, ManualClock(60_000 * 1000), limit=1000)  # shares of 20
    verdicts = await asyncio.gather(*(limiter.hit("k") for _ in range(20)))
    assert counters.reads == 1 and all(v.allowed for v in verdicts)
    assert (await limiter.hit("k")).allowed and counters.reads == 2  # the 21st: a share more


@virtual_time
async def test_rate_limit_never_admits_past_the_limit_across_nodes() -> None:
    """SPEC §2: nodes share the limit. Each takes shares of the window from the shared
    row, which never counts past the limit: together they admit at most the limit,
    however their requests interleave (they counted alone for up to 0.25 s before)."""
    counters, clock = FakeCounters(), ManualClock(60_000 * 1000)
    nodes = [_limiter(counters, clock, limit=100) for _ in range(3)]  # shares of 2
    verdicts = await asyncio.gather(*(nodes[n % 3].hit("k") for n in range(150)))
    admitted = sum(v.allowed for v in verdicts)
    assert admitted == 100 and counters.hits_of["k", 60_000] == 100
    for node in nodes:
        assert not (await node.hit("k")).allowed
    # A node's unused share is the most the others lose: 1 of a share of 2 here.
    a, b = _limiter(counters, clock, limit=10), _limiter(counters, clock, limit=10)
    clock.advance(60_000)
    assert (await a.hit("k")).remaining == 9
    results = [await b.hit("k") for _ in range(10)]
    assert sum(r.allowed for r in results) == 9  # a holds the other half of its share


@virtual_time
async def test_rate_limit_fails_open_when_the_database_is_away() -> None:
    counters, clock = FakeCounters(), ManualClock(60_000 * 1000)
    limiter = _limiter(counters, clock)
    counters.fail_writes = 1
    assert (await limiter.hit("k")).allowed  # admitted on its own share
    assert counters.hits_of["k", 60_000] == 0
    for _ in range(4):
        await limiter.hit("k")  # the next share comes from the row again
    assert counters.hits_of["k", 60_000] == 4


@virtual_time
async def test_rate_limit_prunes_past_windows() -> None:
    counters, clock = FakeCounters(), ManualClock(60_000 * 1000)
    limiter = _limiter(counters, clock)
    await limiter.hit("k")
    clock.advance(120_000)
    limiter.forget_past()
    assert limiter._windows == {}
    await limiter.prune()
    assert counters.hits_of == Counter()
