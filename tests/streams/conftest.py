"""Fixtures of the stream tests: an emulator seeded with big groups, on a real or fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agupshup import Client, FakeClock
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.core import Emulator
from agupshup.emulator.throttle import ThrottleConfig

from .helpers import demo_client, direct_transport, method_of, stream_seed


@pytest.fixture
def gupshup_config() -> EmulatorConfig:
    """``gupshup_server`` (the emulator's pytest plugin) with big groups and no throttle."""
    return EmulatorConfig(seed=stream_seed(), throttle=ThrottleConfig.off())


@pytest.fixture
def fake_world() -> tuple[FakeClock, Emulator]:
    """A fake clock and an in-process emulator living on it (throttle off)."""
    clock = FakeClock()
    emulator = Emulator(
        EmulatorConfig(clock=clock, seed=stream_seed(), throttle=ThrottleConfig.off())
    )
    return clock, emulator


@pytest.fixture
async def fake_client(
    fake_world: tuple[FakeClock, Emulator],
) -> AsyncIterator[tuple[Client, FakeClock, Emulator, list[tuple[float, str]]]]:
    """A client on the fake clock, its calls served in-process; ``log`` is (time, method)."""
    clock, emulator = fake_world
    log: list[tuple[float, str]] = []
    transport = direct_transport(emulator, lambda f: log.append((clock.monotonic(),
                                                                      method_of(f))))
    async with demo_client("http://emulator.invalid", transport=transport, clock=clock) as c:
        yield c, clock, emulator, log
