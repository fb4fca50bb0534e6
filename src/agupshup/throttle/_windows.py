"""The vocabulary of throttling: windows, lanes and events.

Rules this module enforces:

* A :class:`Window` is a server limit: at most ``limit`` calls in any interval of ``length``
  seconds. ``warn`` is the count at which the server starts appending ``throttle`` tags.
* Window names are unique within a scheduler, and every window admits at least one call.
* Everything here is plain data: no clock, no I/O.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agupshup.models import Lane

__all__ = [
    "DEFAULT_WINDOWS",
    "EventKind",
    "Lane",
    "ThrottleEvent",
    "Window",
    "check_windows",
    "scaled_windows",
]


#: ``warn``: a window reached its warn count; ``hold``: callers are being held because a window
#: is full (or held after a 113); ``limited``: the server answered 113.
EventKind = Literal["warn", "hold", "limited"]


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` calls in any ``length`` seconds; the server warns from ``warn`` on.
    ``name`` is the label the server's ``throttle`` tags give it (``minute``, ``hour``, ``day``)."""

    name: str
    limit: int
    length: float
    warn: int

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.length > 0 or not math.isfinite(self.length):
            raise ValueError(f"window {self.name!r}: need limit >= 1 and a finite length > 0")

    @property
    def period(self) -> str:
        """Deprecated: :attr:`name` (``period`` read like a duration, beside ``length``)."""
        warnings.warn("Window.period is deprecated; use Window.name", DeprecationWarning,
                      stacklevel=2)
        return self.name


@dataclass(frozen=True, slots=True)
class ThrottleEvent:
    """Something the scheduler wants an operator to know (see :data:`EventKind`)."""

    kind: EventKind
    period: str
    detail: str
    #: ``hold`` and ``limited``: seconds callers are held from now (``None`` for ``warn``).
    wait: float | None = None


#: The GupShup limits (protocol.md §3).
DEFAULT_WINDOWS: tuple[Window, ...] = (
    Window("minute", 30, 60.0, 25),
    Window("hour", 1000, 3600.0, 990),
    Window("day", 10000, 86400.0, 9990),
)


def scaled_windows(
    time_scale: float = 1.0, windows: Sequence[Window] = DEFAULT_WINDOWS
) -> list[Window]:
    """``windows`` ``time_scale`` times shorter, in real seconds (to match a sped-up server).

    The same as scheduling ``windows`` on ``ScaledClock(scale=time_scale)``; for code that
    keeps the real clock, e.g. several processes sharing one wall-clock ledger.
    """
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise ValueError(f"time_scale must be a finite number > 0, not {time_scale!r}")
    return [Window(w.name, w.limit, w.length / time_scale, w.warn) for w in windows]


def check_windows(windows: Sequence[Window]) -> tuple[Window, ...]:
    """Return ``windows`` as a tuple, refusing an empty set or a repeated name."""
    found = tuple(windows)
    if not found:
        raise ValueError("a scheduler needs at least one window")
    names = [w.name for w in found]
    if len(set(names)) != len(names):
        raise ValueError(f"repeated window name in {names}")
    return found
