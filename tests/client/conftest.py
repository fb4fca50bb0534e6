"""Client tests run against the emulator over loopback (fixture ``gupshup_server``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agupshup import Client
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE


@pytest.fixture(params=["json", "xml"])
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(gupshup_server: Any, fmt: str) -> AsyncIterator[Client]:
    async with Client(
        gupshup_server.base_url,
        phone=DEMO_PHONE,
        password=DEMO_PASSWORD,
        wire_format=fmt,  # type: ignore[arg-type]
    ) as c:
        yield c
