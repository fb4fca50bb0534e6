"""What the scheduler tells people: events, log lines and the quota.

Rules this module enforces:

* ``warn`` fires once when a window reaches its warn count (counted here or in a server tag),
  ``hold`` once when callers are held by a full window; both re-arm when the window's count
  drops below warn. ``limited`` (a 113) fires every time.
* Every event is logged on ``agupshup.throttle`` (113 as WARNING) and handed to ``on_event``;
  a hook that raises is logged and never raised into the scheduler.
* A window is named for people in one place, :func:`label`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from agupshup.clock import Clock, readable
from agupshup.models import QuotaWindow

from ._ledger import View
from ._windows import EventKind, ThrottleEvent, Window

__all__ = ["Alerts", "label", "logger", "quota_of", "show"]

logger = logging.getLogger("agupshup.throttle")

_LOG_LEVELS = {"warn": logging.INFO, "hold": logging.INFO, "limited": logging.WARNING}


def label(window: Window) -> str:
    """The window's name, as the server's tags, events and quotas spell it."""
    return window.name


def show(windows: Sequence[Window]) -> str:
    """``[minute 30/60s, ...]``: windows for a message."""
    return "[" + ", ".join(f"{label(w)} {w.limit}/{w.length:g}s" for w in windows) + "]"


class Alerts:
    """The scheduler's events: armed per window, logged, and handed to ``on_event``."""

    __slots__ = ("_hold_armed", "_warn_armed", "_windows", "on_event")

    def __init__(
        self, windows: Sequence[Window], on_event: Callable[[ThrottleEvent], None] | None
    ) -> None:
        self._windows = tuple(windows)
        self.on_event = on_event
        self._warn_armed = [True] * len(self._windows)
        self._hold_armed = [True] * len(self._windows)

    def counted(self, counts: Sequence[int]) -> None:
        """Each window's count after an admission: warn at the warn count, or re-arm below."""
        for i, count in enumerate(counts):
            if count < self._windows[i].warn:
                self._warn_armed[i] = self._hold_armed[i] = True
            else:
                self.warn(i, count)

    def warn(self, i: int, count: int) -> None:
        if self._warn_armed[i]:
            self._warn_armed[i] = False
            w = self._windows[i]
            self._emit("warn", label(w), f"{count} of {w.limit} calls (warn at {w.warn})")

    def held(self, i: int, wait: float) -> None:
        """Callers are held ``wait`` seconds by full window ``i``."""
        if self._hold_armed[i]:
            self._hold_armed[i] = False
            self._emit("hold", label(self._windows[i]),
                       f"window full; callers held {wait:.3f}s", wait)

    def limited(self, i: int) -> None:
        """The server refused a call (113) and window ``i`` holds every caller."""
        w = self._windows[i]
        self._emit("limited", label(w), f"the server refused a call (113); "
                                        f"holding every caller for {w.length:g}s", w.length)

    def _emit(self, kind: EventKind, period: str, detail: str, wait: float | None = None) -> None:
        logger.log(_LOG_LEVELS[kind], "throttle %s: %s: %s", kind, period, detail)
        if self.on_event is None:
            return
        try:
            self.on_event(ThrottleEvent(kind, period, detail, wait))
        except Exception:
            logger.exception("throttle on_event hook failed")


def quota_of(windows: Sequence[Window], clock: Clock, view: View) -> list[QuotaWindow]:
    """Each window's use as a ledger's ``view`` shows it, for people."""
    held_until = view.at + view.held if view.held > 0 else None
    quota = []
    for i, w in enumerate(windows):
        free_at = view.at + max(view.frees[i], view.held)
        free_in, free_wall = readable(clock, max(free_at, clock.monotonic()))
        quota.append(QuotaWindow(
            period=label(w), length=w.length, limit=w.limit, used=view.counts[i],
            free_at=free_at, held_until=held_until if i == view.held_window else None,
            free_in=free_in, free_wall=free_wall,
        ))
    return quota
