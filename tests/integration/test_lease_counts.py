"""How a claim counts the other engines' leases of a listener (storage/leases.py) on
both databases: two engines play against one listener's ``max_in_flight`` through
the store, with the times given, and nothing but the counts tells them apart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import Running
from tests.integration.test_delivery import post
from tidings.domain.ids import now_ms
from tidings.domain.models import DeliveryState
from tidings.storage.deliveries import AttemptResult, Claimed
from tidings.storage.engines import Membership

LEASE_MS = 60_000
CAP = 3


@pytest.fixture
async def join(idle: Running) -> AsyncIterator[Callable[[], Awaitable[Membership]]]:
    """Engines the test plays (each holds its liveness lock until the test ends)."""
    joined: list[Membership] = []

    async def one() -> Membership:
        joined.append(await idle.store.engines.join(now_ms()))
        return joined[-1]

    yield one
    for me in joined:
        await me.lock.release()


Join = Callable[[], Awaitable[Membership]]


# Unordered without a rate limit: PostgreSQL counts in the lease statement itself;
# rate-limited: it reads the counts first (storage/claims.py ``by_count``).
@pytest.fixture(params=[{}, {"rate_limit": 1000}], ids=["counted-in-lease", "counted-first"])
async def listener(idle: Running, request: pytest.FixtureRequest) -> str:
    r = await idle.call("POST", "/queues", json={"name": "q"})
    qid: str = r.json()["queue"]["id"]
    body = {
        "name": "l",
        "notify_url": "http://127.0.0.1:9/hook",
        "liveness_url": "http://127.0.0.1:9/live",
        "max_in_flight": CAP,
        **request.param,
    }
    r = await idle.call("POST", f"/queues/{qid}/listeners", json=body)
    assert r.status_code == 200, r.text
    for _ in range(8):
        await post(idle, qid)
    lid: str = r.json()["listener"]["id"]
    return lid


async def _claim(server: Running, me: Membership, now: int, **kw: Any) -> list[Claimed]:
    # At most CAP each: an engine may also lease up to max_in_flight - 1 to wait for
    # its send slots (domain/flow.py ``window``).
    claim = server.store.deliveries.claim
    return list(await claim(me.id, now, now + LEASE_MS, 10, CAP, [], **kw))


async def _record(server: Running, done: list[Claimed], at: int) -> None:
    delivered = DeliveryState.DELIVERED
    await server.store.deliveries.record(
        [AttemptResult(c, 200, delivered, 1, at, None) for c in done]
    )


async def _counts(server: Running) -> dict[int, int]:
    rows = await server.store.db.fetch(
        "SELECT engine_id, sum(leased) AS n FROM lease_counts GROUP BY engine_id"
    )
    return {r["engine_id"]: r["n"] for r in rows}


async def test_another_engines_leases_count_until_their_outcomes_are_recorded(
    idle: Running, listener: str, join: Join
) -> None:
    a, b = await join(), await join()
    now = now_ms() + 1000
    mine = await _claim(idle, a, now)
    assert [c.send_cap for c in mine] == [CAP] * CAP
    assert await _claim(idle, b, now + 1) == []  # a holds all three
    assert await _counts(idle) == {a.id: CAP}

    await _record(idle, mine[:2], now + 2)
    assert await _counts(idle) == {a.id: 1}
    theirs = await _claim(idle, b, now + 3)
    # a still holds one: b may have two requests open (and one more waiting).
    assert [c.send_cap for c in theirs] == [CAP - 1] * CAP
    # b's own come from b (``held``), the other's from its count: nothing more.
    assert await _claim(idle, b, now + 4, held={listener: CAP}) == []
    assert await _claim(idle, a, now + 5, held={listener: 1}) == []

    await _record(idle, [*mine[2:], *theirs], now + 6)
    assert await _counts(idle) == {a.id: 0, b.id: 0}
    assert [c.send_cap for c in await _claim(idle, b, now + 7)] == [CAP] * 2  # 2 left


async def test_an_engine_counted_below_zero_hides_no_other_engines_leases(
    idle: Running, listener: str, join: Join
) -> None:
    """Outcomes recorded twice (a retried commit whose answer was lost) take an
    engine's count below zero; that counts as zero for its engine only."""
    a, b, c = await join(), await join(), await join()
    now = now_ms() + 1000
    twice = await _claim(idle, a, now)
    await _record(idle, twice, now + 1)
    await _record(idle, twice, now + 2)
    assert await _counts(idle) == {a.id: -CAP}
    assert [x.send_cap for x in await _claim(idle, c, now + 3)] == [CAP] * CAP
    assert await _claim(idle, b, now + 4) == []  # c holds all three, whatever a's count


async def test_a_dead_or_leaving_engines_counts_go_with_it(idle: Running, listener: str) -> None:
    engines = idle.store.engines
    dead, alive = await engines.join(now_ms()), await engines.join(now_ms())
    now = now_ms() + 1000
    assert len(await _claim(idle, dead, now)) == CAP
    await dead.lock.release()  # what its death does
    assert await engines.take_over(alive, now_ms()) == CAP
    assert await _counts(idle) == {}
    again = await _claim(idle, alive, now + 1)  # the released ones among them
    assert [c.send_cap for c in again] == [CAP] * CAP
    await engines.leave(alive)
    assert await _counts(idle) == {}


async def test_a_stalled_engines_count_ends_with_its_bucket(
    idle: Running, listener: str, join: Join
) -> None:
    """An engine that never records (stalled, or its deliveries were deleted) holds
    its count only until the count's bucket ends: at most a quarter of a lease after
    the leases in it, and then the rows are claimable again."""
    stalled, other = await join(), await join()
    now = now_ms() + 1000
    held = await _claim(idle, stalled, now)
    assert len(held) == CAP
    assert held[0].counted is not None
    ends = held[0].counted[1]
    lease_until = now + LEASE_MS
    assert lease_until <= ends <= lease_until + LEASE_MS // 2  # a quarter, look-ahead included
    assert await _claim(idle, other, ends - 1) == []
    again = await _claim(idle, other, ends)
    assert {c.message_id for c in again} == {c.message_id for c in held}
    await idle.store.engines.take_over(other, ends)  # drops the ended counts on its way
    assert stalled.id not in await _counts(idle)
