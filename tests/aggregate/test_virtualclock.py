"""The virtual clock: time jumps only when every task waits, sleepers wake in deadline order."""

from __future__ import annotations

import asyncio

from agupshup.virtualclock import VirtualClock, run_virtual


def test_sleepers_wake_in_deadline_order_at_their_deadlines() -> None:
    clock = VirtualClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async def main() -> float:
        await asyncio.gather(sleeper("c", 30), sleeper("a", 10), sleeper("b", 20),
                             sleeper("a2", 10))
        return clock.monotonic()

    assert asyncio.run(run_virtual(clock, main())) == 130.0
    assert woke == [("a", 110.0), ("a2", 110.0), ("b", 120.0), ("c", 130.0)]


def test_time_does_not_move_while_a_task_can_run() -> None:
    clock = VirtualClock()

    async def busy() -> float:
        for _ in range(1000):  # a long burst of ready work, no sleep
            await asyncio.sleep(0)
        return clock.monotonic()

    async def main() -> tuple[float, None]:
        return await asyncio.gather(busy(), clock.sleep(5))

    assert asyncio.run(run_virtual(clock, main()))[0] == 0.0
    assert clock.time() == 1_700_000_005.0
