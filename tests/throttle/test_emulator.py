"""Against the emulator, at full demand, windows shrunk to seconds: no 113, sliding or fixed,
and at least 99 % of the admissions the optimal schedule gets."""

from __future__ import annotations

import time
from dataclasses import astuple, fields

import pytest
from benchmarks.throttle import optimum
from throttle_http import full_demand

from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.server import EmulatorServer
from agupshup.emulator.throttle import ThrottleConfig
from agupshup.emulator.throttle import Window as ServerWindow
from agupshup.throttle import Scheduler, Window

# A "minute" of 20 per second and an "hour" of 60 per 4 s: both bind during the run. Calls go
# in batches at about 0, 1, 2 and 4 s (each a little later than the last, by the latency):
# the run ends between two batches, so the count does not hinge on a millisecond.
WINDOWS = (Window("minute", 20, 1.0, 15), Window("hour", 60, 4.0, 55))
DURATION = 4.5


def server_config(mode: str) -> EmulatorConfig:
    windows = tuple(ServerWindow(*astuple(w)) for w in WINDOWS)
    return EmulatorConfig(throttle=ThrottleConfig(mode=mode, windows=windows))  # type: ignore[arg-type]


def test_server_window_mirrors_the_client_window() -> None:
    # The emulator mirrors the client's Window (it may not import it): same fields, same order.
    assert [f.name for f in fields(ServerWindow)] == [f.name for f in fields(Window)]


@pytest.mark.parametrize("mode", ["sliding", "fixed"])
async def test_full_demand_spends_the_quota_without_a_113(mode: str) -> None:
    async with EmulatorServer(server_config(mode)) as server:
        sched = Scheduler(WINDOWS, interactive_reserve=0.0)
        admitted, limited = await full_demand(sched, server.url, 40, time.time() + 0.2, DURATION)
        await sched.aclose()
        refusals = sum(server.emulator.throttle.refusals.values())
    best = optimum(WINDOWS, DURATION)
    got = sum(1 for t in admitted if t < DURATION)
    print(f"{mode}: {got} admissions of an optimum {best}; {refusals} x 113")
    assert (refusals, limited) == (0, 0)
    assert got >= 0.99 * best, (got, best)
