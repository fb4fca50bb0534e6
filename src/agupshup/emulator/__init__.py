"""A local emulator of the GupShup Stream and Group API.

A second, independent implementation of ``protocol.md``: it imports nothing from the rest of
agupshup. Start it with ``python -m agupshup.emulator``, ``async with EmulatorServer(config)``,
``with EmulatorThread(config)``, or the pytest fixture ``gupshup_server``.

Names are imported lazily, so ``import agupshup.emulator`` (and the pytest plugin) stays cheap.

Module map (each module states the rules it enforces at its top)::

    config        EmulatorConfig
    timebase      injected clock and time_scale
    seed          default and user seed data; the seeded phones and passwords
    state         users, groups, messages, replies, invites
    sessions      salt, challenges, tokens, rand
    subscriptions two-phase subscription tickets
    outbox        the SMS outbox
    poster        the 5-posts-a-minute poster throttle
    throttle      the per-IP throttle (113, throttle tags)
    faults        which calls fault, deterministically
    codes         error codes and texts per method
    params        parameter lookup and parsing
    envelope      the response tree and its JSON/XML spelling
    context       what handlers see
    methods/      the method table and handlers
    core          Emulator: one call in, one answer out
    sabotage      delivering faults over HTTP
    app           the aiohttp application
    server        EmulatorServer, EmulatorThread
    pytest_plugin the ``gupshup_server`` fixture
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agupshup.emulator.app import API_PATH, make_app
    from agupshup.emulator.config import EmulatorConfig
    from agupshup.emulator.core import Answer, Emulator
    from agupshup.emulator.faults import FaultSpec
    from agupshup.emulator.outbox import SmsRecord
    from agupshup.emulator.server import EmulatorServer, EmulatorThread
    from agupshup.emulator.sessions import login_rand
    from agupshup.emulator.throttle import ThrottleConfig, Window
    from agupshup.emulator.timebase import WallClock

__all__ = [
    "API_PATH",
    "Answer",
    "Emulator",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorThread",
    "FaultSpec",
    "SmsRecord",
    "ThrottleConfig",
    "WallClock",
    "Window",
    "login_rand",
    "make_app",
]

_HOME = {
    "API_PATH": "app",
    "make_app": "app",
    "EmulatorConfig": "config",
    "Answer": "core",
    "Emulator": "core",
    "FaultSpec": "faults",
    "SmsRecord": "outbox",
    "EmulatorServer": "server",
    "EmulatorThread": "server",
    "login_rand": "sessions",
    "ThrottleConfig": "throttle",
    "Window": "throttle",
    "WallClock": "timebase",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
