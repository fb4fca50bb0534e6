"""The process-wide registry: one scheduler per egress.

Rules this module enforces:

* ``shared(key, ...)`` returns the open scheduler of egress ``key``; the first call's options
  create it, and a scheduler closed leaves the registry.
* Every option given must agree with the scheduler it would return: ``windows``, ``ledger``
  (the same object), ``clock`` (``None``: the system clock; always compared),
  ``interactive_reserve``, ``pacing``, ``on_event``. One that differs is refused with
  :class:`~agupshup.errors.ValidationError` naming the option (it is a ``ValueError``), unless
  nobody uses that scheduler (no attached user, waiter or call in flight): then the new
  options replace it, and that is logged. An option left out accepts what the egress has.
* Attached users are counted by the scheduler (``attach``/``detach``); the registry reads only
  whether it is in use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agupshup.clock import Clock
from agupshup.errors import ValidationError

from ._ledger import Ledger
from ._report import logger, show
from ._windows import ThrottleEvent, Window

if TYPE_CHECKING:
    from ._scheduler import Scheduler

__all__ = ["REGISTRY", "Registry", "Wanted"]


@dataclass(frozen=True, slots=True)
class Wanted:
    """The options a caller of ``shared`` gave (``None``: left out, except ``clock``)."""

    clock: Clock
    windows: Sequence[Window] | None = None
    ledger: Ledger | None = None
    interactive_reserve: float | None = None
    pacing: bool | None = None
    on_event: Callable[[ThrottleEvent], None] | None = None


def disagreement(found: Scheduler, wanted: Wanted) -> tuple[str, str] | None:
    """The first option of ``wanted`` that ``found`` does not have: (its name, how)."""
    if wanted.windows is not None and tuple(wanted.windows) != found.windows:
        return "windows", f"windows {show(wanted.windows)} differ from {show(found.windows)}"
    if wanted.ledger is not None and wanted.ledger is not found.ledger:
        return "ledger", f"ledger {wanted.ledger!r} is not {found.ledger!r}"
    if wanted.clock != found.clock:
        return "clock", f"clock {wanted.clock!r} is not {found.clock!r}"
    for option in ("interactive_reserve", "pacing", "on_event"):
        given = getattr(wanted, option)
        if given is not None and given != getattr(found, option):
            return option, f"{option} {given!r} is not {getattr(found, option)!r}"
    return None


class Registry:
    """Egress key → its open scheduler."""

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[str, Scheduler] = {}

    def shared(
        self, key: str, wanted: Wanted, make: Callable[[], Scheduler]
    ) -> Scheduler:
        """The scheduler of ``key`` if it agrees with ``wanted``, else one ``make`` builds."""
        found = self._by_key.get(key)
        if found is not None and not found.closed:
            differs = disagreement(found, wanted)
            if differs is None:
                return found
            option, how = differs
            if found.in_use:
                raise ValidationError(
                    "Scheduler.shared", option,
                    f"egress {key!r}: {how} in use; one IP has one budget: pass the same "
                    "options, or one scheduler= to every client")
            logger.info("egress %r: unused scheduler replaced (%s)", key, how)
        self._by_key[key] = made = make()
        return made

    def forget(self, scheduler: Scheduler) -> None:
        """``scheduler`` closed: the next ``shared`` of its key makes a new one."""
        for key in [k for k, s in self._by_key.items() if s is scheduler]:
            del self._by_key[key]


#: The process's registry (``Scheduler.shared``).
REGISTRY = Registry()
