"""A short run over real HTTP on loopback: the emulator (60× time) posts Zipf traffic into 30
groups while the follower reads them through the joined and public streams."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from agupshup import Client, Throttle
from agupshup.aggregate import follow_groups
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.server import EmulatorServer
from agupshup.emulator.traffic import (
    READER_PASSWORD,
    READER_PHONE,
    Traffic,
    group_names,
    many_groups_seed,
    zipf_rates,
)
from agupshup.planner import Budget
from agupshup.throttle import Window

SCALE = 60.0
GROUPS = group_names(30)
JOINED = GROUPS[:15]
#: The real windows, shrunk like the emulator's time (a real second is an emulator minute).
WINDOWS = (
    Window("minute", 30, 60 / SCALE, 25),
    Window("hour", 1000, 3600 / SCALE, 990),
    Window("day", 10000, 86400 / SCALE, 9990),
)


@pytest.fixture
def gupshup_config() -> EmulatorConfig:
    return EmulatorConfig(seed=many_groups_seed(GROUPS, joined=JOINED), time_scale=SCALE)


async def test_follows_thirty_groups_over_http(gupshup_server: EmulatorServer) -> None:
    emulator = gupshup_server.emulator
    traffic = Traffic(zipf_rates(GROUPS, 0.5), emulator.timebase.now(), 120.0, seed=3)
    expected = len(traffic.arrivals)
    assert expected > 20
    got: list[int] = []
    async with Client(
        gupshup_server.base_url, phone=READER_PHONE, password=READER_PASSWORD,
        throttle=Throttle(windows=WINDOWS),
    ) as client:
        follower = follow_groups(client, GROUPS, budget=Budget(0.8, WINDOWS))
        async with follower, anyio.create_task_group() as tg:
            tg.start_soon(traffic.run, emulator, asyncio.sleep)
            with anyio.fail_after(30):
                while len(got) < expected:
                    got.append((await anext(follower)).id)
            tg.cancel_scope.cancel()
    assert sorted(got) == sorted(ident for ident, _, _ in traffic.posted)
    assert emulator.throttled == {}
    assert {s.source.kind for s in follower.plan.sources} <= {"joined", "public"}
