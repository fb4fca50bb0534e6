"""The emulator's traffic generator: deterministic, Zipf-skewed, Poisson, posted in order."""

from __future__ import annotations

import asyncio
import math

import pytest

from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.core import Emulator
from agupshup.emulator.traffic import Traffic, group_names, many_groups_seed, zipf_rates
from agupshup.virtualclock import VirtualClock, run_virtual


def test_zipf_rates_share_the_total_with_a_skew() -> None:
    rates = zipf_rates(group_names(100), 10.0, seed=1)
    assert sum(rates.values()) == pytest.approx(10.0)
    ordered = sorted(rates.values(), reverse=True)
    assert ordered[0] / ordered[9] == pytest.approx(10.0)  # rank 1 against rank 10
    assert zipf_rates(group_names(100), 10.0, seed=1) == rates
    assert zipf_rates(group_names(100), 10.0, seed=2) != rates


def test_arrivals_are_deterministic_and_poisson() -> None:
    rates = {"a": 0.5, "b": 0.05}
    one = Traffic(rates, 1000.0, 20_000.0, seed=9)
    assert one.arrivals == Traffic(rates, 1000.0, 20_000.0, seed=9).arrivals
    assert one.arrivals != Traffic(rates, 1000.0, 20_000.0, seed=8).arrivals
    count = sum(a.group == "a" for a in one.arrivals)
    assert abs(count - 10_000) < 5 * math.sqrt(10_000)
    assert all(1000.0 <= a.at < 21_000.0 for a in one.arrivals)


def test_pump_posts_what_is_due_in_time_order() -> None:
    clock = VirtualClock()
    groups = group_names(20)
    emulator = Emulator(EmulatorConfig(clock=clock, seed=many_groups_seed(groups)))
    traffic = Traffic(zipf_rates(groups, 0.1), clock.time(), 600.0, seed=4)

    async def main() -> tuple[int, int, int]:
        before = traffic.pump(emulator)
        await clock.sleep(300)
        first = traffic.pump(emulator)
        await clock.sleep(400)
        return before, first, traffic.pump(emulator)

    before, first, rest = asyncio.run(run_virtual(clock, main()))
    assert before == 0
    assert first + rest == len(traffic.arrivals) > 0
    assert traffic.pending() == 0
    ids = [ident for ident, _, _ in traffic.posted]
    stamps = [stamp for _, _, stamp in traffic.posted]
    assert ids == sorted(ids)
    assert stamps == sorted(stamps)
    assert stamps == [int(a.at * 1000) for a in traffic.arrivals]


def test_seed_joins_the_chosen_groups() -> None:
    groups = group_names(5)
    emulator = Emulator(EmulatorConfig(seed=many_groups_seed(groups, joined=groups[:2],
                                                             private=groups[1:2])))
    joined = emulator.world.joined("9000000002")
    assert [g.name for g in joined] == groups[:2]
    assert [g.private for g in joined] == [False, True]
