"""The dispatcher on the fake clock, without the Scheduler around it: the policy, the flights
and a memory ledger wired by hand, callers driven as a Slot would drive them.

Its admissions must be the greedy reference's, it must sleep until something can change (never
poll), refuse a deadline before sending, forget a cancelled waiter, and hand the calls of an
event loop that has gone to the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from test_property import calls, reserves, windows
from throttle_sim import Call, Outcome, drive, reference, settle

from agupshup.clock import FakeClock
from agupshup.errors import QuotaExhausted
from agupshup.throttle import MemoryLedger, Window
from agupshup.throttle._dispatcher import Dispatcher
from agupshup.throttle._flights import Flights
from agupshup.throttle._ledger import Admission, with_margins
from agupshup.throttle._policy import AdmissionPolicy
from agupshup.throttle._report import Alerts


class CountingLedger(MemoryLedger):
    """Counts the admissions asked of it."""

    asked = 0

    def admit_now(self, limits: Sequence[int]) -> Admission:
        self.asked += 1
        return super().admit_now(limits)


class Parts:
    """A dispatcher and what it needs, on ``clock``."""

    def __init__(self, ws: Sequence[Window], clock: FakeClock, reserve: float = 0.0) -> None:
        self.clock = clock
        self.ledger = CountingLedger()
        self.ledger.bind(with_margins(ws), clock)
        policy = AdmissionPolicy(ws, reserve, burst_margin=0)
        self.flights = Flights(clock, self.ledger, policy,
                               look_again=lambda: self.dispatcher.poke())
        self.dispatcher = Dispatcher(tuple(ws), clock, self.ledger, policy, Alerts(ws, None),
                                     self.flights)

    async def call(self, lane: str, latency: float, max_wait: float | None = None) -> float:
        """One call as a Slot makes it: admitted, in flight ``latency``, released."""
        self.dispatcher.follow_loop()
        ticket = await self.dispatcher.admit(lane, self.clock.monotonic(), max_wait)  # type: ignore[arg-type]
        admitted = self.clock.monotonic()
        await asyncio.sleep(0)  # as in throttle_sim: answers come after the moment's arrivals
        await self.clock.sleep(latency)
        assert self.flights.ended(ticket)
        await self.flights.finish(ticket, lane, (), ())  # type: ignore[arg-type]
        return admitted


async def run(ws: list[Window], cs: list[Call], reserve: float) -> list[Outcome]:
    clock = FakeClock()
    parts = Parts(ws, clock, reserve)
    outcomes: list[Outcome] = [None] * len(cs)

    async def one(i: int, c: Call) -> None:
        await clock.sleep(c.arrival)
        try:
            admitted = await parts.call(c.lane, c.latency, c.max_wait)
        except QuotaExhausted:
            return
        outcomes[i] = (admitted, admitted + c.latency)

    tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(cs)]
    await drive(clock, tasks)
    await parts.dispatcher.stop()
    return outcomes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ws=windows(1 / 8), cs=calls(1 / 8), reserve=reserves)
async def test_admits_as_the_greedy_reference(
    ws: list[Window], cs: list[Call], reserve: float
) -> None:
    assert await run(ws, cs, reserve) == reference(cs, ws, reserve)


MINUTE = Window("minute", 2, 10.0, 2)


def sleepers(clock: FakeClock) -> list[float]:
    """When each task sleeping on the clock wakes."""
    return sorted(deadline for deadline, _, fut in clock._sleepers if not fut.done())


async def test_waiting_sleeps_until_a_place_may_free_and_never_polls(clock: FakeClock) -> None:
    parts = Parts([MINUTE], clock)
    margin = with_margins([MINUTE])[0].length - MINUTE.length
    first = [asyncio.create_task(parts.call("bulk", 1.0)) for _ in range(2)]
    third = asyncio.create_task(parts.call("bulk", 1.0))
    await settle()
    assert parts.dispatcher.waiting == 1
    assert parts.dispatcher.parked
    asked = parts.ledger.asked
    # Both in flight: no place can free before 10 (+ margin), so it sleeps until then, and
    # their answers at 1 do not wake it (nothing it planned with changed).
    assert sleepers(clock) == [1.0, 1.0, 10.0 + margin]  # the two calls, the dispatcher
    await clock.advance(1.0)
    await settle()
    assert sleepers(clock) == [10.0 + margin]
    await clock.advance(9.0 + margin)
    await settle()
    assert parts.ledger.asked == asked + 1  # one look: the places free at 11 (+ margin)
    assert sleepers(clock) == [11.0 + margin]
    await drive(clock, [*first, third])
    assert third.result() == 11.0 + margin
    assert parts.ledger.asked == asked + 2


async def test_a_deadline_that_cannot_be_met_is_refused_before_sending(
    clock: FakeClock,
) -> None:
    parts = Parts([MINUTE], clock)
    flying = [asyncio.create_task(parts.call("bulk", 1.0)) for _ in range(2)]
    await settle()
    with pytest.raises(QuotaExhausted) as refused:
        await parts.call("bulk", 1.0, max_wait=5.0)  # fast path: the ledger says 10 s
    assert refused.value.window == "minute"
    late = asyncio.create_task(parts.call("interactive", 1.0))  # queued: no fast path for bulk
    queued = asyncio.create_task(parts.call("bulk", 1.0, max_wait=5.0))
    await settle()
    assert queued.done()
    assert isinstance(queued.exception(), QuotaExhausted)
    assert clock.monotonic() == 0.0  # at once, not at the deadline
    await drive(clock, [*flying, late])


async def test_interactive_goes_first_and_a_cancelled_waiter_gives_up_its_place(
    clock: FakeClock,
) -> None:
    parts = Parts([Window("minute", 1, 10.0, 1)], clock)
    first = asyncio.create_task(parts.call("bulk", 1.0))
    await settle()
    bulk = asyncio.create_task(parts.call("bulk", 1.0))
    gone = asyncio.create_task(parts.call("interactive", 1.0))
    urgent = asyncio.create_task(parts.call("interactive", 1.0))
    await settle()
    gone.cancel()
    await settle()
    assert parts.dispatcher.waiting == 2
    await drive(clock, [first, bulk, urgent])
    assert urgent.result() < bulk.result()  # the cancelled one's turn went to the next


def test_a_new_event_loop_forgets_old_waiters_and_takes_over_their_calls() -> None:
    clock = FakeClock()
    parts = Parts([Window("minute", 1, 10.0, 1)], clock)
    stranded: list[asyncio.Task[float]] = []

    async def first_loop() -> None:
        parts.dispatcher.follow_loop()
        await parts.dispatcher.admit("bulk", 0.0, None)  # in flight when the loop stops
        stranded.append(asyncio.create_task(parts.call("bulk", 1.0)))  # waits, never served
        await settle()

    async def second_loop() -> None:
        assert parts.dispatcher.waiting == 1  # the old loop's waiter, until a call comes
        parts.dispatcher.follow_loop()
        assert parts.dispatcher.waiting == 0  # forgotten: never served, never counted
        assert parts.flights.late == 1  # the call in flight: released a window from now
        parts.flights.flush_late()
        assert parts.ledger.view().counts == (1,)  # released, and still counts its window

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(first_loop())  # stops with its tasks pending, not cancelled
        asyncio.run(second_loop())
    finally:
        loop.run_until_complete(end_tasks())  # the old loop's, which the new one left alone
        loop.close()


async def end_tasks() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
