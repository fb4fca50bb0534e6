"""The scheduler: who may call the server now, and who waits.

Rules this module enforces:

* Admission is the ledger's (see ``_ledger``): every window must have room, and a call keeps
  its place ``release_margin`` (about 1 ms) past ``completion + length``, since the server's
  clock may run a little slower than ours. The scheduler adds
  the order: FIFO within a lane, ``interactive`` before ``bulk``. A caller that finds nobody
  of its lane or a higher one waiting, and room, goes at once without the dispatcher.
* The interactive reserve costs nothing unused: ``bulk`` may fill window ``w`` only up to
  ``limit - floor(limit * interactive_reserve)`` while an interactive call is in flight or
  completed less than ``length_w`` ago; otherwise up to the limit. (An interactive caller that
  waits is ahead of every bulk one anyway.)
* Answers are read before a window's last places are spent: while any call of this scheduler
  is in flight, a window admits only up to ``limit - burst_margin`` (default ``2 * (limit -
  warn)``); the places above go one at a time, each once every earlier answer, and the throttle
  tags it carried, has been read. So a burst of up to ``burst_margin`` calls by other programs
  on the same IP costs no 113, and a bigger one at most one before the hold.
* Throttle tags are matched to windows by their ``limit`` (then by ``period`` name when the
  limit is shared or unknown); a tag that matches nothing is logged once and ignored.
* A call is in flight from admission until its slot exits, whatever the body did: a call that
  raised may still have reached the server, so it counts like any other. One that exits by an
  exception before its answer was read (cancelled, timed out, connection lost) stays in flight
  for the shortest window's length more: its request may be in a socket or a server queue, and
  be counted after we stopped waiting.
* ``max_wait`` is settled before sending: a caller is refused with :class:`QuotaExhausted` as
  soon as the earliest possible admission lies beyond its deadline (at its deadline, while
  only the answer gate holds it), never after admission.
* A shared ledger that stops answering holds nobody past a deadline: each round trip a caller
  waits on (its admission, its slot's release) is bounded by that caller's deadline, but is
  always given ``LEDGER_GRACE`` real seconds from when it was asked (a ``max_wait=0`` caller
  gets its one round trip). Past that, waiters due are refused with :class:`DeadlineExceeded`
  and the ledger is asked again for the others; a release not yet confirmed lands in the
  background (its entry counts meanwhile), and an admission the ledger made but never
  answered counts until its lease runs out: both on the safe side.
* A caller cancelled while waiting gives up its place; if it had just been admitted, its entry
  is removed again (it was never sent).
* One dispatcher task per scheduler serves the queue. It sleeps on the injected clock until the
  ledger's next possible admission or the nearest deadline, and is woken early only when the
  order of the queue changes, the gate opens, or an interactive call lands (its reserve's lapse
  is known only then). Nothing polls. If the ledger fails, every waiter gets its error.
* A scheduler may outlive an event loop (``Scheduler.shared`` in tests): callers still waiting
  in a loop that has gone can never be served, so the first call from a new loop forgets them.
  Its calls are not forgotten: one still in flight there ends without its answer (it is
  released a shortest window after the new loop takes over), and a late release keeps its due
  time, now kept by the new loop. A slot of the old loop that exits after all does nothing.
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

from agupshup.clock import Clock, Overdue, SystemClock, from_real, readable, within
from agupshup.errors import Closed, DeadlineExceeded, LedgerError, QuotaExhausted
from agupshup.models import QuotaWindow, ThrottleTag

from ._ledger import Admission, Ledger, MemoryLedger, View, with_margins
from ._windows import DEFAULT_WINDOWS, EventKind, Lane, ThrottleEvent, Window, check_windows

__all__ = ["LEDGER_GRACE", "Scheduler", "Slot"]

logger = logging.getLogger("agupshup.throttle")

_LANES: tuple[Lane, ...] = ("interactive", "bulk")
_INF = float("inf")
_LOG_LEVELS = {"warn": logging.INFO, "hold": logging.INFO, "limited": logging.WARNING}


_NEVER = -_INF
#: Real seconds a shared ledger's round trip may take even past a caller's deadline.
LEDGER_GRACE = 0.5


class _Waiter:
    __slots__ = ("counted", "deadline", "fut", "lane", "since")

    def __init__(self, fut: asyncio.Future[int], lane: Lane, since: float, deadline: float):
        self.fut = fut
        self.lane = lane
        self.since = since
        self.deadline = deadline
        #: Still in ``Scheduler._live``: whoever settles the waiter first takes it out, once.
        self.counted = True


class Slot:
    """One admitted call: ``async with sched.slot() as slot: ...; slot.learn(...)``."""

    __slots__ = ("_answered", "_deadline", "_held", "_learned", "_max_wait", "_sched",
                 "_ticket", "admitted_at", "lane", "waited")

    def __init__(self, sched: Scheduler, lane: Lane, max_wait: float | None) -> None:
        if lane not in _LANES:
            raise ValueError(f"lane must be one of {_LANES}, not {lane!r}")
        self._sched = sched
        self.lane: Lane = lane
        self._max_wait = max_wait
        self._ticket: int | None = None
        self._learned: list[tuple[int, int]] = []
        self._held: list[int] = []
        self._answered = False
        self._deadline: float | None = None
        #: ``clock.monotonic()`` at admission, and the seconds spent waiting for it.
        self.admitted_at = 0.0
        self.waited = 0.0

    async def __aenter__(self) -> Slot:
        if self._ticket is not None:
            raise RuntimeError("a Slot can be entered only once")
        since = self._sched._clock.monotonic()
        if self._max_wait is not None:
            self._deadline = since + self._max_wait
        self._ticket = await self._sched._acquire(self.lane, since, self._max_wait)
        self.admitted_at = self._sched._clock.monotonic()
        self.waited = self.admitted_at - since
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._ticket is not None
        if not self._sched._ended(self._ticket):
            return  # a later event loop took this call over and releases it (Scheduler._adopt)
        if exc_info[0] is not None and not self._answered and not self._sched._closed:
            self._sched._finish_late(self._ticket, self.lane)
            return
        await self._sched._finish(self._ticket, self.lane, self._learned, self._held,
                                  self._deadline)

    def learn(self, throttle: Sequence[ThrottleTag] = (), limited: bool = False) -> None:
        """Record the response's throttle tags; ``limited`` when the server answered 113.

        Applied when the slot exits, together with the call's completion.
        """
        self._answered = True
        learned, held = self._sched._interpret(throttle, limited)
        self._learned.extend(learned)
        self._held.extend(held)


class Scheduler:
    """Admits calls so that no server window, sliding or fixed, ever overflows."""

    __slots__ = ("_armed", "_by_limit", "_clock", "_closed", "_deadlines", "_dirty", "_flying",
                 "_full", "_gated", "_gated_full", "_gates", "_grace", "_horizon", "_index",
                 "_interactive_done",
                 "_interactive_flying", "_key", "_late", "_ledger", "_live", "_loop", "_memory",
                 "_on_event", "_pacer", "_pacing", "_pending", "_queues", "_reserved", "_seq",
                 "_task", "_tickets", "_timer", "_timer_at", "_unmatched", "_users", "_wake_at",
                 "_wakeup", "_windows")

    _registry: ClassVar[dict[str, Scheduler]] = {}

    def __init__(
        self,
        windows: Sequence[Window] = DEFAULT_WINDOWS,
        *,
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        interactive_reserve: float = 0.1,
        burst_margin: int | None = None,
        pacing: bool = False,
        on_event: Callable[[ThrottleEvent], None] | None = None,
    ) -> None:
        if not 0.0 <= interactive_reserve < 1.0:
            raise ValueError("interactive_reserve must be in [0, 1)")
        if burst_margin is not None and burst_margin < 0:
            raise ValueError("burst_margin must be >= 0 (0: no gate)")
        self._windows = check_windows(windows)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        # Releases keep a small margin past the window (see release_margin): the server's
        # clock is not ours.
        self._ledger.bind(with_margins(self._windows), self._clock)
        # The memory ledger never suspends, so callers may ask it directly (the fast path).
        ledger = self._ledger
        self._memory = ledger if isinstance(ledger, MemoryLedger) and ledger.inline else None
        self._grace = from_real(self._clock, LEDGER_GRACE)
        self._full = tuple(w.limit for w in self._windows)
        self._reserved = tuple(w.limit - math.floor(w.limit * interactive_reserve + 1e-9)
                               for w in self._windows)
        self._gates = tuple(w.limit - _margin(w, burst_margin) for w in self._windows)
        self._gated = self._gates != self._full
        self._gated_full = tuple(min(a, b) for a, b in zip(self._full, self._gates, strict=True))
        # Our calls admitted and not yet completed; interactive ones, and when the last ended.
        self._flying = self._interactive_flying = 0
        # The tickets of those calls whose slot has not exited yet, and their lanes.
        self._tickets: dict[int, Lane] = {}
        self._interactive_done = _NEVER
        self._horizon = max(w.length for w in self._windows)
        self._index = {w.name: i for i, w in enumerate(self._windows)}
        self._by_limit: dict[int, list[int]] = {}
        for i, w in enumerate(self._windows):
            self._by_limit.setdefault(w.limit, []).append(i)
        self._unmatched: set[tuple[str, int]] = set()
        self._users = 0
        self._on_event = on_event
        self._pacing = pacing
        self._pacer: tuple[asyncio.AbstractEventLoop, AsyncLimiter] | None = None
        self._queues: dict[Lane, deque[_Waiter]] = {lane: deque() for lane in _LANES}
        self._live: dict[Lane, int] = dict.fromkeys(_LANES, 0)
        self._deadlines: list[tuple[float, int, _Waiter]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = _INF
        self._wakeup: asyncio.Future[None] | None = None
        self._wake_at = _INF
        self._dirty = False
        # Per window: may a warn/hold event fire? Re-armed when the count drops below warn.
        self._armed = [[True, True] for _ in self._windows]
        self._pending: set[asyncio.Task[None]] = set()
        # Releases of calls whose answer was never read, waiting out the shortest window:
        # ticket, lane, and when the release is due.
        self._late: dict[asyncio.Task[None], tuple[int, Lane, float]] = {}
        self._closed = False
        self._key: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- public ---------------------------------------------------------------------------

    @classmethod
    def shared(
        cls,
        key: str,
        windows: Sequence[Window] | None = None,
        *,
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        interactive_reserve: float = 0.1,
        pacing: bool = False,
        on_event: Callable[[ThrottleEvent], None] | None = None,
        default_ledger: Callable[[], Ledger | None] | None = None,
    ) -> Scheduler:
        """The process's scheduler for egress ``key`` (see ``agupshup.client.egress_key``).

        ``default_ledger`` makes the ledger of a scheduler created here when ``ledger`` is left
        out (the client's per-host file); it is not called when one is joined.

        The first call's options create it; later calls get the same one until it is closed.
        ``windows`` and ``ledger`` left out accept what the egress already has; given, they
        must match it, and ``clock`` (``None``: the system clock) must equal its clock, or
        :class:`ValueError` says which differs, unless no one uses it any more (see
        :meth:`attach`): then the new options replace it.
        """
        want = SystemClock() if clock is None else clock
        found = cls._registry.get(key)
        if found is not None and not found._closed:
            conflict = found._conflict(windows, want, ledger)
            if conflict is None:
                return found
            if found.in_use:
                raise ValueError(f"egress {key!r}: {conflict}; one IP has one budget: pass the "
                                 "same options, or one scheduler= to every client")
            logger.info("egress %r: unused scheduler replaced (%s)", key, conflict)
        if ledger is None and default_ledger is not None:
            ledger = default_ledger()
        found = cls(DEFAULT_WINDOWS if windows is None else windows, clock=want, ledger=ledger,
                    pacing=pacing, on_event=on_event, interactive_reserve=interactive_reserve)
        found._key = key
        cls._registry[key] = found
        return found

    def _conflict(
        self, windows: Sequence[Window] | None, clock: Clock, ledger: Ledger | None
    ) -> str | None:
        if windows is not None and tuple(windows) != self._windows:
            return f"windows {_show(windows)} differ from {_show(self._windows)} in use"
        if ledger is not None and ledger is not self._ledger:
            return f"ledger {ledger!r} is not {self._ledger!r} in use"
        if clock != self._clock:
            return f"clock {clock!r} is not {self._clock!r} in use"
        return None

    def attach(self) -> Scheduler:
        """Count one more user (a Client); a shared scheduler with users is never replaced."""
        self._users += 1
        return self

    def detach(self) -> None:
        """A user is done; the scheduler (and what it counted) stays for the next one."""
        self._users = max(0, self._users - 1)
        if not self._users:
            self._flush_late()

    @property
    def in_use(self) -> bool:
        """Attached users, callers waiting, or calls in flight."""
        return bool(self._users or self.waiting or self._flying)

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
        if late := self._flush_late():
            await asyncio.gather(*late, return_exceptions=True)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._ledger.aclose()

    def __repr__(self) -> str:
        return f"Scheduler({_show(self._windows)}, waiting={self.waiting}, ledger={self._ledger!r})"

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
            now = self._clock.monotonic()
            limits, gated = self._limits_now(lane, now)
            admission = self._memory.admit_now(limits)
            if admission.ticket is not None:
                self._took(lane, admission.ticket)
                self._admitted(admission)
                return admission.ticket
            earliest = self._refused(admission, lane, gated, now)
            if earliest > deadline:
                raise self._exhausted(admission, now, since)
        return await self._wait(lane, since, deadline)

    def _limits_now(self, lane: Lane, now: float) -> tuple[tuple[int, ...], bool]:
        """The limits ``lane`` may fill now, and whether the answer gate lowered them."""
        reserving = lane == "bulk" and (self._interactive_flying
                                        or now < self._interactive_done + self._horizon)
        if not (self._flying and self._gated):
            return (self._bulk_limits(now) if reserving else self._full), False
        if not reserving:
            return self._gated_full, True
        limits = self._bulk_limits(now)
        gated = tuple(min(a, b) for a, b in zip(limits, self._gates, strict=True))
        return gated, gated != limits

    def _bulk_limits(self, now: float) -> tuple[int, ...]:
        if self._interactive_flying:
            return self._reserved
        done = self._interactive_done
        return tuple(r if now < done + w.length else f
                     for r, f, w in zip(self._reserved, self._full, self._windows, strict=True))

    def _refused(self, admission: Admission, lane: Lane, gated: bool, now: float) -> float:
        """Report a refusal; the earliest moment admission may become possible, a lower bound
        (the reserve lapses when interactive calls age out; the gate lifts when our answers are
        in, which may be at any moment, so a gated caller is refused at its deadline)."""
        if gated:
            if any(c >= f for c, f in zip(admission.counts, self._full, strict=True)):
                self._blocked(admission)  # full even without the gate
            return now
        self._blocked(admission)
        earliest = now + admission.wait
        if lane == "bulk" and not self._interactive_flying:
            done = self._interactive_done
            lapses = [done + w.length for w in self._windows if done + w.length > now]
            earliest = min([earliest, *lapses])
        return earliest

    def _took(self, lane: Lane, ticket: int) -> None:
        self._tickets[ticket] = lane
        self._flying += 1
        if lane == "interactive":
            self._interactive_flying += 1

    def _landed(self, lane: Lane, sent: bool) -> None:
        self._flying -= 1
        if lane == "interactive":
            self._interactive_flying -= 1
            if sent:
                self._interactive_done = self._clock.monotonic()
        if self.waiting and ((self._gated and not self._flying) or lane == "interactive"):
            # Every answer is read: the gate opens. Or the reserve's lapse is known now: the
            # dispatcher planned with this call in flight, as if it ended a length from then.
            self._poke()

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve callers of ``loop`` from now on; those of an earlier loop are gone, but not
        their calls: the ledger still counts them, so their releases are made here."""
        self._loop = loop
        for queue in self._queues.values():
            for waiter in queue:
                waiter.counted = False  # gone with their loop: never counted again
        self._queues = {lane: deque() for lane in _LANES}
        self._live = dict.fromkeys(_LANES, 0)
        self._deadlines.clear()
        self._task = self._timer = self._wakeup = None
        self._pending = set()
        self._wake_at = _INF
        # Releases already asked of a shared ledger in the old loop may not have landed; their
        # entries then count until their leases expire (the safe side).
        now = self._clock.monotonic()
        stranded = [*self._late.values(), *((ticket, lane, now + self._shortest())
                                            for ticket, lane in self._tickets.items())]
        self._late, self._tickets = {}, {}
        self._flying = len(stranded)
        self._interactive_flying = sum(lane == "interactive" for _, lane, _ in stranded)
        for ticket, lane, due in stranded:
            if due > now:
                self._release_at(ticket, lane, due)
            else:  # at once (a ledger completes a call only "now": it counts a window more)
                self._release(ticket, lane, (), ())

    def _fail_waiters(self, exc: BaseException) -> None:
        for queue in self._queues.values():
            for waiter in queue:
                if not waiter.fut.done():
                    waiter.fut.set_exception(exc)
                self._uncount(waiter)  # a cancelled one's task may not have run yet
            queue.clear()

    def _nobody_ahead(self, lane: Lane) -> bool:
        live = self._live
        return live["interactive"] == 0 and (lane == "interactive" or live["bulk"] == 0)

    async def _wait(self, lane: Lane, since: float, deadline: float) -> int:
        waiter = _Waiter(asyncio.get_running_loop().create_future(), lane, since, deadline)
        self._queues[lane].append(waiter)
        self._live[lane] += 1  # taken out again by _uncount
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
            self._uncount(waiter)
        elif fut.exception() is None:
            self._drop(fut.result(), waiter.lane)
        self._poke()

    def _uncount(self, waiter: _Waiter) -> None:
        """``waiter`` no longer waits: count it out of ``_live``, unless that was done."""
        if waiter.counted:
            waiter.counted = False
            self._live[waiter.lane] -= 1

    def _drop(self, ticket: int, lane: Lane) -> None:
        self._tickets.pop(ticket, None)
        self._landed(lane, sent=False)
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
                now = self._clock.monotonic()
                limits, gated = self._limits_now(waiter.lane, now)
                try:
                    admission = await self._ask(limits)
                except Overdue as silence:
                    self._expire_silent(silence)
                    continue
                except Exception as exc:
                    logger.error("throttle ledger failed: %r", exc)
                    failure = LedgerError(f"the throttle ledger failed: {exc!r}")
                    failure.__cause__ = exc
                    self._fail_waiters(failure)
                    return
                if admission.ticket is not None:
                    self._took(waiter.lane, admission.ticket)
                    self._hand_over(waiter, admission.ticket, admission)
                    continue
                now = self._clock.monotonic()
                earliest = self._refused(admission, waiter.lane, gated, now)
                self._expire(earliest, admission, now)
                if self._dirty or self._head() is None:
                    continue
                # Gated: the last answer pokes us, or a release lowers the count below the
                # gate (a call that never answers must not stall the rest); otherwise the
                # reserve may lapse first.
                delay = admission.wait if gated else earliest - now
                if self._deadlines:
                    delay = min(delay, self._deadlines[0][0] - now)
                await self._pause(now, delay)
        finally:
            self._deadlines.clear()
            if self._timer is not None:
                self._timer.cancel()  # nobody left to wake
                self._timer = None
            if self._task is asyncio.current_task():
                self._task = None

    async def _ask(self, limits: tuple[int, ...]) -> Admission:
        """The ledger's admission, or :class:`Overdue` when it has not answered by the
        nearest deadline of a waiter (see :meth:`_bound`)."""
        if self._memory is not None:  # it never suspends
            return await self._ledger.admit(limits)
        self._expire(_NEVER, None, self._clock.monotonic())  # prune the heap's settled ones
        nearest = self._deadlines[0][0] if self._deadlines else None
        return await within(self._clock, self._bound(nearest), self._ledger.admit(limits))

    def _bound(self, deadline: float | None) -> float | None:
        """How long to wait for a ledger round trip asked now for a caller due at
        ``deadline``: until then, but at least the grace."""
        if deadline is None:
            return None
        return max(deadline, self._clock.monotonic() + self._grace)

    def _expire_silent(self, silence: Overdue) -> None:
        """The ledger did not answer by the nearest deadline: refuse every waiter due."""
        now = self._clock.monotonic()
        heap = self._deadlines
        logger.warning("throttle ledger %r did not answer by a caller's deadline", self._ledger)
        while heap and (heap[0][0] <= now or heap[0][2].fut.done()):
            _, _, waiter = heapq.heappop(heap)
            if not waiter.fut.done():
                self._uncount(waiter)
                late = DeadlineExceeded(waiter.deadline, now - waiter.since)
                late.__cause__ = silence
                waiter.fut.set_exception(late)

    def _hand_over(self, waiter: _Waiter, ticket: int, admission: Admission) -> None:
        queue = self._queues[waiter.lane]
        if queue and queue[0] is waiter:
            queue.popleft()
        if waiter.fut.done():  # cancelled or expired while the ledger was asked
            self._drop(ticket, waiter.lane)
            return
        self._uncount(waiter)
        waiter.fut.set_result(ticket)
        self._admitted(admission)  # after: an event hook may cancel the waiter's task

    def _expire(self, horizon: float, admission: Admission | None, now: float) -> None:
        """Refuse every waiter whose deadline comes before the earliest possible admission
        (or has come: ``horizon`` may be ``now`` when only our own answers are awaited).
        Without an ``admission``, only drop the settled ones."""
        heap = self._deadlines
        while heap and (heap[0][2].fut.done() or (admission is not None and (
                heap[0][0] < horizon or heap[0][0] <= now))):
            _, _, waiter = heapq.heappop(heap)
            if admission is not None and not waiter.fut.done():
                self._uncount(waiter)
                waiter.fut.set_exception(self._exhausted(admission, now, waiter.since))

    async def _pause(self, now: float, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = wakeup = loop.create_future()
        self._wake_at = target = now + delay
        # A timer that rings no later than needed is kept (an early ring only makes the
        # dispatcher look again): one-at-a-time admissions would otherwise make one each.
        timer = self._timer
        if timer is None or timer.done() or self._timer_at > target:
            if timer is not None:
                timer.cancel()
            self._timer_at = target
            self._timer = loop.create_task(self._ring(max(0.0, delay)))
        try:
            await wakeup
        finally:
            self._wakeup, self._wake_at = None, _INF

    async def _ring(self, delay: float) -> None:
        await self._clock.sleep(delay)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _exhausted(self, admission: Admission, now: float, since: float) -> QuotaExhausted:
        period = self._windows[admission.window].name
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
            budget = self._reserved[longest]
            self._pacer = (loop, AsyncLimiter(1, self._windows[longest].length / budget))
        return self._pacer[1]

    # -- completion and learning ------------------------------------------------------------

    async def _finish(
        self, ticket: int, lane: Lane, learned: Sequence[tuple[int, int]], held: Sequence[int],
        deadline: float | None = None,
    ) -> None:
        task = self._release(ticket, lane, learned, held)
        # Shielded: the release must land even if the caller is being cancelled, or gives up
        # on a silent ledger at its deadline. A failure is logged by _settled; the entry then
        # counts until its lease expires (the safe side).
        if task is not None:
            with contextlib.suppress(Exception):
                await within(self._clock, self._bound(deadline), asyncio.shield(task))

    def _release(
        self, ticket: int, lane: Lane, learned: Sequence[tuple[int, int]], held: Sequence[int]
    ) -> asyncio.Task[None] | None:
        """Release now: at once in memory, else the ledger's task."""
        if self._memory is not None:
            self._memory.release_now(ticket, learned, held)
            self._landed(lane, sent=True)
            return None
        task = self._spawn(self._ledger.release(ticket, learned, held))
        # Landed only once the release is in: it carries the tags and any 113 hold, and the
        # gate it may open must not let an admission reach the ledger ahead of it.
        task.add_done_callback(lambda _: self._landed(lane, sent=True))
        return task

    def _ended(self, ticket: int) -> bool:
        """A slot exits: False if its call is no longer this loop's to release."""
        return self._tickets.pop(ticket, None) is not None

    def _shortest(self) -> float:
        return min(w.length for w in self._windows)

    def _finish_late(self, ticket: int, lane: Lane) -> None:
        """Release, a shortest window's length from now, a call whose answer was never read."""
        self._release_at(ticket, lane, self._clock.monotonic() + self._shortest())

    def _release_at(self, ticket: int, lane: Lane, due: float) -> None:
        task = asyncio.get_running_loop().create_task(self._release_late(due))
        self._late[task] = (ticket, lane, due)

    async def _release_late(self, due: float) -> None:
        await self._clock.sleep(due - self._clock.monotonic())
        entry = self._late.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        if entry is not None:  # else flushed meanwhile, or its loop was left
            await self._finish(*entry[:2], (), ())

    def _flush_late(self) -> list[asyncio.Task[None]]:
        """Release the late calls now: no task may outlive the scheduler's last user."""
        late, self._late = self._late, {}
        for task, (ticket, lane, _) in late.items():
            task.cancel()
            self._release(ticket, lane, (), ())
        return list(late)

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
        learned = [(i, t.count) for t in tags if (i := self._window_of(t)) is not None]
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
            self._emit("limited", w.name, f"the server refused a call (113); "
                                            f"holding every caller for {w.length:g}s", w.length)
        return learned, held

    def _window_of(self, tag: ThrottleTag) -> int | None:
        """The window a tag speaks of: the one with its limit, else the one of its name."""
        same = self._by_limit.get(tag.limit, [])
        if len(same) == 1:
            return same[0]
        named = self._index.get(tag.period)
        if named is not None and (named in same or not same):
            if not same:
                self._once(tag, f"matched by name only: the server's limit is {tag.limit}, "
                                f"this window's {self._windows[named].limit}")
            return named
        self._once(tag, "matches no window (by limit or name); ignored")
        return None

    def _once(self, tag: ThrottleTag, detail: str) -> None:
        if (tag.period, tag.limit) not in self._unmatched:
            self._unmatched.add((tag.period, tag.limit))
            logger.warning("throttle tag %r (limit %d) %s", tag.period, tag.limit, detail)

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
            self._emit("warn", w.name, f"{count} of {w.limit} calls (warn at {w.warn})")

    def _blocked(self, admission: Admission) -> None:
        armed = self._armed[admission.window]
        if armed[1]:
            armed[1] = False
            w = self._windows[admission.window]
            self._emit("hold", w.name, f"window full; callers held {admission.wait:.3f}s",
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
        return [self._window_quota(i, view, held_until) for i in range(len(self._windows))]

    def _window_quota(self, i: int, view: View, held_until: float | None) -> QuotaWindow:
        w = self._windows[i]
        free_at = view.at + max(view.frees[i], view.held)
        free_in, free_wall = readable(self._clock, max(free_at, self._clock.monotonic()))
        return QuotaWindow(
            period=w.name,
            length=w.length,
            limit=w.limit,
            used=view.counts[i],
            free_at=free_at,
            held_until=held_until if i == view.held_window else None,
            free_in=free_in,
            free_wall=free_wall,
        )


def _margin(window: Window, burst_margin: int | None) -> int:
    """Places of ``window`` spent one answer at a time (see the module rules)."""
    margin = 2 * (window.limit - window.warn) if burst_margin is None else burst_margin
    return max(0, min(window.limit, margin))


def _show(windows: Sequence[Window]) -> str:
    return "[" + ", ".join(f"{w.name} {w.limit}/{w.length:g}s" for w in windows) + "]"
