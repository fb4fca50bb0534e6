"""The release margin: the server's clock may run a little slower than ours."""

from __future__ import annotations

import pytest
from throttle_sim import Call, reference, simulate

from agupshup.clock import FakeClock
from agupshup.errors import QuotaExhausted
from agupshup.throttle import Scheduler, Window, scaled_windows
from agupshup.throttle._ledger import release_margin


async def test_a_release_keeps_its_place_past_the_window_by_the_margin() -> None:
    clock = FakeClock()
    sched = Scheduler([Window("minute", 1, 10.0, 1)], clock=clock)
    async with sched.slot():
        await clock.advance(1.0)
    # Completed at 1: the server's window may still hold the call at 11 on its slower clock.
    await clock.advance(10.0)
    with pytest.raises(QuotaExhausted):
        async with sched.slot(max_wait=0):
            pytest.fail("admitted at completion + length, without a margin")
    await clock.advance(release_margin(10.0))
    async with sched.slot(max_wait=0):
        pass
    await sched.aclose()


def test_the_margin_is_a_millisecond_or_a_ten_thousandth_of_the_window() -> None:
    minute, _, day = scaled_windows(600)
    assert 0.9e-3 < release_margin(minute.length) < 1.1e-3  # 0.6 s of the server's minute
    assert 0.9e-4 < release_margin(day.length) / day.length < 1.3e-4


async def test_the_reserve_lapses_on_time_though_planned_while_the_call_flew() -> None:
    """Bulk waits for the interactive reserve; the dispatcher planned while the interactive
    call was in flight (as if it ended a padded length later), its landing re-plans."""
    clock = FakeClock()
    windows = [Window("w0", 1, 0.125, 1), Window("w1", 2, 0.25, 2)]
    sched = Scheduler(windows, clock=clock, interactive_reserve=0.5)
    calls = [Call(0.0, 0.0), Call(0.0, 0.0), Call(0.0, 0.0, "interactive")]
    got = await simulate(sched, clock, calls)
    await sched.aclose()
    assert got == reference(calls, windows, 0.5)
    assert got[1] == (0.125 + release_margin(0.125) + 0.25,) * 2  # the lapse, not the release
