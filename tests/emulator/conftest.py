"""Fixtures of the emulator tests: a fake clock, the plugin's server on it, a plain client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from agupshup.emulator import EmulatorConfig, EmulatorServer, ThrottleConfig

from .helpers import Api, FakeTime


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def gupshup_config(clock: FakeTime) -> EmulatorConfig:
    """Every emulator test server: the fake clock, no throttle (tests that need it turn it on)."""
    return EmulatorConfig(clock=clock, throttle=ThrottleConfig.off())


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def api(session: aiohttp.ClientSession, gupshup_server: EmulatorServer) -> Api:
    return Api(session, gupshup_server)
