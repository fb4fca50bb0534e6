"""The Redis ledger across wipes and clock steps (rules at the top of
``agupshup/throttle/_redis.py``): a flushed ledger holds everyone for the longest window and says
so once; a step of the clock Redis reads neither admits early nor stalls."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from agupshup.clock import Clock, FakeClock, SystemClock
from agupshup.throttle import RedisLedger, Window

W = (Window("minute", 3, 10.0, 2), Window("hour", 5, 40.0, 4))
FULL = (3, 5)


class SteppedClock:
    """A fake clock whose wall clock (what the ledger takes for Redis ``TIME``) can be stepped."""

    def __init__(self) -> None:
        self.fake = FakeClock(autojump=True)
        self.step = 0.0

    def monotonic(self) -> float:
        return self.fake.monotonic()

    def time(self) -> float:
        return self.fake.time() + self.step

    async def sleep(self, seconds: float) -> None:
        await self.fake.sleep(seconds)


Make = Callable[[Clock], RedisLedger]


@pytest.fixture
async def make(redis_url: str) -> AsyncIterator[Make]:
    made: list[RedisLedger] = []
    key = f"test:{uuid.uuid4().hex}"

    def build(clock: Clock) -> RedisLedger:
        server_time = isinstance(clock, SystemClock)
        ledger = RedisLedger(redis_url, key=key, lease=30.0, server_time=server_time)
        ledger.bind(W, clock)
        made.append(ledger)
        return ledger

    yield build
    for ledger in made:
        await ledger.aclose()


async def spend(ledger: RedisLedger, n: int) -> None:
    for _ in range(n):
        admission = await ledger.admit(FULL)
        assert admission.ticket is not None
        await ledger.release(admission.ticket)


async def flushall(redis_url: str) -> None:
    async with Redis.from_url(redis_url) as r:
        await r.flushall()


async def test_a_flushed_ledger_holds_everyone_for_the_longest_window(
    make: Make, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    ledger = make(clock)
    await spend(ledger, 2)
    await flushall(redis_url)  # a restart without persistence
    caplog.set_level(logging.WARNING, "agupshup.throttle")
    admitted = 0
    for _ in range(40):  # one attempt a second for the whole hour window: none may pass
        admitted += (await ledger.admit(FULL)).ticket is not None
        admitted += (await make(clock).admit(FULL)).ticket is not None  # a fresh process too
        await clock.advance(1.0)
    assert admitted == 0
    wiped = [r for r in caplog.records if "wiped" in r.getMessage()]
    assert len(wiped) == 1, "warn once per wipe"
    assert redis_url not in wiped[0].getMessage()
    assert (await ledger.admit(FULL)).ticket is not None


async def test_a_flush_under_redis_time_holds_too(make: Make, redis_url: str) -> None:
    ledger = make(SystemClock())
    await spend(ledger, 3)
    await flushall(redis_url)
    refused = await ledger.admit(FULL)
    assert (refused.ticket, refused.window) == (None, 1)
    assert 35.0 < refused.wait <= 40.0


async def test_tickets_after_a_wipe_never_collide_with_earlier_ones(
    make: Make, redis_url: str
) -> None:
    clock = FakeClock()
    before = await make(clock).admit(FULL)
    await flushall(redis_url)
    await clock.advance(1.0)
    after = await make(clock).admit(FULL)
    assert before.ticket is not None
    assert after.ticket is not None
    assert after.ticket > before.ticket


@pytest.mark.parametrize("step", [61.0, -61.0])
async def test_a_step_of_the_redis_clock_admits_nothing_early_and_stalls_nobody(
    make: Make, step: float
) -> None:
    clock = SteppedClock()
    ledger = make(clock)  # type: ignore[arg-type]
    await spend(ledger, 3)
    clock.step = step
    refused = await ledger.admit(FULL)
    assert refused.ticket is None, "the step admitted a call beyond the limit"
    assert 8.0 < refused.wait <= 10.0  # the minute window, up to a second of latency allowance
    clock.step = -step  # and back again
    assert 8.0 < (await ledger.admit(FULL)).wait <= 10.0
    await clock.fake.advance(10.0)
    assert (await ledger.admit(FULL)).ticket is not None
