"""The ledger: who occupies which window, and the in-memory backend.

Rules every ledger enforces (the SQLite and Redis backends obey the same ones):

* A call occupies every window from its admission until it completes, and window ``w`` for
  ``length_w`` more seconds after that: its *release* in ``w`` is ``completion + length_w``.
  A call still in flight has no release yet. The scheduler binds its ledger with each length
  padded by :func:`release_margin` (see there why), so ``length_w`` here includes it.
* ``admit`` is atomic and all-or-nothing: it admits at ``now`` only when, for every window,
  ``#(entries whose release is after now) < limit`` for the caller's lane, and no hold is set.
* A refused ``admit`` says how long to wait: the earliest moment the count can drop below the
  limit (the k-th release), or, when in-flight calls are in the way, ``now + length`` (they
  cannot release earlier), after which the caller asks again. Nothing is ever polled faster.
* Learning: the server counted ``C`` calls in a window at some moment of the call's flight
  ``[dispatch, completion]``. Every call of ours it could have counted then was in the ledger
  at dispatch or entered it since, so ``release`` adds ``C - that number`` phantom entries
  (other programs' calls), released at ``now + length``, and never removes any. Our own calls
  that left the ledger during the flight have provably left the server's window too. A count
  also bounds every longer window, since the server's window of a longer period contains the
  shorter one.
* A 113 holds every caller until ``now + length`` of the window the server refused; the latest
  hold wins.
* ``cancel`` removes an entry whose call was never sent.
* Times are the ledger's own (the memory ledger uses ``clock.monotonic()``); the scheduler only
  ever sees durations, so ledgers with another time base (wall clock, Redis ``TIME``) fit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from agupshup.clock import Clock

from ._windows import Window

__all__ = ["Admission", "Ledger", "MemoryLedger", "View", "implied_counts", "release_margin",
           "with_margins"]

#: The least margin, and the share of a window's length, added to every release (powers of
#: two, so releases on a binary grid of times stay exact).
MARGIN_MIN = 2.0**-10
MARGIN_SHARE = 2.0**-13


def release_margin(length: float) -> float:
    """Seconds a release is kept past ``completion + length``.

    The server times its windows on its own clock, we on ``clock.monotonic()``: a clock that
    runs a little slower, or a wall clock slewed or stepped back (the emulator's time then
    stands still), shortens the server's window as we measure it. With windows scaled down
    (a minute of 0.1 s at 600×) even a few microseconds turn a release exactly at the
    boundary into a 113; about 1 ms, or 1e-4 of a long window, absorbs that.
    """
    return max(MARGIN_MIN, length * MARGIN_SHARE)


def with_margins(windows: Sequence[Window]) -> tuple[Window, ...]:
    """``windows`` with each length padded by :func:`release_margin`: what ledgers count."""
    return tuple(replace(w, length=w.length + release_margin(w.length)) for w in windows)


class Admission:
    """The answer to ``admit``: a ticket, or how long to wait and which window is in the way."""

    __slots__ = ("counts", "ticket", "wait", "window")

    def __init__(
        self, ticket: int | None, wait: float, window: int, counts: Sequence[int]
    ) -> None:
        #: The entry to pass to ``release``/``cancel``; ``None`` when refused.
        self.ticket = ticket
        #: Seconds until asking again is worth it (0 when admitted).
        self.wait = wait
        #: Index of the window (or hold) in the way; -1 when admitted.
        self.window = window
        #: Each window's count after this decision.
        self.counts = tuple(counts)


class View:
    """Each window's state, measured at ``at`` on the scheduler's ``clock.monotonic()``."""

    __slots__ = ("at", "counts", "frees", "held", "held_window")

    def __init__(
        self,
        at: float,
        counts: Sequence[int],
        frees: Sequence[float],
        held: float = 0.0,
        held_window: int = -1,
    ) -> None:
        self.at = at
        self.counts = tuple(counts)
        #: Seconds until one more call fits each window at its full limit (0: fits now).
        self.frees = tuple(frees)
        #: Seconds the hold still lasts (0: no hold), and which window set it.
        self.held = held
        self.held_window = held_window


class Ledger(Protocol):
    """Storage of a scheduler's entries; one per egress (client IP)."""

    def bind(self, windows: Sequence[Window], clock: Clock) -> None:
        """Fix the windows and the clock before first use."""
        ...

    async def admit(self, limits: Sequence[int]) -> Admission:
        """Admit one call now if every window has room under ``limits``."""
        ...

    async def release(
        self,
        ticket: int,
        learned: Sequence[tuple[int, int]] = (),
        held: Sequence[int] = (),
    ) -> None:
        """Complete ``ticket`` now; learn the server's counts ``learned`` (window index,
        count); hold every caller for the length of each window in ``held``."""
        ...

    async def cancel(self, ticket: int) -> None:
        """Forget an admitted call that was never sent."""
        ...

    def view(self) -> View:
        """The latest state this process knows (fresh for memory, last contact otherwise)."""
        ...

    async def usage(self) -> View:
        """The current state, fetched from the backend."""
        ...

    async def aclose(self) -> None:
        """Release resources; entries of calls still in flight expire by their lease."""
        ...


