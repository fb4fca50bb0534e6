"""The pytest plugin's fixtures and the ways to configure them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agupshup.emulator import EmulatorConfig, EmulatorServer, ThrottleConfig

from .helpers import FakeTime


async def test_the_fixture_uses_the_overridden_config(
    gupshup_server: EmulatorServer, clock: FakeTime
) -> None:
    assert gupshup_server.emulator.config.clock is clock
    assert gupshup_server.emulator.config.throttle.mode == "off"
    assert gupshup_server.base_url.startswith("http://127.0.0.1:")


@pytest.mark.gupshup(token_idle=5.0, throttle=ThrottleConfig())
async def test_marker_overrides_fields(gupshup_server: EmulatorServer) -> None:
    config = gupshup_server.emulator.config
    assert config.token_idle == 5.0
    assert config.throttle.mode == "sliding"


@pytest.mark.parametrize("gupshup_server", [{"time_scale": 60.0}], indirect=True)
async def test_indirect_dict(gupshup_server: EmulatorServer, clock: FakeTime) -> None:
    assert gupshup_server.emulator.config.time_scale == 60.0
    assert gupshup_server.emulator.config.clock is clock


@pytest.mark.parametrize("gupshup_server", [EmulatorConfig(poster_limit=1)], indirect=True)
async def test_indirect_config(gupshup_server: EmulatorServer) -> None:
    assert gupshup_server.emulator.config.poster_limit == 1
    assert gupshup_server.emulator.config.clock is None


def test_importing_the_plugin_is_cheap() -> None:
    code = (
        "import sys, agupshup.emulator.pytest_plugin; "
        "heavy = [m for m in ('agupshup.emulator.core', 'agupshup.emulator.app', "
        "'agupshup.emulator.server') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
