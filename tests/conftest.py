"""Shared fixtures. The emulator fixture ``gupshup_server`` comes from agupshup's pytest plugin.

Every async test ends with a leak check: no task of the test may outlive it. (Unclosed aiohttp
sessions and connectors are caught too: pytest turns their ResourceWarnings into errors.)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio


@pytest_asyncio.fixture(autouse=True)
async def _no_leaked_tasks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if not inspect.iscoroutinefunction(getattr(request.node, "function", None)):
        return
    current = asyncio.current_task()
    for _ in range(5):  # let tasks that are finishing finish
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leaked, f"tasks outlived the test: {leaked}"
