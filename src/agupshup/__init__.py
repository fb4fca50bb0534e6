"""agupshup: an asyncio client for the GupShup Stream and Group API.

Names are imported lazily (PEP 562): ``import agupshup.emulator`` — and so the pytest plugin,
loaded in every pytest session of an environment that has agupshup — executes this file, and
must not pull in the client, aiohttp, anyio or aiolimiter. ``tests/test_imports.py`` checks
that the lazy table, the ``TYPE_CHECKING`` imports and ``__all__`` agree.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agupshup import errors, models
    from agupshup.aggregate import Follower, MergedStream
    from agupshup.checkpoint import Checkpoint, Cursor, FollowCursor, MergedCursor
    from agupshup.checkpoint_stores import (
        MemoryCheckpointStore,
        RedisCheckpointStore,
        SqliteCheckpointStore,
    )
    from agupshup.client import Client
    from agupshup.client_throttle import Throttle
    from agupshup.clock import Clock, FakeClock, ScaledClock, SystemClock
    from agupshup.errors import *  # noqa: F403
    from agupshup.models import *  # noqa: F403
    from agupshup.planner import Budget
    from agupshup.polling import PollPolicy
    from agupshup.retry import RetryPolicy
    from agupshup.session import Credentials
    from agupshup.streams import Stream

    # For type checkers only: at run time ``__all__`` is computed by ``__getattr__`` from
    # ``_HOME`` and the ``__all__`` of errors and models, so that it costs no import.
    __all__ = [
        "Budget",
        "Checkpoint",
        "Client",
        "Clock",
        "Credentials",
        "Cursor",
        "FakeClock",
        "FollowCursor",
        "Follower",
        "MemoryCheckpointStore",
        "MergedCursor",
        "MergedStream",
        "PollPolicy",
        "RedisCheckpointStore",
        "RetryPolicy",
        "ScaledClock",
        "SqliteCheckpointStore",
        "Stream",
        "SystemClock",
        "Throttle",
        "errors",
        "models",
    ]
    __all__ += errors.__all__ + models.__all__

__version__ = "0.1.0"

#: name → the module that defines it. ``errors`` and ``models`` export everything in their
#: own ``__all__``, looked up on first use.
_HOME = {
    "Checkpoint": "checkpoint",
    "Cursor": "checkpoint",
    "MemoryCheckpointStore": "checkpoint_stores",
    "MergedCursor": "checkpoint",
    "RedisCheckpointStore": "checkpoint_stores",
    "SqliteCheckpointStore": "checkpoint_stores",
    "Client": "client",
    "Throttle": "client_throttle",
    "Clock": "clock",
    "FakeClock": "clock",
    "ScaledClock": "clock",
    "SystemClock": "clock",
    "PollPolicy": "polling",
    "RetryPolicy": "retry",
    "Credentials": "session",
    "MergedStream": "aggregate",
    "Follower": "aggregate",
    "Budget": "planner",
    "FollowCursor": "checkpoint",
    "Stream": "streams",
}
_STAR = ("errors", "models")
#: Old spellings kept one release: their module warns on each use, so they are not cached.
_DEPRECATED = {"SQLiteCheckpointStore": "checkpoint"}


def _module(name: str) -> Any:
    return importlib.import_module(f"{__name__}.{name}")


def _all() -> list[str]:
    names = [*_HOME, *_STAR]
    for star in _STAR:
        names += _module(star).__all__
    return names


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        return getattr(_module(_DEPRECATED[name]), name)
    if name == "__all__":
        value: Any = _all()
    elif name in _STAR:
        value = _module(name)
    elif name in _HOME:
        value = getattr(_module(_HOME[name]), name)
    else:
        value = next(
            (getattr(m, name) for m in map(_module, _STAR) if name in m.__all__), None
        )
        if value is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_all()))
