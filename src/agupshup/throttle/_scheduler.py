"""The scheduler: who may call the server now, and who waits.

Rules this module enforces:

* Admission is the ledger's (see ``_ledger``): every window must have room. The scheduler adds
  the order: FIFO within a lane, ``interactive`` before ``bulk``, and ``bulk`` may only fill
  each window up to ``limit - floor(limit * interactive_reserve)``. A caller that finds nobody
  of its lane or a higher one waiting, and room, goes at once without the dispatcher.
* A call is in flight from admission until its slot exits, whatever the body did: a call that
  raised may still have reached the server, so it counts like any other.
* ``max_wait`` is settled before sending: a caller is refused with :class:`QuotaExhausted` as
  soon as the earliest possible admission lies beyond its deadline, never after admission.
* A caller cancelled while waiting gives up its place; if it had just been admitted, its entry
  is removed again (it was never sent).
* One dispatcher task per scheduler serves the queue. It sleeps on the injected clock until the
  ledger's next possible admission or the nearest deadline, and is woken early only when the
  order of the queue changes. Nothing polls. If the ledger fails, every waiter gets its error.
* A scheduler may outlive an event loop (``Scheduler.shared`` in tests): callers still waiting
  in a loop that has gone can never be served, so the first call from a new loop forgets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ClassVar

from aiolimiter import AsyncLimiter

from agupshup.clock import Clock, SystemClock
from agupshup.errors import Closed, LedgerError, QuotaExhausted
from agupshup.models import QuotaWindow, ThrottleTag

from ._ledger import Admission, Ledger, MemoryLedger, View
from ._windows import DEFAULT_WINDOWS, EventKind, Lane, ThrottleEvent, Window, check_windows

__all__ = ["Scheduler", "Slot"]

logger = logging.getLogger("agupshup.throttle")

_LANES: tuple[Lane, ...] = ("interactive", "bulk")
_INF = float("inf")
_LOG_LEVELS = {"warn": logging.INFO, "hold": logging.INFO, "limited": logging.WARNING}


class _Waiter:
    __slots__ = ("deadline", "fut", "lane", "since")

    def __init__(self, fut: asyncio.Future[int], lane: Lane, since: float, deadline: float):
        self.fut = fut
        self.lane = lane
        self.since = since
        self.deadline = deadline


class Slot:
    """One admitted call: ``async with sched.slot() as slot: ...; slot.learn(...)``."""

    __slots__ = ("_held", "_learned", "_max_wait", "_sched", "_ticket", "admitted_at", "lane",
                 "waited")

    def __init__(self, sched: Scheduler, lane: Lane, max_wait: float | None) -> None:
        if lane not in _LANES:
            raise ValueError(f"lane must be one of {_LANES}, not {lane!r}")
        self._sched = sched
        self.lane: Lane = lane
        self._max_wait = max_wait
        self._ticket: int | None = None
        self._learned: list[tuple[int, int]] = []
        self._held: list[int] = []
        #: ``clock.monotonic()`` at admission, and the seconds spent waiting for it.
        self.admitted_at = 0.0
        self.waited = 0.0

    async def __aenter__(self) -> Slot:
        if self._ticket is not None:
            raise RuntimeError("a Slot can be entered only once")
        since = self._sched._clock.monotonic()
        self._ticket = await self._sched._acquire(self.lane, since, self._max_wait)
        self.admitted_at = self._sched._clock.monotonic()
        self.waited = self.admitted_at - since
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._ticket is not None
        await self._sched._finish(self._ticket, self._learned, self._held)

    def learn(self, throttle: Sequence[ThrottleTag] = (), limited: bool = False) -> None:
        """Record the response's throttle tags; ``limited`` when the server answered 113.

        Applied when the slot exits, together with the call's completion.
        """
        learned, held = self._sched._interpret(throttle, limited)
        self._learned.extend(learned)
        self._held.extend(held)


class Scheduler:
    """Admits calls so that no server window, sliding or fixed, ever overflows."""

    __slots__ = ("_armed", "_clock", "_closed", "_deadlines", "_dirty", "_index", "_key",
                 "_ledger", "_limits", "_live", "_loop", "_memory", "_on_event", "_pacer",
                 "_pacing", "_pending", "_queues", "_seq", "_task", "_timer", "_wake_at",
                 "_wakeup", "_windows")

    _registry: ClassVar[dict[str, Scheduler]] = {}

    def __init__(
        self,
        windows: Sequence[Window] = DEFAULT_WINDOWS,
        *,
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        interactive_reserve: float = 0.1,
        pacing: bool = False,
        on_event: Callable[[ThrottleEvent], None] | None = None,
    ) -> None:
        if not 0.0 <= interactive_reserve < 1.0:
            raise ValueError("interactive_reserve must be in [0, 1)")
        self._windows = check_windows(windows)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self._ledger.bind(self._windows, self._clock)
        # The memory ledger never suspends, so callers may ask it directly (the fast path).
        self._memory = self._ledger if isinstance(self._ledger, MemoryLedger) else None
        full = tuple(w.limit for w in self._windows)
        bulk = tuple(w.limit - math.floor(w.limit * interactive_reserve + 1e-9)
                     for w in self._windows)
        self._limits: dict[Lane, tuple[int, ...]] = {"interactive": full, "bulk": bulk}
        self._index = {w.period: i for i, w in enumerate(self._windows)}
        self._on_event = on_event
        self._pacing = pacing
        self._pacer: tuple[asyncio.AbstractEventLoop, AsyncLimiter] | None = None
        self._queues: dict[Lane, deque[_Waiter]] = {lane: deque() for lane in _LANES}
        self._live: dict[Lane, int] = dict.fromkeys(_LANES, 0)
        self._deadlines: list[tuple[float, int, _Waiter]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._wake_at = _INF
        self._dirty = False
        # Per window: may a warn/hold event fire? Re-armed when the count drops below warn.
        self._armed = [[True, True] for _ in self._windows]
        self._pending: set[asyncio.Task[None]] = set()
        self._closed = False
        self._key: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- public ---------------------------------------------------------------------------

    @classmethod
    def shared(
        cls,
        key: str,
        windows: Sequence[Window] = DEFAULT_WINDOWS,
        *,
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        interactive_reserve: float = 0.1,
        pacing: bool = False,
        on_event: Callable[[ThrottleEvent], None] | None = None,
    ) -> Scheduler:
        """The process's scheduler for egress ``key`` (e.g. the base URL); the first call's
        options create it, later calls get the same one until it is closed."""
        found = cls._registry.get(key)
        if found is None or found._closed:
            found = cls(windows, clock=clock, ledger=ledger, pacing=pacing, on_event=on_event,
                        interactive_reserve=interactive_reserve)
            found._key = key
            cls._registry[key] = found
        return found

    @property
    def windows(self) -> tuple[Window, ...]:
        return self._windows

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def slot(self, lane: Lane = "bulk", max_wait: float | None = None) -> Slot:
        """An async context manager that waits for admission (at most ``max_wait`` seconds)."""
        return Slot(self, lane, max_wait)

    def quota(self) -> list[QuotaWindow]:
        """Each window as this process last saw it (live for the memory ledger)."""
        return self._quota_from(self._ledger.view())

    async def fetch_quota(self) -> list[QuotaWindow]:
        """Each window as the ledger sees it now (a round trip for shared ledgers)."""
        return self._quota_from(await self._ledger.usage())

    @property
    def waiting(self) -> int:
        """How many callers are waiting for admission."""
        return sum(self._live.values())

    async def aclose(self) -> None:
        """Refuse new calls, fail waiting ones, and close the ledger."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not (loop := asyncio.get_running_loop()):
            self._adopt(loop)  # what ran in another loop is over
        if self._key is not None and self._registry.get(self._key) is self:
            del self._registry[self._key]
        self._fail_waiters(Closed("the scheduler was closed"))
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._ledger.aclose()

    def __repr__(self) -> str:
        periods = ", ".join(f"{w.period} {w.limit}/{w.length:g}s" for w in self._windows)
        return f"Scheduler([{periods}], waiting={self.waiting}, ledger={self._ledger!r})"

    # -- admission --------------------------------------------------------------------------

    async def _acquire(self, lane: Lane, since: float, max_wait: float | None) -> int:
        if self._closed:
            raise Closed("the scheduler is closed")
        if self._loop is not (loop := asyncio.get_running_loop()):
            self._adopt(loop)
        if self._pacing and lane == "bulk":
            await self._pace(since, max_wait)
        deadline = _INF if max_wait is None else since + max_wait
        if self._memory is not None and self._nobody_ahead(lane):
            admission = self._memory.admit_now(self._limits[lane])
            if admission.ticket is not None:
                self._admitted(admission)
                return admission.ticket
            self._blocked(admission)
            now = self._clock.monotonic()
            if now + admission.wait > deadline:
                raise self._exhausted(admission, now, since)
        return await self._wait(lane, since, deadline)

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve callers of ``loop`` from now on; those of an earlier loop are gone."""
        self._loop = loop
        self._queues = {lane: deque() for lane in _LANES}
        self._live = dict.fromkeys(_LANES, 0)
        self._deadlines.clear()
        self._task = self._timer = self._wakeup = None
        self._pending = set()
        self._wake_at = _INF

    def _fail_waiters(self, exc: BaseException) -> None:
        for queue in self._queues.values():
            for waiter in queue:
                if not waiter.fut.done():
                    waiter.fut.set_exception(exc)
            queue.clear()
        self._live = dict.fromkeys(_LANES, 0)

    def _nobody_ahead(self, lane: Lane) -> bool:
        live = self._live
        return live["interactive"] == 0 and (lane == "interactive" or live["bulk"] == 0)

    async def _wait(self, lane: Lane, since: float, deadline: float) -> int:
        waiter = _Waiter(asyncio.get_running_loop().create_future(), lane, since, deadline)
        self._queues[lane].append(waiter)
        self._live[lane] += 1
        if deadline < _INF:
            heapq.heappush(self._deadlines, (deadline, next(self._seq), waiter))
        self._kick(waiter)
        try:
            return await waiter.fut
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise

    def _kick(self, waiter: _Waiter) -> None:
        """Wake the dispatcher if ``waiter`` changes its plan."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._dispatch())
        elif (waiter.lane == "interactive" and self._live["interactive"] == 1) or (
            waiter.deadline < self._wake_at
        ):
            self._poke()

    def _poke(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        else:
            self._dirty = True

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiting caller was cancelled: give up its place, or its fresh ticket."""
        fut = waiter.fut
        if fut.cancelled():
            self._live[waiter.lane] -= 1
        elif fut.exception() is None:
            self._drop(fut.result())
        self._poke()

    def _drop(self, ticket: int) -> None:
        if self._memory is not None:
            self._memory.cancel_now(ticket)
        else:
            self._spawn(self._ledger.cancel(ticket))

    def _head(self) -> _Waiter | None:
        for lane in _LANES:
            queue = self._queues[lane]
            while queue and queue[0].fut.done():
                queue.popleft()
            if queue:
                return queue[0]
        return None

    async def _dispatch(self) -> None:
        try:
            while (waiter := self._head()) is not None:
                self._dirty = False
                try:
                    admission = await self._ledger.admit(self._limits[waiter.lane])
                except Exception as exc:
                    logger.error("throttle ledger failed: %r", exc)
                    failure = LedgerError(f"the throttle ledger failed: {exc!r}")
                    failure.__cause__ = exc
                    self._fail_waiters(failure)
                    return
                if admission.ticket is not None:
                    self._hand_over(waiter, admission.ticket, admission)
                    continue
                self._blocked(admission)
                now = self._clock.monotonic()
                self._expire(now + admission.wait, admission, now)
                if self._dirty or self._head() is None:
                    continue
                delay = admission.wait
                if self._deadlines:
                    delay = min(delay, self._deadlines[0][0] - now)
                await self._pause(now, delay)
        finally:
            self._deadlines.clear()
            if self._task is asyncio.current_task():
                self._task = None

    def _hand_over(self, waiter: _Waiter, ticket: int, admission: Admission) -> None:
        queue = self._queues[waiter.lane]
        if queue and queue[0] is waiter:
            queue.popleft()
        if waiter.fut.done():  # cancelled or expired while the ledger was asked
            self._drop(ticket)
            return
        self._live[waiter.lane] -= 1
        waiter.fut.set_result(ticket)
        self._admitted(admission)  # after: an event hook may cancel the waiter's task

    def _expire(self, horizon: float, admission: Admission, now: float) -> None:
        """Refuse every waiter whose deadline comes before the earliest possible admission."""
        heap = self._deadlines
        while heap and (heap[0][0] < horizon or heap[0][2].fut.done()):
            _, _, waiter = heapq.heappop(heap)
            if not waiter.fut.done():
                self._live[waiter.lane] -= 1
                waiter.fut.set_exception(self._exhausted(admission, now, waiter.since))

    async def _pause(self, now: float, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = wakeup = loop.create_future()
        self._wake_at = now + delay
        self._timer = timer = loop.create_task(self._ring(max(0.0, delay), wakeup))
        try:
            await wakeup
        finally:
            self._wakeup, self._wake_at = None, _INF
            timer.cancel()

    async def _ring(self, delay: float, wakeup: asyncio.Future[None]) -> None:
        await self._clock.sleep(delay)
        if not wakeup.done():
            wakeup.set_result(None)

    def _exhausted(self, admission: Admission, now: float, since: float) -> QuotaExhausted:
        period = self._windows[admission.window].period
        return QuotaExhausted(period, now + admission.wait, now - since)

    async def _pace(self, since: float, max_wait: float | None) -> None:
        """Spread bulk calls evenly over the longest window (aiolimiter, on the loop's clock)."""
        limiter = self._limiter()
        if max_wait is None:
            await limiter.acquire()
            return
        try:
            async with asyncio.timeout(max(0.0, max_wait)):
                await limiter.acquire()
        except TimeoutError:
            now = self._clock.monotonic()
            raise QuotaExhausted("pace", now + limiter.time_period, now - since) from None

    def _limiter(self) -> AsyncLimiter:
        loop = asyncio.get_running_loop()
        if self._pacer is None or self._pacer[0] is not loop:
            longest = max(range(len(self._windows)), key=lambda i: self._windows[i].length)
            budget = self._limits["bulk"][longest]
            self._pacer = (loop, AsyncLimiter(1, self._windows[longest].length / budget))
        return self._pacer[1]

    # -- completion and learning ------------------------------------------------------------

    async def _finish(
        self, ticket: int, learned: Sequence[tuple[int, int]], held: Sequence[int]
    ) -> None:
        if self._memory is not None:
            self._memory.release_now(ticket, learned, held)
            return
        # Shielded: the release must land even if the caller is being cancelled. A failure is
        # logged by _settled; the entry then counts until its lease expires (the safe side).
        task = self._spawn(self._ledger.release(ticket, learned, held))
        with contextlib.suppress(Exception):
            await asyncio.shield(task)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The entry keeps counting until its lease expires, which is the safe side.
            logger.warning("throttle ledger update failed: %r", exc)
        self._poke()

    def _interpret(
        self, tags: Sequence[ThrottleTag], limited: bool
    ) -> tuple[list[tuple[int, int]], list[int]]:
        learned = [(self._index[t.period], t.count) for t in tags if t.period in self._index]
        for i, count in learned:
            if count >= self._windows[i].warn:
                self._warn(i, count)
        if not limited:
            return learned, []
        held = sorted({i for i, _ in learned}) or [
            min(range(len(self._windows)), key=lambda i: self._windows[i].length)
        ]
        for i in held:
            w = self._windows[i]
            self._emit("limited", w.period, f"the server refused a call (113); "
                                            f"holding every caller for {w.length:g}s", w.length)
        return learned, held

    # -- events -----------------------------------------------------------------------------

    def _admitted(self, admission: Admission) -> None:
        for i, count in enumerate(admission.counts):
            armed = self._armed[i]
            if count < self._windows[i].warn:
                armed[0] = armed[1] = True
            elif armed[0]:
                self._warn(i, count)

    def _warn(self, i: int, count: int) -> None:
        if self._armed[i][0]:
            self._armed[i][0] = False
            w = self._windows[i]
            self._emit("warn", w.period, f"{count} of {w.limit} calls (warn at {w.warn})")

    def _blocked(self, admission: Admission) -> None:
        armed = self._armed[admission.window]
        if armed[1]:
            armed[1] = False
            w = self._windows[admission.window]
            self._emit("hold", w.period, f"window full; callers held {admission.wait:.3f}s",
                       admission.wait)

    def _emit(self, kind: EventKind, period: str, detail: str, wait: float | None = None) -> None:
        logger.log(_LOG_LEVELS[kind], "throttle %s: %s: %s", kind, period, detail)
        if self._on_event is None:
            return
        try:
            self._on_event(ThrottleEvent(kind, period, detail, wait))
        except Exception:
            logger.exception("throttle on_event hook failed")

    def _quota_from(self, view: View) -> list[QuotaWindow]:
        held_until = view.at + view.held if view.held > 0 else None
        return [
            QuotaWindow(
                period=w.period,
                length=w.length,
                limit=w.limit,
                used=view.counts[i],
                free_at=view.at + max(view.frees[i], view.held),
                held_until=held_until if i == view.held_window else None,
            )
            for i, w in enumerate(self._windows)
        ]
