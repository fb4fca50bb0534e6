"""pytest plugin: a running emulator per test.

Fixtures:

* ``gupshup_config`` → :class:`~agupshup.emulator.config.EmulatorConfig` (default settings);
  override it in a ``conftest.py`` or test module to change every server.
* ``gupshup_server`` → a started :class:`~agupshup.emulator.server.EmulatorServer` on a free
  127.0.0.1 port (function scope): ``.base_url``, ``.url``, ``.emulator`` (state, ``outbox``,
  ``calls``, ``faults``, ``throttle``).

Per test, ``@pytest.mark.gupshup(time_scale=60, ...)`` overrides config fields, and indirect
parametrisation (``parametrize("gupshup_server", [config_or_dict], indirect=True)``) replaces or
overrides the config.

Rules this module enforces: importing it costs almost nothing (the emulator is imported inside
the fixtures) and never fails, so it cannot break collection; the server always closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from agupshup.emulator.config import EmulatorConfig
    from agupshup.emulator.server import EmulatorServer, EmulatorThread

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - pytest-asyncio is a test dependency
    pytest_asyncio = None  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gupshup(**fields): override EmulatorConfig fields for gupshup_server"
    )


@pytest.fixture
def gupshup_config() -> EmulatorConfig:
    """The emulator settings of ``gupshup_server``; override this fixture to change them."""
    from agupshup.emulator.config import EmulatorConfig

    return EmulatorConfig()


def _config(request: pytest.FixtureRequest, base: EmulatorConfig) -> EmulatorConfig:
    config = base
    param = getattr(request, "param", None)
    if isinstance(param, Mapping):
        config = config.but(**param)
    elif param is not None:
        config = param
    for marker in reversed(list(request.node.iter_markers("gupshup"))):
        config = config.but(**marker.kwargs)
    return config


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def gupshup_server(
        request: pytest.FixtureRequest, gupshup_config: EmulatorConfig
    ) -> AsyncIterator[EmulatorServer]:
        """A running emulator on a free 127.0.0.1 port."""
        from agupshup.emulator.server import EmulatorServer

        async with EmulatorServer(_config(request, gupshup_config)) as server:
            yield server

else:  # pragma: no cover

    @pytest.fixture
    def gupshup_server(
        request: pytest.FixtureRequest, gupshup_config: EmulatorConfig
    ) -> Iterator[EmulatorThread]:
        """A running emulator (in a thread: pytest-asyncio is missing)."""
        from agupshup.emulator.server import EmulatorThread

        with EmulatorThread(_config(request, gupshup_config)) as server:
            yield server


__all__ = ["gupshup_config", "gupshup_server"]
