"""The scheduler's promises, one by one, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence

import pytest
from aiolimiter import AsyncLimiter
from throttle_sim import LedgerFactory, next_deadline, quiet, settle

from agupshup.clock import FakeClock
from agupshup.errors import LedgerError, QuotaExhausted
from agupshup.models import ThrottleTag
from agupshup.throttle import (
    DEFAULT_WINDOWS,
    Admission,
    MemoryLedger,
    Scheduler,
    ThrottleEvent,
    Window,
    _ledger,
)

MINUTE = Window("minute", 2, 10.0, 2)
TWO = (MINUTE, Window("hour", 4, 100.0, 3))


class Log:
    """Runs calls as tasks and records when each was admitted."""

    def __init__(self, sched: Scheduler, clock: FakeClock) -> None:
        self.sched, self.clock = sched, clock
        self.admitted: dict[str, float] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(
        self,
        name: str,
        latency: float = 1.0,
        lane: str = "bulk",
        max_wait: float | None = None,
        tags: Sequence[ThrottleTag] = (),
        limited: bool = False,
    ) -> asyncio.Task[None]:
        async def run() -> None:
            async with self.sched.slot(lane, max_wait=max_wait) as slot:  # type: ignore[arg-type]
                self.admitted[name] = self.clock.monotonic()
                await self.clock.sleep(latency)
                slot.learn(tags, limited)

        self.tasks[name] = task = asyncio.create_task(run())
        return task

    async def close(self) -> None:
        """Close the scheduler, then end and collect every call still running."""
        await self.sched.aclose()
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def until(self, t: float) -> None:
        """Move to ``t`` one sleeper at a time, letting the ledger's I/O finish at each."""
        await quiet(self.sched)
        while (due := next_deadline(self.clock)) is not None and due <= t:
            await self.clock.advance(max(0.0, due - self.clock.monotonic()))
            await quiet(self.sched)
        await self.clock.advance(t - self.clock.monotonic())
        await quiet(self.sched)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the rules at exact times; the release margin has its own tests."""
    monkeypatch.setattr(_ledger, "MARGIN_MIN", 0.0)
    monkeypatch.setattr(_ledger, "MARGIN_SHARE", 0.0)


async def test_defaults() -> None:
    assert [(w.name, w.limit, w.length, w.warn) for w in DEFAULT_WINDOWS] == [
        ("minute", 30, 60.0, 25), ("hour", 1000, 3600.0, 990), ("day", 10000, 86400.0, 9990)]
    sched = Scheduler()
    assert [q.limit for q in sched.quota()] == [30, 1000, 10000]
    await sched.aclose()


async def test_in_flight_then_window_length(clock: FakeClock) -> None:
    sched = Scheduler([MINUTE], clock=clock)
    log = Log(sched, clock)
    for name in "abc":
        log.start(name, latency=3.0)
    await log.until(30)
    # a and b run 0..3 and leave the window at 13; c goes then.
    assert log.admitted == {"a": 0.0, "b": 0.0, "c": 13.0}
    await log.close()


async def test_max_wait_refuses_before_sending(clock: FakeClock) -> None:
    sched = Scheduler([MINUTE], clock=clock)
    log = Log(sched, clock)
    log.start("a"), log.start("b")
    await log.until(2)  # both done at 1: the window frees at 11
    with pytest.raises(QuotaExhausted) as caught:
        async with sched.slot(max_wait=5):
            pytest.fail("admitted")
    assert (caught.value.window, caught.value.free_at, caught.value.waited) == ("minute", 11, 0)
    assert clock.monotonic() == 2  # refused at once: the earliest admission was known
    late = log.start("late", max_wait=9)  # 2 + 9 = 11: just in time
    await log.until(12)
    assert log.admitted["late"] == 11
    assert late.done()
    assert sched.quota()[0].used == 1
    await log.close()


async def test_a_waiter_is_refused_when_its_deadline_cannot_be_met(clock: FakeClock) -> None:
    sched = Scheduler([MINUTE], clock=clock)
    log = Log(sched, clock)
    log.start("a"), log.start("b", latency=5.0)
    await log.until(2)
    log.start("first")  # takes the place freed at 11; the next frees at 15
    hopeful = log.start("hopeful", max_wait=9.5)
    await log.until(11)
    assert hopeful.done()
    assert isinstance(hopeful.exception(), QuotaExhausted)
    assert "hopeful" not in log.admitted
    assert log.admitted["first"] == 11
    await log.close()


async def test_cancelled_waiters_give_up_their_place(clock: FakeClock) -> None:
    sched = Scheduler([MINUTE], clock=clock)
    log = Log(sched, clock)
    for name in ("a", "b", "w1", "w2", "w3", "w4"):
        log.start(name)
    await log.until(2)
    assert sched.waiting == 4
    log.tasks["w1"].cancel()  # the head
    log.tasks["w3"].cancel()
    await log.until(11)
    assert sched.waiting == 0
    assert (log.admitted["w2"], log.admitted["w4"]) == (11, 11)
    for name in ("w1", "w3"):
        assert log.tasks[name].cancelled()
        assert name not in log.admitted
    await log.until(40)
    assert sched.quota()[0].used == 0  # nothing leaked
    await log.close()


async def test_cancelled_right_after_admission_returns_the_place(clock: FakeClock) -> None:
    victim: list[asyncio.Task[None]] = []

    def cancel_on_warn(event: ThrottleEvent) -> None:
        if event.kind == "warn" and victim:
            victim[0].cancel()  # the waiter's future has its ticket, its task has not resumed

    sched = Scheduler([Window("minute", 2, 10.0, 2)], clock=clock, on_event=cancel_on_warn)
    log = Log(sched, clock)
    log.start("a", latency=0.0)
    await log.until(1)
    log.start("b", latency=20.0)
    victim.append(log.start("c"))
    await log.until(5)
    assert "b" in log.admitted
    assert "c" not in log.admitted
    await log.until(10)
    assert victim[0].cancelled()
    assert sched.quota()[0].used == 1  # b only: c's ticket went back
    await log.close()


async def test_the_call_counts_even_if_the_body_raises(clock: FakeClock) -> None:
    sched = Scheduler([MINUTE], clock=clock)
    with pytest.raises(ConnectionError):
        async with sched.slot():
            raise ConnectionError("reset")
    assert sched.quota()[0].used == 1
    assert sched.quota()[0].free_at == 0  # still room for one more
    await sched.aclose()


async def test_interactive_first_and_its_reserve(clock: FakeClock) -> None:
    sched = Scheduler([Window("minute", 10, 10.0, 10)], clock=clock, interactive_reserve=0.2)
    log = Log(sched, clock)
    log.start("i0", lane="interactive", latency=0.0)
    await log.until(1)
    for i in range(9):
        log.start(f"b{i}", latency=0.0)
    await log.until(2)
    assert len(log.admitted) == 8  # i0 is in the window: bulk fills 10 - 2
    log.start("i1", lane="interactive", latency=0.0)
    log.start("i2", lane="interactive", latency=0.0)
    await log.until(3)
    assert log.admitted["i1"] == log.admitted["i2"] == 2  # the reserve, kept for them
    log.start("i3", lane="interactive", latency=0.0)
    await log.until(12)
    # At 10 i0 leaves: the interactive i3 goes first; at 11 the bulk b7, b8.
    assert (log.admitted["i3"], log.admitted["b7"], log.admitted["b8"]) == (10, 11, 11)
    await log.close()


async def test_a_reserve_unused_costs_nothing(clock: FakeClock) -> None:
    """Read-only, bulk fills every place; once interactive calls have aged out of the window,
    the reserve is released again."""
    sched = Scheduler([Window("minute", 10, 10.0, 10)], clock=clock, interactive_reserve=0.2)
    log = Log(sched, clock)
    for i in range(12):
        log.start(f"b{i}", latency=0.0)
    await log.until(1)
    assert len(log.admitted) == 10
    log.start("i0", lane="interactive", latency=0.0)
    await log.until(10.5)
    assert log.admitted["i0"] == 10  # first in line at the rollover
    assert (log.admitted["b10"], log.admitted["b11"]) == (10, 10)
    for i in range(12, 20):
        log.start(f"b{i}", latency=0.0)
    await log.until(11)
    assert "b16" in log.admitted  # 8 = 10 - the reserve
    assert "b17" not in log.admitted
    await log.until(20.5)
    assert log.admitted["b17"] == log.admitted["b19"] == 20
    await log.close()


async def test_the_last_places_wait_for_the_answers(
    clock: FakeClock, ledger_factory: LedgerFactory
) -> None:
    """Above ``limit - burst_margin`` calls go one at a time, after every answer is read."""
    sched = Scheduler([Window("minute", 10, 100.0, 8)], clock=clock, interactive_reserve=0.0,
                      ledger=ledger_factory())
    log = Log(sched, clock)
    for i in range(10):
        log.start(f"b{i}", latency=1.0 + i / 8)
    await log.until(0.5)
    assert len(log.admitted) == 6  # 10 - 2 * (10 - 8)
    await log.until(20)
    # b5 (the slowest of the first six) answers at 1.625; then one by one.
    assert [log.admitted[f"b{i}"] for i in range(6, 10)] == [1.625, 3.375, 5.25, 7.25]
    await log.close()


async def test_a_call_that_never_answers_holds_only_its_own_place(
    clock: FakeClock, ledger_factory: LedgerFactory
) -> None:
    sched = Scheduler([Window("minute", 10, 10.0, 8)], clock=clock, interactive_reserve=0.0,
                      ledger=ledger_factory())
    log = Log(sched, clock)
    log.start("hung", latency=1000.0)
    for i in range(8):
        log.start(f"b{i}", latency=1.0)
    await log.until(0.5)
    assert len(log.admitted) == 6  # up to the gate
    await log.until(12)
    # The five short calls left the window at 11: below the gate again, hung or not.
    assert log.admitted["b5"] == log.admitted["b7"] == 11
    await log.close()


async def test_a_foreign_burst_is_read_before_the_last_places(
    clock: FakeClock, ledger_factory: LedgerFactory
) -> None:
    """Another program on the IP lands 4 calls: the tag on our answer shows them, and the
    calls that would have been refused stay home (on shared ledgers too: the gate opens only
    once the release carrying the tag is in the ledger)."""
    window = Window("minute", 10, 100.0, 8)
    sched = Scheduler([window], clock=clock, interactive_reserve=0.0, ledger=ledger_factory())
    log = Log(sched, clock)
    seen = ThrottleTag(period="minute", count=10, warn=8, limit=10)  # 6 ours + 4 foreign
    for i in range(6):
        log.start(f"b{i}", latency=1.0, tags=[seen] if i == 5 else [])
    for i in range(6, 10):
        log.start(f"b{i}", latency=1.0)
    await log.until(50)
    assert len(log.admitted) == 6  # without the gate, all ten: four 113s
    assert (await sched.fetch_quota())[0].used == 10
    await log.close()


async def test_a_113_on_the_last_answer_holds_the_next_admission(
    clock: FakeClock, ledger_factory: LedgerFactory
) -> None:
    """The answer that opens the gate carries a 113: its hold is in the ledger before the
    dispatcher asks it again."""
    sched = Scheduler([Window("minute", 10, 100.0, 8)], clock=clock, interactive_reserve=0.0,
                      ledger=ledger_factory())
    log = Log(sched, clock)
    for i in range(5):
        log.start(f"b{i}", latency=1.0)
    log.start("b5", latency=2.0, limited=True)  # 113 at 2: every caller held until 102
    log.start("next", latency=1.0)
    await log.until(50)
    assert "next" not in log.admitted
    await log.until(110)
    assert log.admitted["next"] == 102
    await log.close()


async def test_tags_are_matched_by_limit_then_name(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    windows = [Window("600s", 30, 600.0, 25), Window("hour", 100, 3600.0, 90)]
    sched = Scheduler(windows, clock=clock, interactive_reserve=0.0, burst_margin=0)
    async with sched.slot() as slot:
        slot.learn([ThrottleTag(period="minute", count=27, warn=25, limit=30),  # by limit
                    ThrottleTag(period="hour", count=95, warn=90, limit=120),  # by name
                    ThrottleTag(period="week", count=5, warn=4, limit=7)])  # nothing
    async with sched.slot() as slot:
        slot.learn([ThrottleTag(period="week", count=6, warn=4, limit=7)])
    assert [q.used for q in sched.quota()] == [28, 96]
    text = caplog.text
    assert text.count("'week'") == 1  # logged once
    assert "matched by name only" in text
    await sched.aclose()


async def test_learning_raises_the_local_count(clock: FakeClock) -> None:
    events: list[ThrottleEvent] = []
    sched = Scheduler(DEFAULT_WINDOWS, clock=clock, on_event=events.append,
                      interactive_reserve=0.0)
    async with sched.slot() as slot:
        slot.learn([ThrottleTag(period="minute", count=27, warn=25, limit=30)])
    assert [q.used for q in sched.quota()] == [27, 27, 27]
    assert [(e.kind, e.period) for e in events] == [("warn", "minute")]
    async with sched.slot() as slot:
        slot.learn([ThrottleTag(period="minute", count=3, warn=25, limit=30)])
    assert sched.quota()[0].used == 28  # 27 and ours: never lowered
    await sched.aclose()


async def test_a_113_holds_everyone_until_the_window_rolls_over(
    clock: FakeClock, ledger_factory: LedgerFactory
) -> None:
    events: list[ThrottleEvent] = []
    windows = (Window("minute", 5, 10.0, 4), Window("hour", 10, 100.0, 9))
    sched = Scheduler(windows, clock=clock, on_event=events.append, ledger=ledger_factory())
    log = Log(sched, clock)
    tag = ThrottleTag(period="minute", count=5, warn=4, limit=5)
    log.start("a", latency=1.0, tags=[tag], limited=True)  # 113 at 1: hold until 11
    log.start("b", latency=5.0, tags=[tag], limited=True)  # 113 at 5: hold until 15
    log.start("d", latency=6.0)  # an ordinary answer at 6 does not end the hold
    await log.until(3)
    log.start("c", lane="interactive")  # the windows have room; only the hold is in the way
    await log.until(14)
    assert "c" not in log.admitted
    assert (await sched.fetch_quota())[0].held_until == 15
    await log.until(16)
    assert log.admitted["c"] == 15
    kinds = [(e.kind, e.period) for e in events]
    assert kinds.count(("limited", "minute")) == 2
    assert ("hold", "minute") in kinds
    await log.close()


async def test_the_latest_hold_wins(clock: FakeClock) -> None:
    sched = Scheduler(TWO, clock=clock)
    log = Log(sched, clock)
    log.start("a", latency=1.0, limited=True)  # no tags: the shortest window, until 11
    log.start("b", latency=2.0, tags=[ThrottleTag(period="hour", count=4)], limited=True)
    await log.until(3)
    quota = sched.quota()
    assert quota[1].held_until == 102
    assert quota[0].held_until is None
    assert all(q.free_at == 102 for q in quota)
    log.start("c", lane="interactive")
    await log.until(101)
    assert "c" not in log.admitted
    await log.until(103)
    assert log.admitted["c"] == 102
    await log.close()


class CountingLedger(MemoryLedger):
    asked = 0

    def admit_now(self, limits: Sequence[int]) -> Admission:
        self.asked += 1
        return super().admit_now(limits)


async def test_waiting_does_not_poll(clock: FakeClock) -> None:
    ledger = CountingLedger()
    sched = Scheduler([MINUTE], clock=clock, ledger=ledger)
    log = Log(sched, clock)
    log.start("a", latency=1000.0), log.start("b", latency=1000.0)
    for i in range(50):
        log.start(f"w{i}", latency=0.0)
    await log.until(999)
    # In flight for 1000 s: the dispatcher looks once per window length, and only it sleeps.
    assert ledger.asked < 2 + 50 + 100 + 5
    assert clock.sleepers == 3  # a, b, and the dispatcher's timer
    await log.until(1040)
    assert sched.waiting == 42  # two places at 1010, 1020, 1030, 1040
    await log.close()


async def test_quota_reports_use_and_the_next_free_time(clock: FakeClock) -> None:
    sched = Scheduler(TWO, clock=clock)
    log = Log(sched, clock)
    log.start("a", latency=2.0), log.start("b", latency=4.0)
    await log.until(1)
    minute, hour = sched.quota()
    assert (minute.used, minute.limit, minute.length, minute.free_at) == (2, 2, 10.0, 11.0)
    assert (hour.used, hour.free_at, hour.held_until) == (2, 1.0, None)
    await log.until(5)
    assert sched.quota()[0].free_at == 12.0  # a released at 2
    assert (await sched.fetch_quota())[0].free_at == 12.0
    await log.close()


async def test_events_and_logging(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: ThrottleEvent) -> None:
        raise RuntimeError("hook bug")

    sched = Scheduler([Window("minute", 3, 10.0, 2)], clock=clock, on_event=broken)
    log = Log(sched, clock)
    with caplog.at_level(logging.INFO, logger="agupshup.throttle"):
        for name in "abcd":
            log.start(name)
        await log.until(2)
    text = caplog.text
    assert "throttle warn: minute" in text
    assert "throttle hold: minute" in text
    assert "on_event hook failed" in text  # logged, never raised into the scheduler
    await log.close()


async def test_shared_is_one_scheduler_per_key() -> None:
    a = Scheduler.shared("http://one.example")
    assert Scheduler.shared("http://one.example") is a
    b = Scheduler.shared("http://two.example")
    assert b is not a
    await a.aclose()
    assert Scheduler.shared("http://one.example") is not a
    await Scheduler.shared("http://one.example").aclose()
    await b.aclose()


async def test_closing_fails_waiters(clock: FakeClock) -> None:
    sched = Scheduler([MINUTE], clock=clock)
    log = Log(sched, clock)
    log.start("a"), log.start("b"), log.start("c")
    await log.until(0.5)
    await log.close()
    await settle()
    assert isinstance(log.tasks["c"].exception(), RuntimeError)
    with pytest.raises(RuntimeError):
        async with sched.slot():
            pass
    await log.close()


class CountingLimiter(AsyncLimiter):
    """Counts who asked the pacer."""

    acquired = 0

    async def acquire(self, amount: float = 1) -> None:
        CountingLimiter.acquired += 1
        await super().acquire(amount)


async def test_pacing_spreads_bulk_calls_on_the_real_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("agupshup.throttle._pacing.AsyncLimiter", CountingLimiter)
    monkeypatch.setattr(CountingLimiter, "acquired", 0)
    windows = [Window("minute", 20, 1.0, 20), Window("day", 10, 0.5, 10)]
    sched = Scheduler(windows, interactive_reserve=0.0, pacing=True)
    stamps = []
    for _ in range(4):
        async with sched.slot():
            stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) > 0.04  # 10 calls per 0.5 s of the longest window: one per 0.05 s
    assert CountingLimiter.acquired == 4
    async with sched.slot("interactive"):
        pass
    assert CountingLimiter.acquired == 4  # not paced: it never asked the pacer
    with pytest.raises(QuotaExhausted) as caught:
        async with sched.slot(max_wait=0.0):
            pass
    assert caught.value.window == "pace"
    await sched.aclose()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Window("minute", 0, 60.0, 0)
    with pytest.raises(ValueError):
        Scheduler([])
    with pytest.raises(ValueError):
        Scheduler([MINUTE, MINUTE])
    with pytest.raises(ValueError):
        Scheduler(interactive_reserve=1.0)
    with pytest.raises(ValueError):
        Scheduler().slot("urgent")  # type: ignore[arg-type]


class FailingLedger(MemoryLedger):
    """A ledger that answers through coroutines (like the shared ones) and can break."""

    inline = False
    broken = False

    async def admit(self, limits: Sequence[int]) -> Admission:
        if self.broken:
            raise ConnectionError("ledger down")
        return self.admit_now(limits)


async def test_a_ledger_that_is_not_inline_is_asked_through_its_coroutines(
    clock: FakeClock,
) -> None:
    ledger = FailingLedger()
    sched = Scheduler([MINUTE], clock=clock, ledger=ledger)
    ledger.broken = True  # so a call that reached the coroutine says so
    with pytest.raises(LedgerError):
        async with sched.slot():
            pass
    await sched.aclose()


async def test_a_failing_ledger_fails_the_waiters(clock: FakeClock) -> None:
    ledger = FailingLedger()
    sched = Scheduler([MINUTE], clock=clock, ledger=ledger)
    log = Log(sched, clock)
    log.start("a"), log.start("b"), log.start("c")
    await log.until(1)
    assert set(log.admitted) == {"a", "b"}
    ledger.broken = True
    await log.until(20)
    failure = log.tasks["c"].exception()
    assert isinstance(failure, LedgerError)  # typed, with the backend's error as its cause
    assert isinstance(failure.__cause__, ConnectionError)
    ledger.broken = False
    log.start("d")
    await log.until(21)
    assert log.admitted["d"] == 20  # a new caller gets a new dispatcher
    await log.close()


async def test_a_waiter_cancelled_as_the_ledger_fails_is_counted_once(clock: FakeClock) -> None:
    """Its future is cancelled, the waiters are failed, and only then does its task see the
    cancellation: the count of waiters must not go below zero (nor stay in use)."""
    victim: list[asyncio.Task[None]] = []

    class CancellingLedger(FailingLedger):
        async def admit(self, limits: Sequence[int]) -> Admission:
            if self.broken and victim:
                victim.pop().cancel()  # cancels the awaited future; the task runs later
            return await super().admit(limits)

    ledger = CancellingLedger()
    sched = Scheduler([MINUTE], clock=clock, ledger=ledger)
    log = Log(sched, clock)
    log.start("a"), log.start("b")
    victim.append(log.start("w"))
    await log.until(1)
    assert sched.waiting == 1
    ledger.broken = True
    await log.until(20)  # at 11 the dispatcher asks the ledger again: it fails
    assert log.tasks["w"].cancelled()
    assert (sched.waiting, sched.in_use) == (0, False)
    ledger.broken = False
    log.start("d")
    await log.until(21)
    assert log.admitted["d"] == 20
    await log.close()


def test_a_scheduler_outlives_its_event_loop() -> None:
    sched = Scheduler([Window("minute", 1, 0.05, 1)])

    async def burst(seconds: float) -> int:
        async def call() -> None:
            async with sched.slot():
                await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(call()) for _ in range(3)]
        await asyncio.sleep(seconds)  # the loop ends with callers still waiting
        return sum(t.done() for t in tasks)

    assert asyncio.run(burst(0.02)) == 1
    assert asyncio.run(burst(0.1)) >= 1  # the second loop is served: nothing was left wedged

    async def close() -> None:
        await sched.aclose()

    asyncio.run(close())
