"""Injected time.

Every part of agupshup that waits or measures time (the scheduler, token expiry, stream polling)
takes a :class:`Clock` instead of calling :mod:`time` or :func:`asyncio.sleep` itself, so that
tests can drive them with :class:`FakeClock` and never sleep.

Rules this module enforces:

* ``monotonic()`` is for intervals and deadlines; ``time()`` (epoch seconds) only for values that
  leave the process (SQLite/Redis ledgers, cursors).
* ``FakeClock`` never moves by itself unless ``autojump`` is set; ``advance()`` wakes sleepers in
  deadline order.
* ``ScaledClock`` is server time for a sped-up server (the emulator's ``time_scale``): every
  duration measured or slept on it (throttle windows, token idle time, breaker cool-downs, poll
  intervals) is in server seconds and passes ``scale`` times faster. Its readings are the base
  clock's times ``scale``, with no per-instance origin, so equal clocks agree in every process.
* What a person reads is real time: :func:`readable` turns an instant of any of these clocks
  into seconds from now and a wall-clock time.
* Waiting on something that may never answer (a ledger, a lock, a login) up to a deadline of
  one of these clocks is :func:`within`, the one bounded await: ``asyncio.timeout`` runs on
  the loop's own clock, which a fake or scaled clock is not.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time as _time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["Clock", "FakeClock", "Overdue", "ScaledClock", "SystemClock", "from_real", "readable",
           "within"]

T = TypeVar("T")


class Overdue(TimeoutError):
    """:func:`within`'s deadline came first. Its own class: what was awaited may raise a
    ``TimeoutError`` of its own (a request's), which is not this."""


@runtime_checkable
class Clock(Protocol):
    """What agupshup needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SystemClock)  # they all read the same time

    def __hash__(self) -> int:
        return hash(SystemClock)


class ScaledClock:
    """``base`` sped up ``scale`` times: server seconds of an emulator with that ``time_scale``."""

    __slots__ = ("base", "scale")

    def __init__(self, base: Clock | None = None, scale: float = 1.0) -> None:
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"time_scale must be a finite number > 0, not {scale!r}")
        self.base: Clock = base if base is not None else SystemClock()
        self.scale = float(scale)

    def monotonic(self) -> float:
        return self.base.monotonic() * self.scale

    def time(self) -> float:
        # Scaled around the epoch, not a per-instance origin: processes sharing a wall-clock
        # ledger at one scale then agree.
        return self.base.time() * self.scale

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds / self.scale)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ScaledClock) and other.scale == self.scale
                and other.base == self.base)

    def __hash__(self) -> int:
        return hash((ScaledClock, self.scale))

    def __repr__(self) -> str:
        return f"ScaledClock({self.base!r}, scale={self.scale:g})"


def readable(clock: Clock, at: float) -> tuple[float, datetime]:
    """Instant ``at`` of ``clock.monotonic()`` as (real seconds from now, aware UTC time)."""
    scale, real = _unscaled(clock)
    seconds = (at - clock.monotonic()) / scale
    return seconds, datetime.fromtimestamp(real.time() + seconds, UTC)


def from_real(clock: Clock, seconds: float) -> float:
    """``seconds`` of real time as a duration on ``clock`` (a network's patience does not
    speed up with the emulator)."""
    return seconds * _unscaled(clock)[0]


def _unscaled(clock: Clock) -> tuple[float, Clock]:
    scale = 1.0
    while isinstance(clock, ScaledClock):
        scale, clock = scale * clock.scale, clock.base
    return scale, clock


async def within(clock: Clock, deadline: float | None, waiting: Awaitable[T]) -> T:
    """``waiting``'s outcome, or :class:`Overdue` once ``clock.monotonic()`` reaches
    ``deadline`` (``None``: no deadline) without it.

    On a timeout ``waiting`` is cancelled but not waited for: what does not answer may not
    heed a cancellation soon either (shield it to keep it running). A caller cancelled while
    waiting cancels it too.
    """
    if deadline is None:
        return await waiting
    task = asyncio.ensure_future(waiting)
    if not task.done():
        timer = asyncio.ensure_future(clock.sleep(deadline - clock.monotonic()))
        try:
            await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not task.done():
                task.cancel()
                task.add_done_callback(_retrieve)
    if not task.done() or task.cancelled():
        raise Overdue(f"no answer by t={deadline:.3f}")
    return task.result()


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark an abandoned task's outcome as seen (no "exception never retrieved" noise)."""
    if not task.cancelled():
        task.exception()


class FakeClock:
    """A clock that moves only when told to.

    ``autojump=True`` makes every ``sleep`` move the clock to the sleeper's deadline at once
    (in deadline order), which suits tests that only care about the order of events.
    """

    __slots__ = ("_autojump", "_now", "_seq", "_sleepers", "_wall0")

    def __init__(
        self, start: float = 0.0, *, wall: float = 1_700_000_000.0, autojump: bool = False
    ):
        self._now = start
        self._wall0 = wall - start
        self._autojump = autojump
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._wall0 + self._now

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + max(0.0, seconds)
        if self._autojump:
            await asyncio.sleep(0)
            self._now = max(self._now, deadline)
            self._wake()
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        if deadline <= self._now:
            self._wake()
        await fut

    async def advance(self, seconds: float) -> None:
        """Move the clock forward, waking each sleeper at its own deadline."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            self._now = max(self._now, self._sleepers[0][0])
            self._wake()
            # Let woken tasks run before time moves on, as it would on a real clock.
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)

    def _wake(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            # A sleeper of a loop that has been closed can never run again (a scheduler or a
            # test may outlive its loop): waking it would raise in the waker.
            if not fut.done() and not fut.get_loop().is_closed():
                fut.set_result(None)

    @property
    def sleepers(self) -> int:
        """How many tasks are asleep on this clock."""
        return sum(1 for *_, f in self._sleepers if not f.done())

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:.3f})"
