"""The admission policy: which limits a caller of each lane may fill now, and when to look again.

Rules this module enforces:

* The ledger counts the entries; this policy only says up to which count each window admits a
  caller, given the lanes' calls in flight and ``now``. A ledger that refuses says how long to
  wait; the policy turns that into the earliest moment admission may become possible.
* The interactive reserve costs nothing unused: ``bulk`` may fill window ``w`` only up to
  ``limit - floor(limit * interactive_reserve)`` while an interactive call is in flight or
  completed less than ``length_w`` ago; otherwise up to the limit.
* The answer gate: while any call is in flight, a window admits only up to ``limit -
  burst_margin`` (default ``2 * (limit - warn)``); the places above go one at a time, each once
  every earlier answer has been read.
* Pure: counts, limits and ``now`` in, limits and times out. No clock, no I/O, no tasks, no
  asyncio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from ._windows import Lane, Window

__all__ = ["LANES", "AdmissionPolicy", "Refusal", "burst_margin_of"]

#: The lanes in the order they are served.
LANES: tuple[Lane, ...] = ("interactive", "bulk")
_NEVER = -math.inf


class Refusal(NamedTuple):
    """What a refused admission means for the caller."""

    #: The earliest moment admission may become possible (a lower bound: look again then).
    earliest: float
    #: A window is full even without the answer gate: callers are held (a ``hold`` event).
    window_full: bool


def burst_margin_of(window: Window, burst_margin: int | None) -> int:
    """Places of ``window`` spent one answer at a time (``None``: ``2 * (limit - warn)``)."""
    margin = 2 * (window.limit - window.warn) if burst_margin is None else burst_margin
    return max(0, min(window.limit, margin))


class AdmissionPolicy:
    """Limits per lane from the calls in flight: the interactive reserve and the answer gate.

    Counts the calls it is told of (:meth:`took`, :meth:`landed`); every time is given.
    """

    __slots__ = ("answer_gate_limits", "bulk_limits_while_interactive", "burst_margin",
                 "full_limits", "has_answer_gate", "in_flight", "interactive_in_flight",
                 "interactive_reserve", "last_interactive_end", "lengths", "longest")

    def __init__(
        self,
        windows: Sequence[Window],
        interactive_reserve: float = 0.1,
        burst_margin: int | None = None,
    ) -> None:
        if not 0.0 <= interactive_reserve < 1.0:
            raise ValueError("interactive_reserve must be in [0, 1)")
        if burst_margin is not None and burst_margin < 0:
            raise ValueError("burst_margin must be >= 0 (0: no gate)")
        self.interactive_reserve = interactive_reserve
        self.burst_margin = burst_margin
        self.lengths = tuple(w.length for w in windows)
        self.longest = max(self.lengths)
        self.full_limits = tuple(w.limit for w in windows)
        # The 1e-9: a reserve of 0.1 of 30 is 3 places, not 2.9999.
        self.bulk_limits_while_interactive = tuple(
            w.limit - math.floor(w.limit * interactive_reserve + 1e-9) for w in windows)
        self.answer_gate_limits = tuple(w.limit - burst_margin_of(w, burst_margin)
                                        for w in windows)
        self.has_answer_gate = self.answer_gate_limits != self.full_limits
        #: Calls admitted and not yet completed (all lanes; interactive ones).
        self.in_flight = 0
        self.interactive_in_flight = 0
        #: When the last interactive call completed (its reserve lapses a length later).
        self.last_interactive_end = _NEVER

    # -- the lanes' calls -------------------------------------------------------------------

    def took(self, lane: Lane) -> None:
        """A call of ``lane`` was admitted."""
        self.in_flight += 1
        if lane == "interactive":
            self.interactive_in_flight += 1

    def landed(self, lane: Lane, sent: bool, now: float) -> bool:
        """A call of ``lane`` completed at ``now`` (``sent``: else it was never sent).

        True when waiting callers must look again: every answer is in (the gate opens), or an
        interactive call ended (its reserve's lapse is known only now).
        """
        self.in_flight -= 1
        if lane == "interactive":
            self.interactive_in_flight -= 1
            if sent:
                self.last_interactive_end = now
        return (self.has_answer_gate and not self.in_flight) or lane == "interactive"

    def forget_flights(self, lanes: Sequence[Lane]) -> None:
        """Count exactly the calls of ``lanes`` as in flight (a new event loop took over)."""
        self.in_flight = len(lanes)
        self.interactive_in_flight = sum(lane == "interactive" for lane in lanes)

    # -- limits -----------------------------------------------------------------------------

    def limits(self, lane: Lane, now: float) -> tuple[tuple[int, ...], bool]:
        """The counts ``lane`` may fill now in each window, and whether the answer gate
        lowered them."""
        reserving = lane == "bulk" and (self.interactive_in_flight
                                        or now < self.last_interactive_end + self.longest)
        if not (self.in_flight and self.has_answer_gate):
            return (self._bulk_limits(now) if reserving else self.full_limits), False
        if not reserving:
            return self.answer_gate_limits, True
        limits = self._bulk_limits(now)
        gated = tuple(min(a, b) for a, b in zip(limits, self.answer_gate_limits, strict=True))
        return gated, gated != limits

    def _bulk_limits(self, now: float) -> tuple[int, ...]:
        if self.interactive_in_flight:
            return self.bulk_limits_while_interactive
        ended = self.last_interactive_end
        return tuple(
            kept if now < ended + length else full
            for kept, full, length in zip(self.bulk_limits_while_interactive, self.full_limits,
                                          self.lengths, strict=True))

    def refused(
        self, lane: Lane, wait: float, counts: Sequence[int], gated: bool, now: float
    ) -> Refusal:
        """The ledger refused ``lane`` under :meth:`limits` (``gated``), saying ``wait`` and
        ``counts``: when to look again, and whether a window is full.

        A lower bound: the reserve lapses when interactive calls age out; the gate lifts when
        our answers are in, which may be at any moment, so a gated refusal says ``now``.
        """
        if gated:
            full = any(c >= f for c, f in zip(counts, self.full_limits, strict=True))
            return Refusal(now, full)
        earliest = now + wait
        if lane == "bulk" and not self.interactive_in_flight:
            ended = self.last_interactive_end
            lapses = [ended + length for length in self.lengths if ended + length > now]
            earliest = min([earliest, *lapses])
        return Refusal(earliest, True)

    def pacing_interval(self) -> float:
        """Seconds between paced bulk calls: the longest window's bulk budget spread evenly."""
        longest = max(range(len(self.lengths)), key=lambda i: self.lengths[i])
        return self.lengths[longest] / self.bulk_limits_while_interactive[longest]
