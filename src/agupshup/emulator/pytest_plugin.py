"""pytest plugin: a running emulator per test.

Fixtures:

* ``gupshup_config`` → :class:`~agupshup.emulator.config.EmulatorConfig` (default settings);
  override it in a ``conftest.py`` or test module to change every server.
* ``gupshup_server`` → a started :class:`~agupshup.emulator.server.EmulatorServer` on a free
  127.0.0.1 port (function scope): ``.base_url``, ``.url``, ``.emulator`` (state, ``outbox``,
  ``calls``, ``faults``, ``throttle``).
* ``gupshup_client`` → an :class:`agupshup.Client` of ``gupshup_server``, logged in as
  ``gupshup_credentials`` (the seeded demo user by default), closed after the test.
* ``gupshup_fast`` → the test-speed switch (see below).

Per test, ``@pytest.mark.gupshup(time_scale=60, ...)`` overrides config fields, and indirect
parametrisation (``parametrize("gupshup_server", [config_or_dict], indirect=True)``) replaces or
overrides the config.

**Test speed, one switch.** ``gupshup_fast = true`` in the ini file (or
``@pytest.mark.gupshup(fast=True)`` on a test, or overriding the ``gupshup_fast`` fixture) turns
off the emulator's throttles (per-IP windows and the poster's 5 a minute) and gives
``gupshup_client`` no throttle and polls every 0.05-0.5 s instead of 5-60 s.

Rules this module enforces: importing it costs almost nothing (the emulator and the client are
imported inside the fixtures) and never fails, so it cannot break collection; the server and
the client always close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from agupshup import Client
    from agupshup.emulator.config import EmulatorConfig
    from agupshup.emulator.server import EmulatorServer, EmulatorThread

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - pytest-asyncio is a test dependency
    pytest_asyncio = None  # type: ignore[assignment]


#: EmulatorConfig fields of the test-speed preset.
FAST_EMULATOR = {"poster_limit": 1_000_000}
#: PollPolicy intervals (fastest, slowest) of the test-speed preset.
FAST_POLLS = (0.05, 0.5)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("gupshup_fast", "test speed for gupshup_server and gupshup_client: no "
                  "throttle, fast polls", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gupshup(fast=bool, **fields): test speed, and EmulatorConfig fields for "
        "gupshup_server",
    )


@pytest.fixture
def gupshup_fast(request: pytest.FixtureRequest) -> bool:
    """The test-speed switch: the nearest ``gupshup(fast=…)`` mark, else the ini setting."""
    for marker in request.node.iter_markers("gupshup"):
        if "fast" in marker.kwargs:
            return bool(marker.kwargs["fast"])
    return bool(request.config.getini("gupshup_fast"))


@pytest.fixture
def gupshup_credentials() -> tuple[str, str]:
    """Phone and password of ``gupshup_client``: the seeded demo user (owns jumpy, demo-bot)."""
    from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE

    return DEMO_PHONE, DEMO_PASSWORD


@pytest.fixture
def gupshup_config() -> EmulatorConfig:
    """The emulator settings of ``gupshup_server``; override this fixture to change them."""
    from agupshup.emulator.config import EmulatorConfig

    return EmulatorConfig()


def _config(request: pytest.FixtureRequest, base: EmulatorConfig, fast: bool) -> EmulatorConfig:
    config = base
    if fast:
        from agupshup.emulator.throttle import ThrottleConfig

        config = config.but(throttle=ThrottleConfig.off(), **FAST_EMULATOR)
    param = getattr(request, "param", None)
    if isinstance(param, Mapping):
        config = config.but(**param)
    elif param is not None:
        config = param
    for marker in reversed(list(request.node.iter_markers("gupshup"))):
        fields = {k: v for k, v in marker.kwargs.items() if k != "fast"}
        config = config.but(**fields)
    return config


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def gupshup_server(
        request: pytest.FixtureRequest, gupshup_config: EmulatorConfig, gupshup_fast: bool
    ) -> AsyncIterator[EmulatorServer]:
        """A running emulator on a free 127.0.0.1 port."""
        from agupshup.emulator.server import EmulatorServer

        async with EmulatorServer(_config(request, gupshup_config, gupshup_fast)) as server:
            yield server

    @pytest_asyncio.fixture
    async def gupshup_client(
        gupshup_server: EmulatorServer, gupshup_credentials: tuple[str, str], gupshup_fast: bool
    ) -> AsyncIterator[Client]:
        """A Client of ``gupshup_server``, logged in, closed (logged out) after the test."""
        # The client is imported here, not above: the emulator and this plugin stay
        # independent of it, and a pytest session that never asks for it never loads it.
        from agupshup import Client, PollPolicy, Throttle
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
    def gupshup_server(
        request: pytest.FixtureRequest, gupshup_config: EmulatorConfig, gupshup_fast: bool
    ) -> Iterator[EmulatorThread]:
        """A running emulator (in a thread: pytest-asyncio is missing)."""
        from agupshup.emulator.server import EmulatorThread

        with EmulatorThread(_config(request, gupshup_config, gupshup_fast)) as server:
            yield server

    @pytest.fixture
    def gupshup_client() -> None:
        """Stands in for the async client fixture, to say what is missing (not "fixture
        'gupshup_client' not found")."""
        pytest.fail("gupshup_client needs pytest-asyncio: `python -m pip install pytest-asyncio`"
                    " and `asyncio_mode = auto` in pytest.ini (see agupshup's docs/testing.md)",
                    pytrace=False)


__all__ = ["gupshup_client", "gupshup_config", "gupshup_credentials", "gupshup_fast",
           "gupshup_server"]
