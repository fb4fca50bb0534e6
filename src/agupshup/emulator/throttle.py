"""The per-IP throttle (protocol.md §3).

Rules this module enforces:

* Calls are counted per client IP, in every window at once (minute, hour, day by default).
* A call that would take any window past its limit is refused (113) and not counted; the refusal
  lists every window it would have exceeded, with the count already held (the limit).
* An admitted call is counted; from a window's warn value on, the answer carries a tag for that
  window whose ``count`` includes this call.
* ``sliding`` windows hold the calls of the last ``length`` seconds (any interval of that length);
  ``fixed`` windows are aligned to multiples of ``length`` on the emulator clock's epoch; ``off``
  admits everything and tags nothing.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DEFAULT_WINDOWS", "Decision", "Tag", "Throttle", "ThrottleConfig", "Window"]

Mode = Literal["sliding", "fixed", "off"]


@dataclass(frozen=True, slots=True)
class Window:
    """One throttle window, ``name``d as the tags name it: ``warn`` and ``limit`` calls per
    ``length`` seconds.

    The fields run in the client's order and have its names (``agupshup.throttle.Window``),
    mirrored, not imported.
    """

    name: str
    limit: int
    length: float
    warn: int

    def __post_init__(self) -> None:
        # ``0 < length < inf`` is False for NaN too.
        if not 0 < self.length < math.inf or self.limit < 1 or self.warn < 1:
            raise ValueError(f"bad throttle window {self!r}")

    @property
    def period(self) -> str:
        """Deprecated: :attr:`name`, as in the client."""
        warnings.warn("Window.period is deprecated; use Window.name", DeprecationWarning,
                      stacklevel=2)
        return self.name


DEFAULT_WINDOWS: tuple[Window, ...] = (
    Window("minute", 30, 60.0, 25),
    Window("hour", 1000, 3600.0, 990),
    Window("day", 10000, 86400.0, 9990),
)


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    """Which windows to count, and how."""

    mode: Mode = "sliding"
    windows: tuple[Window, ...] = DEFAULT_WINDOWS

    def __post_init__(self) -> None:
        if self.mode not in ("sliding", "fixed", "off"):
            raise ValueError(f"throttle mode is sliding, fixed or off, not {self.mode!r}")

    @classmethod
    def off(cls) -> ThrottleConfig:
        return cls(mode="off")

    @classmethod
    def single(
        cls, limit: int, length: float, warn: int | None = None, mode: Mode = "sliding"
    ) -> ThrottleConfig:
        """One ``minute`` window with a small limit: handy in tests."""
        warn = limit if warn is None else warn
        return cls(mode=mode, windows=(Window("minute", limit, length, warn),))


@dataclass(frozen=True, slots=True)
class Tag:
    """A ``throttle`` tag of an answer."""

    period: str
    count: int
    warn: int
    limit: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The throttle's verdict on one call."""

    admitted: bool
    tags: tuple[Tag, ...] = ()


@dataclass(slots=True)
class _Counter:
    """The calls one IP made in one window."""

    window: Window
    times: deque[float] = field(default_factory=deque)
    bucket: int = -1
    fixed_count: int = 0

    def count(self, now: float, mode: Mode) -> int:
        if mode == "fixed":
            bucket = math.floor(now / self.window.length)
            if bucket != self.bucket:
                self.bucket, self.fixed_count = bucket, 0
            return self.fixed_count
        horizon = now - self.window.length
        while self.times and self.times[0] <= horizon:
            self.times.popleft()
        return len(self.times)

    def add(self, now: float, mode: Mode) -> None:
        if mode == "fixed":
            self.fixed_count += 1
        else:
            self.times.append(now)


class Throttle:
    """Admits or refuses calls per client IP."""

    __slots__ = ("_config", "_ledgers", "refusals")

    def __init__(self, config: ThrottleConfig | None = None) -> None:
        self._config = config or ThrottleConfig()
        self._ledgers: dict[str, list[_Counter]] = {}
        #: How many calls each IP had refused with 113.
        self.refusals: Counter[str] = Counter()

    @property
    def config(self) -> ThrottleConfig:
        return self._config

    def configure(self, config: ThrottleConfig) -> None:
        """Use new windows from now on; every count starts again from zero."""
        self._config = config
        self._ledgers.clear()

    def reset(self) -> None:
        """Forget every count and refusal."""
        self._ledgers.clear()
        self.refusals.clear()

    def admit(self, ip: str, now: float) -> Decision:
        """Count this call of ``ip`` at emulator time ``now``, or refuse it."""
        mode = self._config.mode
        if mode == "off":
            return Decision(True)
        ledger = self._ledger(ip)
        counts = [c.count(now, mode) for c in ledger]
        over = tuple(
            Tag(c.window.name, n, c.window.warn, c.window.limit)
            for c, n in zip(ledger, counts, strict=True)
            if n + 1 > c.window.limit
        )
        if over:
            self.refusals[ip] += 1
            return Decision(False, over)
        for c in ledger:
            c.add(now, mode)
        return Decision(
            True,
            tuple(
                Tag(c.window.name, n + 1, c.window.warn, c.window.limit)
                for c, n in zip(ledger, counts, strict=True)
                if n + 1 >= c.window.warn
            ),
        )

    def usage(self, ip: str, now: float) -> dict[str, int]:
        """How many calls ``ip`` has in each window now."""
        mode = self._config.mode
        if mode == "off":
            return {}
        return {c.window.name: c.count(now, mode) for c in self._ledger(ip)}

    def _ledger(self, ip: str) -> list[_Counter]:
        ledger = self._ledgers.get(ip)
        if ledger is None:
            ledger = [_Counter(w) for w in self._config.windows]
            self._ledgers[ip] = ledger
        return ledger
