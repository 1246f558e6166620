"""A listener's send slots (tidings/delivery/slots.py): the engine takes one without
awaiting when it is free and waits otherwise; a wait that is cancelled never keeps a
slot, so a listener's cap is never lost to attempts cancelled at shutdown."""

from __future__ import annotations

import asyncio

from tidings.delivery.slots import SendSlots


async def test_free_slots_are_taken_at_once_and_the_next_waits_for_a_release() -> None:
    slots = SendSlots(2)
    assert slots.take() and slots.take()
    assert not slots.take()
    waiting = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    slots.release()
    await asyncio.wait_for(waiting, 1)
    assert slots.busy == 2


async def test_a_cancelled_wait_takes_no_slot() -> None:
    slots = SendSlots(1)
    assert slots.take()
    waiting = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    slots.release()
    assert slots.busy == 0
    assert slots.take()


async def test_a_larger_capacity_lets_a_waiting_attempt_start() -> None:
    slots = SendSlots(1)
    assert slots.take()
    waiting = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    slots.resize(2)
    await asyncio.wait_for(waiting, 1)
    assert slots.busy == 2


async def test_a_release_starts_one_waiter_in_arrival_order() -> None:
    slots = SendSlots(1)
    assert slots.take()
    order: list[int] = []

    async def attempt(n: int) -> None:
        await slots.wait()
        order.append(n)

    waiting = [asyncio.create_task(attempt(n)) for n in range(3)]
    await asyncio.sleep(0)
    for _ in range(3):
        slots.release()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*waiting), 1)
    assert order == [0, 1, 2]
    assert slots.busy == 1


async def test_a_waiter_cancelled_after_its_wake_up_passes_the_slot_on() -> None:
    slots = SendSlots(1)
    assert slots.take()
    first = asyncio.create_task(slots.wait())
    second = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    slots.release()  # wakes the first only
    first.cancel()  # before it ran: its wake-up must reach the second
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)
    assert slots.busy == 1
