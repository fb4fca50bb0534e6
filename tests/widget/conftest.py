"""Widget fixtures: an emulator, the owner's client and the widget served on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from agupshup import Client
from agupshup.emulator import EmulatorServer
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.widget import Widget, serving


@pytest_asyncio.fixture
async def owner(gupshup_server: EmulatorServer) -> AsyncIterator[Client]:
    """The demo user's client: owns ``jumpy`` and ``demo-bot``."""
    async with Client(gupshup_server.base_url, phone=DEMO_PHONE, password=DEMO_PASSWORD,
                      throttle=None) as client:
        yield client


@pytest_asyncio.fixture
async def widget(owner: Client) -> Widget:
    return Widget(owner, ttl=10.0)


@pytest_asyncio.fixture
async def widget_url(widget: Widget) -> AsyncIterator[str]:
    async with serving(widget, "127.0.0.1", 0) as url:
        yield url