def implied_counts(
    windows: Sequence[Window], learned: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """A count reported for one window bounds every window at least as long from below."""
    best: dict[int, int] = {}
    for index, count in learned:
        for j, w in enumerate(windows):
            if w.length >= windows[index].length and count > best.get(j, 0):
                best[j] = count
    return sorted(best.items())


class MemoryLedger:
    """Entries in this process only: one in-flight count, and per window a deque of releases.

    Releases are appended as ``now + length``; ``now`` never goes back, so each deque stays
    sorted and expiring entries always leave from the left.
    """

    __slots__ = ("_added", "_clock", "_hold", "_hold_window", "_inflight", "_lengths", "_marks",
                 "_releases", "_seq", "_windows")

    #: The scheduler may call the ``*_now`` methods directly (its fast path, no suspension). A
    #: subclass that answers through its coroutines instead (as a test double may) sets False.
    inline = True

    def __init__(self) -> None:
        self._windows: tuple[Window, ...] = ()
        self._lengths: tuple[float, ...] = ()
        self._releases: list[deque[float]] = []
        self._inflight = 0
        self._hold = float("-inf")
        self._hold_window = -1
        self._seq = 0
        # Per window, entries ever added minus entries cancelled; per ticket in flight, the
        # counts at its dispatch and ``_added`` then: what the server could have counted.
        self._added: list[int] = []
        self._marks: dict[int, tuple[list[int], list[int]]] = {}
        self._clock: Clock | None = None

    def bind(self, windows: Sequence[Window], clock: Clock) -> None:
        if self._clock is not None:
            raise ValueError("a MemoryLedger serves one scheduler")
        self._windows = tuple(windows)
        self._lengths = tuple(w.length for w in self._windows)
        self._releases = [deque() for _ in self._windows]
        self._added = [0] * len(self._windows)
        self._clock = clock

    def _now(self) -> float:
        assert self._clock is not None, "bind() first"
        return self._clock.monotonic()

    def _count(self, i: int, now: float) -> int:
        releases = self._releases[i]
        while releases and releases[0] <= now:
            releases.popleft()
        return self._inflight + len(releases)

    def _free_in(self, i: int, count: int, limit: int, now: float) -> float:
        """Seconds until window ``i`` holds fewer than ``limit`` entries (0 if it does now)."""
        if count < limit:
            return 0.0
        releases = self._releases[i]
        k = count - limit  # this many releases, plus one, must pass
        return (releases[k] if k < len(releases) else now + self._lengths[i]) - now

    async def admit(self, limits: Sequence[int]) -> Admission:
        return self.admit_now(limits)

    def admit_now(self, limits: Sequence[int]) -> Admission:
        """:meth:`admit` without the coroutine, for the scheduler's fast path."""
        now = self._now()
        counts = [self._count(i, now) for i in range(len(self._releases))]
        wait, window = self._hold - now, self._hold_window
        if wait <= 0:
            wait, window = 0.0, -1
        for i, count in enumerate(counts):
            free_in = self._free_in(i, count, limits[i], now)
            if free_in > wait:
                wait, window = free_in, i
        if window >= 0:
            return Admission(None, wait, window, counts)
        self._inflight += 1
        self._seq += 1
        counts = [c + 1 for c in counts]
        self._added = [a + 1 for a in self._added]
        # A copy: release_now adds phantoms to ``_added`` in place, which must not change
        # what this call's mark says was added before it (a second phantom for one call).
        self._marks[self._seq] = (counts, list(self._added))
        return Admission(self._seq, 0.0, -1, counts)

    async def release(
        self,
        ticket: int,
        learned: Sequence[tuple[int, int]] = (),
        held: Sequence[int] = (),
    ) -> None:
        self.release_now(ticket, learned, held)

    def release_now(
        self,
        ticket: int,
        learned: Sequence[tuple[int, int]] = (),
        held: Sequence[int] = (),
    ) -> None:
        now = self._now()
        self._inflight -= 1
        at_dispatch, added_then = self._marks.pop(ticket)
        for releases, length in zip(self._releases, self._lengths, strict=True):
            releases.append(now + length)
        for i, count in implied_counts(self._windows, learned) if learned else ():
            ours = at_dispatch[i] + self._added[i] - added_then[i]
            if count > ours:
                self._releases[i].extend([now + self._lengths[i]] * (count - ours))
                self._added[i] += count - ours
        for i in held:
            if now + self._lengths[i] > self._hold:
                self._hold, self._hold_window = now + self._lengths[i], i

    async def cancel(self, ticket: int) -> None:
        self.cancel_now(ticket)

    def cancel_now(self, ticket: int) -> None:
        self._inflight -= 1
        del self._marks[ticket]
        self._added = [a - 1 for a in self._added]

    def view(self) -> View:
        now = self._now()
        counts = [self._count(i, now) for i in range(len(self._releases))]
        frees = [
            self._free_in(i, c, w.limit, now)
            for i, (c, w) in enumerate(zip(counts, self._windows, strict=True))
        ]
        held = max(0.0, self._hold - now)
        return View(now, counts, frees, held, self._hold_window if held else -1)

    async def usage(self) -> View:
        return self.view()

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryLedger(inflight={self._inflight}, windows={len(self._windows)})"
