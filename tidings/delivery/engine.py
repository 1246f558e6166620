"""The delivery engine: claim due deliveries, send them, record the outcomes.

One engine runs inside ``tidings serve`` and alone as ``tidings worker``; several
may share one PostgreSQL. The loop:

* **claim** leases a batch of due deliveries (storage skips listeners that are
  ``down`` or already busy here, and takes at most ``max_in_flight_per_listener``
  per listener, so one slow or dead listener never holds up the others);
* **send** each one through the shared :class:`Sender` under a per-listener cap;
* **record** outcomes in batches (one commit for many attempts).

Wake-ups come from the database (a committed message notifies ``deliveries``) and
from timers armed for the next retry, with a slow poll as the safety net for work
scheduled by other processes and for leases that run out.

Each engine joins under an id and holds a liveness lock under it while it lives;
its claims carry the id. On start and every ``TAKEOVER_INTERVAL_S`` it releases the
claims of engines whose lock is free (dead ones), so a crash costs seconds, not a
lease (storage/engines.py). It claims only while it holds its own lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable

import msgspec

from tidings.config import Settings
from tidings.delivery.liveness import LivenessProber
from tidings.delivery.port import DeliveryStore
from tidings.delivery.recorder import Recorder
from tidings.delivery.requests import RequestHeaders
from tidings.delivery.sender import Transport
from tidings.delivery.slots import SendSlots
from tidings.domain import flow
from tidings.domain.clock import SYSTEM_CLOCK, Clock
from tidings.domain.health import GONE
from tidings.domain.ids import new_id
from tidings.domain.models import DeliveryState
from tidings.domain.retry import after_attempt, parse_retry_after
from tidings.storage import channels
from tidings.storage.attempts import body_text
from tidings.storage.database import StorageError
from tidings.storage.deliveries import AttemptResult, Claimed
from tidings.storage.engines import Membership
from tidings.storage.health import HealthChange

log = logging.getLogger("tidings.delivery")

CLAIM_BATCH = 256
# The most a claim takes for one listener (max_in_flight's ceiling, SPEC §10); each
# listener's own limit is the claim's business (storage/claims.py).
MAX_PER_LISTENER = 256
POLL_INTERVAL_S = 1.0
# A listener at its window is left out of claims until one of its attempts ends, so a
# PUT that raised its max_in_flight would wait for that (up to the delivery timeout):
# a claim this long after the last full one leaves none out, and reads every cap anew
# (SPEC §10: applies within a few seconds).
CAPS_REREAD_S = 2.0
ERROR_BACKOFF_S = 1.0
# How often a running engine looks for dead ones: a killed worker's deliveries are
# taken over within about this (SPEC §5: 10 s).
TAKEOVER_INTERVAL_S = 2.0
# How often an engine looks for circuit-breaker trials that are due (a cool-down is
# 30 s by default): the bound on how late a trial starts.
TRIAL_POLL_S = 0.25
# Retry times kept for precise wake-ups; past this many the 1 s poll finds the rest.
MAX_RETRY_TIMES = 10_000
# How many deliveries may wait in the engine for a listener that answers fast, beyond
# its send slots (domain/flow.py ``window``): a claim takes a millisecond or more (on
# PostgreSQL ~5 ms of round trips while the engine is busy sending), in which a fast
# receiver at 16 in flight answers dozens. 128 against 64: `bench.ab delivery` 1.17x
# on PostgreSQL (5 of 5 pairs), 1.01x / 1.05x on SQLite (docs/benchmarks.md); 256
# made claims smaller and more frequent, and slower. Granted only while
# the listener's recent answers are fast enough for the last of them to start well
# within its lease (LEASE_SHARE); the check at each start is what guarantees it.
PREFETCH = 128
LEASE_SHARE = 0.25
MAX_OBSERVED = 10_000  # listeners whose answer times are kept
_encoder = msgspec.json.Encoder()


def request_body(c: Claimed) -> bytes:
    """The documented body (SPEC §5); the same bytes for every listener of a message."""
    return _encoder.encode(
        {
            "id": c.message_id,
            "name": c.message_name,
            "queue": {"id": c.queue_id, "name": c.queue_name},
            "data": c.data,
            "created_at": c.created_at,
        }
    )


class Engine:
    def __init__(
        self,
        store: DeliveryStore,
        settings: Settings,
        sender: Transport,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        on_attempt: Callable[[int | None, float], None] | None = None,
        on_health: Callable[[list[HealthChange]], None] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._sender = sender
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_attempt = on_attempt  # metrics: (HTTP status or None, seconds)
        self._wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._in_flight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._per_listener: defaultdict[str, int] = defaultdict(int)
        self._listener_slots: dict[str, SendSlots] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Listeners are claimed round-robin from here, so all get slots under backlog.
        self._cursor = ""
        # Outcomes waiting to be written keep their leases: they count against the
        # in-flight window, and each written batch frees room for another claim.
        self._recorder = Recorder(
            store.deliveries,
            on_scheduled=self._wake_at,
            on_flushed=self._flushed,
            policy=settings.breaker_policy,
            on_health=on_health,
        )
        # Set when an attempt of a listener at its flow limit (SPEC §10: max_in_flight
        # reached, or ordered) finished: its lease goes with the next written batch,
        # and only then may another claim take the listener's next delivery.
        self._claim_after_flush = False
        # Listeners whose last claim filled their window: more may be due.
        self._backlogged: set[str] = set()
        self._caps_read_at = 0  # ms: the last claim that left no busy listener out
        self._prober = LivenessProber(store, settings, sender, clock)
        self._headers = RequestHeaders(clock)
        # Per listener, how many requests this engine may have open to it, as its
        # last claim said (domain/flow.py: max_in_flight less the other engines'
        # leases). The engine holds up to flow.window() of that (the rest wait for a
        # slot, so new rows arrive before the sending ones run out); a listener it
        # holds that many of is busy.
        self._caps: dict[str, int] = {}
        # Per listener, a moving average of its answer times (s), for its prefetch.
        self._answer_s: dict[str, float] = {}
        self._prefetch_within_s = LEASE_SHARE * settings.lease_s
        # Long enough for a full attempt even after waiting for a listener slot.
        self._lease_ms = int(settings.lease_s * 1000)
        self._timeout_ms = int(settings.delivery_timeout_s * 1000)
        self._me: Membership | None = None
        # When retries this engine wrote are due (a heap), and the one timer for them.
        self._retry_times: list[int] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0
        # Look up when the next pending delivery is due (delayed messages, retries of
        # other engines) before waiting: at start, when a commit delayed messages and
        # after each timer rang. One step down the due-time index, so it costs the same
        # with a million delayed messages as with one.
        self._look_ahead = True

    async def start(self) -> None:
        self._me = await self._store.engines.join(self._clock.now_ms())
        log.info("delivery engine %x started", self._me.id)
        await self._store.subscribe(channels.DELIVERIES, self._wake.set)
        await self._store.subscribe(channels.DELAYED, self._delayed)
        await self._take_over()  # a predecessor's claims, before the first claim
        self._recorder.start()
        self._prober.start()
        self._tasks.append(asyncio.create_task(self._claim_loop(), name="tidings-claim"))
        self._tasks.append(asyncio.create_task(self._watch_loop(), name="tidings-takeover"))
        self._tasks.append(asyncio.create_task(self._trial_loop(), name="tidings-trials"))

    async def stop(self, grace_s: float = 4.0) -> None:
        """Stop claiming, let in-flight attempts finish for ``grace_s``, release the rest."""
        self._stopping = True
        self._wake.set()
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._prober.stop()
        pending = list(self._in_flight.values())
        if pending:
            await asyncio.wait(pending, timeout=grace_s)
        unfinished = [key for key, task in self._in_flight.items() if not task.done()]
        for key in unfinished:
            self._in_flight[key].cancel()
        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        await self._recorder.stop()
        with contextlib.suppress(StorageError):
            await self._store.deliveries.release(unfinished)
        if self._me is not None:
            with contextlib.suppress(StorageError):
                await self._store.engines.leave(self._me)
        await self._sender.close()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def id(self) -> int | None:
        return None if self._me is None else self._me.id

    def _wake_at(self, times_ms: list[int]) -> None:
        """Claim again when each of these retries is due. One timer, for the earliest:
        a timer for the earliest of a batch only left the others to the 1 s poll, up
        to a second late (five times a 0.2 s delay)."""
        for at in times_ms:
            if len(self._retry_times) >= MAX_RETRY_TIMES:
                break  # the poll finds the rest, later
            heapq.heappush(self._retry_times, at)
        self._arm()

    def _arm(self) -> None:
        if not self._retry_times:
            return
        first = self._retry_times[0]
        if self._timer is not None:
            if self._timer_at <= first:
                return
            self._timer.cancel()
        # The timer runs on the loop's monotonic clock; only the delay is Clock time.
        delay_s = max(0.0, (first - self._clock.now_ms()) / 1000)
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._ring)
        self._timer_at = first

    def _delayed(self) -> None:
        self._look_ahead = True
        self._wake.set()

    async def _arm_next_due(self) -> None:
        self._look_ahead = False
        try:
            at = await self._store.deliveries.next_due(self._clock.now_ms())
        except StorageError as exc:
            self._look_ahead = True  # the poll finds it meanwhile
            log.warning("looking for the next due delivery failed: %s", exc)
            return
        if at is not None:
            self._wake_at([at])

    def _ring(self) -> None:
        self._timer = None
        self._look_ahead = True
        now = self._clock.now_ms()
        while self._retry_times and self._retry_times[0] <= now:
            heapq.heappop(self._retry_times)
        self._wake.set()
        self._arm()

    async def _take_over(self) -> None:
        assert self._me is not None
        try:
            released = await self._store.engines.take_over(self._me, self._clock.now_ms())
        except StorageError as exc:
            log.warning("looking for dead engines failed: %s", exc)
            return
        if released:
            log.warning("took over %d deliveries of engines that died", released)

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(TAKEOVER_INTERVAL_S)
            await self._take_over()

    async def _trial_loop(self) -> None:
        """Claim the circuit breaker's due trials (SPEC §11); they are sent like any
        claimed delivery but can never make their message missed."""
        assert self._me is not None
        while not self._stopping:
            await asyncio.sleep(TRIAL_POLL_S)
            free = self._settings.max_in_flight - len(self._in_flight) - self._recorder.backlog
            if free <= 0 or not self._me.held:
                continue
            now = self._clock.now_ms()
            try:
                trials = await self._store.deliveries.claim_trials(
                    self._me.id, now, now + self._lease_ms, min(free, CLAIM_BATCH)
                )
            except StorageError as exc:
                log.warning("claiming breaker trials failed, retrying: %s", exc)
                continue
            for claimed in trials:
                self._spawn(claimed, request_body(claimed), now + self._lease_ms)

    async def _claim_loop(self) -> None:
        assert self._me is not None
        while not self._stopping:
            if not self._me.held:
                # Without our lock another engine may take us for dead and release
                # what we claim: claim nothing until it is ours again.
                log.warning("engine %x lost its liveness lock; claiming paused", self._me.id)
                await self._me.wait_held()
            # Cleared before claiming, not after: a wake-up that comes while the claim
            # runs (an attempt finished, a message was committed) must start another.
            self._wake.clear()
            try:
                more = await self._claim()
            except StorageError as exc:
                log.warning("claiming deliveries failed, retrying: %s", exc)
                await asyncio.sleep(ERROR_BACKOFF_S)
                continue
            if not more:
                if self._look_ahead:
                    await self._arm_next_due()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL_S)

    async def _claim(self) -> bool:
        """Claim one batch; answer whether another may be waiting right away."""
        # Outcomes not yet written count too: claiming on while recording lags would
        # hold leases until they run out, and those deliveries would be sent again.
        free = self._settings.max_in_flight - len(self._in_flight) - self._recorder.backlog
        if free <= 0:
            self._slot_free.clear()
            await self._slot_free.wait()
            return True
        default_cap = self._settings.max_in_flight_per_listener
        busy = [
            lid
            for lid, count in self._per_listener.items()
            if count >= self._window(lid, self._caps.get(lid, default_cap))
        ]
        assert self._me is not None
        now = self._clock.now_ms()
        left_out = busy
        if busy and now - self._caps_read_at >= CAPS_REREAD_S * 1000:
            left_out, self._caps_read_at = [], now
        limit = min(free, CLAIM_BATCH)
        held = dict(self._per_listener)
        batch = await self._store.deliveries.claim(
            self._me.id,
            now,
            now + self._lease_ms,
            limit,
            MAX_PER_LISTENER,
            left_out,
            self._cursor,
            default_cap=default_cap,
            held=held,
            prefetch=self._prefetch_of,
        )
        if batch:
            self._cursor = batch[-1].listener_id
            self._wake_for_rates(batch)
        bodies: dict[str, bytes] = {}
        for claimed in batch:
            body = bodies.get(claimed.message_id)
            if body is None:
                body = bodies[claimed.message_id] = request_body(claimed)
            self._spawn(claimed, body, now + self._lease_ms)
        # A listener this claim filled up to its window may have more due: claim
        # again at its refill point. One it could not fill has nothing more due now
        # (new messages and retries wake the loop themselves).
        got = Counter(c.listener_id for c in batch)
        self._backlogged = {lid for lid in busy if lid in self._per_listener} | {
            lid
            for lid, n in got.items()
            if n >= self._window(lid, self._caps.get(lid, default_cap)) - held.get(lid, 0)
        }
        # A short batch took everything claimable (unless the limit was shared out
        # before every listener had its turn): wait for a wake-up (a message, a
        # retry's time, a written batch that freed a listener at its limit).
        return len(batch) == limit or (batch.cut and bool(batch))

    def _wake_for_rates(self, batch: list[Claimed]) -> None:
        """Claim again when a rate-limited listener's next start is allowed."""
        next_starts: dict[str, float] = {}
        for c in batch:
            if c.rate_limit is not None:
                next_starts[c.listener_id] = c.start_at + 1000.0 / c.rate_limit
        if next_starts:
            self._wake_at([int(at) + 1 for at in next_starts.values()])

    def _flushed(self) -> None:
        self._slot_free.set()
        if self._claim_after_flush:
            self._wake.set()
            # Kept while outcomes still wait: the batch just written may not hold
            # the one that set it (it was added while the write was in flight).
            self._claim_after_flush = self._recorder.backlog > 0

    def _prefetch(self, listener_id: str, send_cap: int) -> int:
        answer_s = self._answer_s.get(listener_id)
        if answer_s is None or send_cap <= 0:
            return 0
        # The last one waiting starts after about PREFETCH / send_cap answers.
        rounds = -(-PREFETCH // send_cap) + 1
        return PREFETCH if rounds * answer_s <= self._prefetch_within_s else 0

    def _prefetch_of(self, listener_id: str) -> int:
        """A claim's candidate's prefetch, at the send cap its last claim gave it: the
        claim asks for its candidates only, not for every listener with an answer
        time (up to MAX_OBSERVED)."""
        cap = self._caps.get(listener_id, self._settings.max_in_flight_per_listener)
        return self._prefetch(listener_id, cap)

    def _window(self, listener_id: str, send_cap: int) -> int:
        return flow.window(send_cap, self._prefetch(listener_id, send_cap))

    def _spawn(self, claimed: Claimed, body: bytes, lease_ends: int) -> None:
        if claimed.key in self._in_flight:  # our own lease ran out and we took it again
            return
        self._per_listener[claimed.listener_id] += 1
        self._caps[claimed.listener_id] = claimed.send_cap
        slots = self._listener_slots.get(claimed.listener_id)
        if slots is None:
            self._listener_slots[claimed.listener_id] = SendSlots(claimed.send_cap)
        else:
            slots.resize(claimed.send_cap)
        task = asyncio.create_task(self._attempt(claimed, body, lease_ends))
        self._in_flight[claimed.key] = task
        task.add_done_callback(lambda done: self._done(claimed, done))

    def _done(self, claimed: Claimed, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A defect, not a receiver's doing (their answers are data): say so with
            # the delivery's key. Its lease runs out and a later claim takes it again.
            log.error("delivery %s -> %s: the attempt failed", *claimed.key, exc_info=exc)
        was_full = len(self._in_flight) >= self._settings.max_in_flight
        cap = self._caps.get(claimed.listener_id, claimed.send_cap)
        self._in_flight.pop(claimed.key, None)
        held = self._per_listener[claimed.listener_id]
        if held <= 1:
            self._per_listener.pop(claimed.listener_id, None)
            self._listener_slots.pop(claimed.listener_id, None)
            self._caps.pop(claimed.listener_id, None)
        else:
            self._per_listener[claimed.listener_id] = held - 1
        self._slot_free.set()
        # Claim again only when this made room the last claim could not use: every
        # slot was taken, or a backlogged listener (its last claim filled its window)
        # is down to its refill point, so new rows arrive before the waiting ones run
        # out and a fast receiver is never left idle for a claim. Otherwise a claim
        # would find nothing new (new messages and retries wake the loop themselves),
        # and an empty claim per finished attempt was most of the PostgreSQL cost.
        if was_full or (
            claimed.listener_id in self._backlogged
            and held - 1 <= flow.refill_at(cap, self._prefetch(claimed.listener_id, cap))
        ):
            self._wake.set()

    async def _attempt(self, claimed: Claimed, body: bytes, lease_ends: int) -> None:
        # Under a rate limit each delivery has its reserved start (storage/claims.py).
        wait_s = (claimed.start_at - self._clock.now_ms()) / 1000
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        slots = self._listener_slots[claimed.listener_id]
        if not slots.take():  # no coroutine when a slot is free (the common case)
            await slots.wait()
        try:
            # The id is made as the attempt starts: the log lists attempts by id.
            attempt_id, started_at = new_id(), self._clock.now_ms()
            if started_at + self._timeout_ms > lease_ends:
                # It waited so long (its listener slowed down) that its lease could
                # run out during the attempt, and another engine take it: not sent
                # here. The lease runs out within a timeout; a claim takes it again.
                log.info("delivery %s -> %s waited past its lease", *claimed.key)
                return
            headers = self._headers.build(claimed, body, started_at // 1000)
            answer = await self._sender.request(
                "POST", claimed.notify_url, self._settings.delivery_timeout_s, body, headers
            )
        finally:
            slots.release()
        if self._on_attempt is not None:
            self._on_attempt(answer.status, answer.elapsed_s)
        self._observe(claimed.listener_id, answer.elapsed_s)
        now = self._clock.now_ms()
        attempts = claimed.attempts + 1
        outcome = after_attempt(
            self._settings.retry_schedule_s,
            attempts,
            answer.status,
            parse_retry_after(answer.retry_after, now),
            now,
            self._rng,
        )
        state, next_at = outcome.state, outcome.next_attempt_at
        if state is DeliveryState.MISSED and (claimed.trial or answer.status == GONE):
            # A breaker's trial never makes its message missed (it is counted), nor does
            # a 410, which disables the listener: the delivery waits for it (SPEC §11).
            state, next_at = DeliveryState.PENDING, now
        elif state is DeliveryState.MISSED and await self._is_held(claimed.listener_id):
            # A listener that is down, failing or disabled never misses: not spent.
            state, next_at, attempts = DeliveryState.PENDING, now, claimed.attempts
        if answer.error:
            log.info(
                "delivery %s -> %s failed: %s",
                claimed.message_id,
                claimed.listener_id,
                answer.error,
            )
        held = self._per_listener[claimed.listener_id]
        if claimed.ordered or held >= self._caps.get(claimed.listener_id, claimed.send_cap):
            # Its lease counts until this outcome is written: claim again after that.
            self._claim_after_flush = True
        self._recorder.add(
            AttemptResult(
                claimed,
                answer.status,
                state,
                attempts,
                now,
                next_at,
                attempt_id=attempt_id,
                started_at=started_at,
                duration_ms=round(answer.elapsed_s * 1000),
                failure=answer.failure,
                response_body=body_text(answer.body),
            )
        )

    def _observe(self, listener_id: str, answer_s: float) -> None:
        """A slower answer counts at once, a faster one gradually: a listener that
        slows down loses its prefetch with its first slow answer."""
        before = self._answer_s.get(listener_id)
        if before is None and len(self._answer_s) >= MAX_OBSERVED:
            self._answer_s.clear()
        if before is not None and answer_s < before:
            answer_s = 0.8 * before + 0.2 * answer_s
        self._answer_s[listener_id] = answer_s

    async def _is_held(self, listener_id: str) -> bool:
        try:
            return await self._store.deliveries.held(listener_id)
        except StorageError:
            return False
