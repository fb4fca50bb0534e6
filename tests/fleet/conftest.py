"""Fixtures of the fleet tests: an emulator with many small groups, on sped-up time.

Workers leave from 127.0.0.2, 127.0.0.3 and 127.0.0.4 (all loopback on Linux) to one emulator
on 127.0.0.1, which throttles each address on its own; ``redis_url`` is in tests/conftest.
"""

from __future__ import annotations

import pytest

from agupshup.emulator.config import EmulatorConfig
from streams.helpers import stream_seed

ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
#: Emulator seconds per real second; the clients' windows are shrunk to match.
SCALE = 10.0
GROUPS = [f"g{i:04d}" for i in range(12)]


@pytest.fixture
def gupshup_config() -> EmulatorConfig:
    return EmulatorConfig(seed=stream_seed({}, many=len(GROUPS), each=4), time_scale=SCALE)
