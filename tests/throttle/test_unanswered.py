"""A call whose answer was never read may be counted by the server after we stopped waiting."""

from __future__ import annotations

import asyncio

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
    assert not sched._late


async def test_the_last_user_leaving_releases_late_calls_at_once() -> None:
    clock = FakeClock()
    sched = Scheduler([MINUTE], clock=clock).attach()
    with pytest.raises(ConnectionError):
        async with sched.slot():
            raise ConnectionError("reset")
    sched.detach()  # no task outlives the last client
    await quiet(sched)
    assert not sched._late
    await clock.advance(FREE)
    assert not await refused_now(sched)
    await sched.aclose()
