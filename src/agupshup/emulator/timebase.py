"""Emulator time: an injected clock, optionally sped up.

Rules this module enforces:

* The emulator never calls :func:`time.time` directly; it asks a :class:`Timebase`, which reads an
  injected clock (anything with a ``time()`` method returning epoch seconds).
* ``time_scale`` speeds emulator time up: with 60, one second of the clock is one emulator minute.
  Emulator time equals the clock at the moment the :class:`Timebase` is made and then runs
  ``time_scale`` times as fast, so throttle windows, token idle time and challenge lifetime all
  shrink together.
* Emulator time never goes backwards, even if the injected clock does.
"""

from __future__ import annotations

import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["RealClock", "Timebase", "WallClock"]


@runtime_checkable
class WallClock(Protocol):
    """The only thing the emulator needs from a clock."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...


class RealClock:
    """The real wall clock."""

    __slots__ = ()

    def time(self) -> float:
        return _time.time()


class Timebase:
    """Emulator seconds and milliseconds, derived from a clock and a speed-up factor."""

    __slots__ = ("_clock", "_last", "_origin", "_scale")

    def __init__(self, clock: WallClock | None = None, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time_scale must be positive")
        self._clock: WallClock = clock if clock is not None else RealClock()
        self._scale = float(scale)
        self._origin = self._clock.time()
        self._last = self._origin

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> float:
        """Emulator time in epoch seconds."""
        t = self._clock.time()
        now = t if self._scale == 1.0 else self._origin + (t - self._origin) * self._scale
        self._last = max(self._last, now)
        return self._last

    def now_ms(self) -> int:
        """Emulator time in epoch milliseconds."""
        return int(self.now() * 1000)

    def real_seconds(self, emulator_seconds: float) -> float:
        """How long ``emulator_seconds`` last on the clock."""
        return emulator_seconds / self._scale
