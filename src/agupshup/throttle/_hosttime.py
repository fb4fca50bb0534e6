"""Host time: the SQLite ledger's clock, shared by the processes of one host and never stepped.

Rules this module enforces:

* A reading is ``(era, seconds)``: seconds only compare within one era. On Linux the era is the
  boot id and the seconds are ``CLOCK_BOOTTIME`` (monotonic, counts suspend, starts near 0 at
  boot), so a step of the wall clock (NTP, a user, a VM resume) moves nothing.
* An entry written in another era is re-dated, never trusted: to the start of this boot when
  both eras are boots (every call of an earlier boot ended before this boot began, so this is
  exact at worst), else to now (the entry is then held a full window: conservative).
* An injected clock (tests, simulations) is its own time base: its ``time()``, in era ``wall``.
  Elsewhere than Linux the real clock falls back to the same: there the wall clock still rules.
* One ledger file (per egress) is timed by one kind of era, ``boot`` or ``wall``: entries of
  the other kind would be re-dated to ``now`` at every reading, so neither kind ever sees its
  window empty (see ``era_kind``; the SQLite ledger refuses a second kind).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from agupshup.clock import Clock, SystemClock

__all__ = ["BootTime", "HostTime", "WallTime", "default_host_time", "era_kind", "redate"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
BOOT_PREFIX = "boot:"


class HostTime(Protocol):
    """A clock every process of one host reads alike."""

    def read(self) -> tuple[str, float]:
        """The current era and seconds within it."""
        ...


class BootTime:
    """Linux: the boot id and ``CLOCK_BOOTTIME``."""

    __slots__ = ("_era",)

    def __init__(self) -> None:
        self._era = BOOT_PREFIX + _BOOT_ID.read_text().strip()

    @staticmethod
    def available() -> bool:
        return hasattr(time, "CLOCK_BOOTTIME") and _BOOT_ID.is_file()

    def read(self) -> tuple[str, float]:
        return self._era, time.clock_gettime(time.CLOCK_BOOTTIME)

    def __repr__(self) -> str:
        return "BootTime()"


class WallTime:
    """An injected clock's ``time()``: the only shared time it has."""

    __slots__ = ("_clock",)

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def read(self) -> tuple[str, float]:
        return "wall", self._clock.time()

    def __repr__(self) -> str:
        return f"WallTime({self._clock!r})"


def default_host_time(clock: Clock) -> HostTime:
    """Boot time for the real clock on Linux; an injected clock's own time otherwise."""
    if type(clock) is SystemClock and BootTime.available():
        return BootTime()
    return WallTime(clock)


def era_kind(era: str) -> str:
    """``boot`` for boot time, ``wall`` for a clock's ``time()``: times of one kind compare
    (after re-dating across boots), times of two kinds never do."""
    return "boot" if era.startswith(BOOT_PREFIX) else era


def redate(era: str, foreign: str, now: float) -> float:
    """When an entry of era ``foreign`` is taken to have ended, seen from ``era`` at ``now``."""
    if era.startswith(BOOT_PREFIX) and foreign.startswith(BOOT_PREFIX):
        return 0.0
    return now
