"""pytest plugin: ``gupshup_client``, an :class:`agupshup.Client` of the emulator's server.

The emulator's own plugin (:mod:`agupshup.emulator.pytest_plugin`) runs the server
(``gupshup_server``, ``gupshup_config``, ``gupshup_credentials``, ``gupshup_fast``) and imports
nothing of the client; this one sits above the client and builds one for each test. Both are
``pytest11`` entry points, so an installed agupshup gives every fixture with nothing to enable;
with plugin autoloading off, ``-p agupshup.testing`` loads both (it registers the emulator's
plugin when that is not loaded yet).

* ``gupshup_client`` → a :class:`~agupshup.Client` of ``gupshup_server``, logged in as
  ``gupshup_credentials``, logged out and closed after the test. With ``gupshup_fast`` it has
  no throttle and polls every :data:`FAST_POLLS` seconds instead of 5-60 s.

Rules this module enforces: importing it costs almost nothing (the client is imported inside
the fixture) and never fails, so it cannot break collection; the client always closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from agupshup.emulator import pytest_plugin as server_plugin

if TYPE_CHECKING:
    from agupshup.client import Client
    from agupshup.emulator.server import EmulatorServer

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - pytest-asyncio is a test dependency
    pytest_asyncio = None  # type: ignore[assignment]

#: PollPolicy intervals (fastest, slowest) of the test-speed preset.
FAST_POLLS = (0.05, 0.5)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Bring the server's fixtures (plugin autoloading off, ``-p agupshup.testing`` alone).
    Under the emulator plugin's entry-point name: autoloading then finds it loaded (not
    ``pytest_plugins``, which would register it twice under two names)."""
    if not pluginmanager.is_registered(server_plugin):
        pluginmanager.register(server_plugin, "agupshup")


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def gupshup_client(
        gupshup_server: EmulatorServer, gupshup_credentials: tuple[str, str], gupshup_fast: bool
    ) -> AsyncIterator[Client]:
        """A Client of ``gupshup_server``, logged in, closed (logged out) after the test."""
        # Imported here, not above: a pytest session that never asks for a client (every
        # session of an environment that has agupshup loads this plugin) never loads it.
        from agupshup.client import Client, Throttle
        from agupshup.polling import PollPolicy
        from agupshup.throttle import MemoryLedger

        phone, password = gupshup_credentials
        # Each test has a fresh server: its counts start at zero, so they live in memory,
        # not in the per-host ledger file a later run on the same port would find.
        throttle = None if gupshup_fast else Throttle(ledger=MemoryLedger())
        async with Client(gupshup_server.base_url, phone=phone, password=password,
                          throttle=throttle) as client:
            if gupshup_fast:
                client.poll_policy = PollPolicy(*FAST_POLLS)
            await client.login()
            yield client

else:  # pragma: no cover

    @pytest.fixture
    def gupshup_client() -> None:
        """Stands in for the async client fixture, to say what is missing (not "fixture
        'gupshup_client' not found")."""
        pytest.fail("gupshup_client needs pytest-asyncio: `python -m pip install pytest-asyncio`"
                    " and `asyncio_mode = auto` in pytest.ini (see agupshup's docs/testing.md)",
                    pytrace=False)


__all__ = ["FAST_POLLS", "gupshup_client"]
