"""A call whose answer was never read may be counted by the server after we stopped waiting."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from throttle_sim import quiet

from agupshup.clock import FakeClock
from agupshup.errors import QuotaExhausted
from agupshup.models import ThrottleTag
from agupshup.throttle import Scheduler, Window
from agupshup.throttle._ledger import release_margin

MINUTE = Window("minute", 1, 10.0, 1)
FREE = 10.0 + release_margin(10.0)  # a release, after completion


async def refused_now(sched: Scheduler) -> bool:
    try:
        async with sched.slot(max_wait=0):
            return False
    except QuotaExhausted:
        return True


async def test_a_call_cancelled_in_flight_stays_a_shortest_window_longer() -> None:
    clock = FakeClock()
    sched = Scheduler([MINUTE], clock=clock)

    async def call() -> None:
        async with sched.slot():
            await clock.sleep(5.0)  # the request is out; the answer never comes

    task = asyncio.create_task(call())
    await clock.advance(1.0)
    task.cancel()  # e.g. the stream was handed to another worker: its request may still count
    await asyncio.gather(task, return_exceptions=True)
    await clock.advance(FREE)
    assert await refused_now(sched)  # not released at cancellation + length
    await clock.advance(10.0)
    await quiet(sched)
    assert not await refused_now(sched)
    await sched.aclose()


async def test_an_answered_call_that_raised_is_released_at_once() -> None:
    clock = FakeClock()
    sched = Scheduler([MINUTE], clock=clock)

    async def answered_then_failed() -> None:
        async with sched.slot() as slot:
            slot.learn([ThrottleTag(period="minute", count=1, warn=1, limit=1)])
            raise RuntimeError("the answer was read, then the caller failed")

    with pytest.raises(RuntimeError):
        await answered_then_failed()
    await clock.advance(FREE)
    assert not await refused_now(sched)
    await sched.aclose()


async def test_closing_does_not_wait_for_late_releases() -> None:
    clock = FakeClock()
    sched = Scheduler([MINUTE], clock=clock)
    with pytest.raises(ConnectionError):
        async with sched.slot():
            raise ConnectionError("reset")
    await sched.aclose()  # the late release is made at once
    assert not sched._flights.late


async def test_the_last_user_leaving_releases_late_calls_at_once() -> None:
    clock = FakeClock()
    sched = Scheduler([MINUTE], clock=clock).attach()
    with pytest.raises(ConnectionError):
        async with sched.slot():
            raise ConnectionError("reset")
    sched.detach()  # no task outlives the last client
    await quiet(sched)
    assert not sched._flights.late
    await clock.advance(FREE)
    assert not await refused_now(sched)
    await sched.aclose()


def test_a_new_event_loop_keeps_every_place_of_the_old_ones_calls() -> None:
    """A shared scheduler adopted by a new loop used to forget the late releases (and the
    calls in flight) of the old one while the memory ledger still counted them: places of
    the window lost for good (2 of 3 admitted a day later)."""
    clock = FakeClock()
    sched = Scheduler([Window("minute", 3, 10.0, 3)], clock=clock, burst_margin=0)

    async def old_loop() -> None:
        async def call() -> None:
            async with sched.slot():
                await clock.sleep(5.0)  # the answer never comes

        cancelled = asyncio.create_task(call())
        flying = asyncio.create_task(call())  # still in flight when the loop ends
        await clock.advance(1.0)
        cancelled.cancel()  # its late release is pending when the loop ends
        await asyncio.gather(cancelled, return_exceptions=True)
        assert not flying.done()

    async def a_day_later() -> int:
        assert not await refused_now(sched)  # the new loop takes over; one place was free
        await clock.advance(86_400.0)
        async with contextlib.AsyncExitStack() as held:
            admitted = 0
            for _ in range(3):
                with contextlib.suppress(QuotaExhausted):
                    await held.enter_async_context(sched.slot(max_wait=0))
                    admitted += 1
        await sched.aclose()
        return admitted

    asyncio.run(old_loop())
    assert asyncio.run(a_day_later()) == 3


def test_a_new_event_loop_still_waits_out_an_old_late_release() -> None:
    clock = FakeClock()
    sched = Scheduler([MINUTE], clock=clock)

    async def old_loop() -> None:
        with contextlib.suppress(ConnectionError):
            async with sched.slot():
                raise ConnectionError("reset before the answer")

    async def new_loop() -> tuple[bool, bool]:
        early = await refused_now(sched)  # adopts: the late release is still due
        await clock.advance(2 * FREE)
        await quiet(sched)
        later = await refused_now(sched)
        await sched.aclose()
        return early, later

    asyncio.run(old_loop())
    assert asyncio.run(new_loop()) == (True, False)
