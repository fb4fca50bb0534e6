"""The emulator's settings, in one frozen dataclass.

Rules this module enforces:

* Every setting has the production value of protocol.md by default; tests shrink windows and
  lifetimes and inject a clock instead of sleeping.
* Durations are in emulator seconds (see :mod:`agupshup.emulator.timebase` for ``time_scale``);
  fault delays are in real seconds.
* This module imports no aiohttp, so the pytest plugin can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from agupshup.emulator.faults import FaultSpec
from agupshup.emulator.seed import SeedSource
from agupshup.emulator.throttle import ThrottleConfig
from agupshup.emulator.timebase import WallClock

__all__ = ["EmulatorConfig"]


@dataclass(frozen=True)
class EmulatorConfig:
    """How an :class:`~agupshup.emulator.core.Emulator` behaves."""

    #: Anything with ``time()`` (epoch seconds); ``None`` is the system clock.
    clock: WallClock | None = None
    #: Emulator seconds per clock second (60: a real second is an emulator minute).
    time_scale: float = 1.0
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)
    #: A seed file path (.json/.toml), a mapping, or ``None`` for the default seed.
    seed: SeedSource = None
    #: Seeds tokens, challenges and confirmation codes (``None``: unpredictable).
    random_seed: int | None = 0
    #: Seeds fault decisions and garbage bodies.
    fault_seed: int = 0
    faults: tuple[FaultSpec, ...] = ()
    token_idle: float = 1800.0
    #: A token dies after this many valid uses (``None``: never), as a hostile server's may.
    token_uses: int | None = None
    challenge_ttl: float = 300.0
    subscription_ttl: float = 86400.0
    #: Poster throttle: ``poster_limit`` stored posts per ``poster_window`` seconds per user.
    poster_limit: int = 5
    poster_window: float = 60.0
    #: Check the poster throttle (127) before the duplicate check (128), so that resending a
    #: stored post at the limit gets 127: protocol.md leaves this order open.
    poster_before_duplicate: bool = False
    max_text: int = 160
    #: Fast arrivals: before every ``groups.getStream`` read of a group, this many new messages
    #: land in it (posted by its owner), so a reader sees the stream move between its reads.
    arrivals_per_read: int = 0
    #: The groups ``arrivals_per_read`` applies to (lower-cased names); empty: every group.
    arrivals_groups: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.arrivals_per_read < 0:
            raise ValueError("arrivals_per_read must be >= 0")
        object.__setattr__(
            self, "arrivals_groups", frozenset(g.strip().lower() for g in self.arrivals_groups)
        )

    def arrivals(self, group: str) -> int:
        """Messages that land in ``group`` before each read of it."""
        if self.arrivals_groups and group.lower() not in self.arrivals_groups:
            return 0
        return self.arrivals_per_read

    def but(self, **changes: Any) -> EmulatorConfig:
        """A copy with ``changes``."""
        return replace(self, **changes)
