"""The dispatcher: callers waiting for admission, in order, and the one task that serves them.

Rules this module enforces:

* Order: FIFO within a lane, ``interactive`` before ``bulk``. A caller that finds nobody of
  its lane or a higher one waiting, and room, goes at once without the dispatcher (the memory
  ledger's fast path).
* ``max_wait`` is settled before sending: a caller is refused with :class:`QuotaExhausted` as
  soon as the earliest possible admission lies beyond its deadline (at its deadline, while
  only the answer gate holds it), never after admission.
* A shared ledger that stops answering holds nobody past a deadline: each admission round trip
  is bounded by the nearest waiter's deadline, but given at least the grace
  (``_flights.LEDGER_GRACE``). Past that, waiters due are refused with
  :class:`DeadlineExceeded` and the ledger is asked again for the others; an admission the
  ledger made but never answered counts until its lease runs out (the safe side).
* A caller cancelled while waiting gives up its place; if it had just been admitted, its entry
  is removed again (it was never sent).
* One dispatcher task serves the queue. It sleeps on the injected clock until the ledger's next
  possible admission or the nearest deadline, and is woken early only when the order of the
  queue changes, the gate opens, or an interactive call lands (its reserve's lapse is known
  only then). Nothing polls. If the ledger fails, every waiter gets its error.
* Callers still waiting in an event loop that has gone can never be served, so the first call
  from a new loop forgets them; their calls are taken over by the new loop (``_flights``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque

from agupshup.clock import Clock, Overdue, within
from agupshup.errors import DeadlineExceeded, LedgerError, QuotaExhausted

from ._flights import Flights
from ._ledger import Admission, Ledger, MemoryLedger
from ._policy import LANES, AdmissionPolicy
from ._report import Alerts, label, logger
from ._windows import Lane, Window

__all__ = ["Dispatcher"]

_INF = float("inf")
_NEVER = -_INF


class _Waiter:
    __slots__ = ("counted", "deadline", "fut", "lane", "since")

    def __init__(self, fut: asyncio.Future[int], lane: Lane, since: float, deadline: float):
        self.fut = fut
        self.lane = lane
        self.since = since
        self.deadline = deadline
        #: Still in ``Dispatcher._live``: whoever settles the waiter first takes it out, once.
        self.counted = True


class Dispatcher:
    """Admits callers in order: at once when nobody is ahead, else through one task."""

    __slots__ = ("_alerts", "_clock", "_deadlines", "_dirty", "_flights", "_ledger", "_live",
                 "_loop", "_memory", "_policy", "_queues", "_seq", "_task", "_timer",
                 "_timer_at", "_wake_at", "_wakeup", "_windows")

    def __init__(
        self, windows: tuple[Window, ...], clock: Clock, ledger: Ledger,
        policy: AdmissionPolicy, alerts: Alerts, flights: Flights,
    ) -> None:
        self._windows = windows
        self._clock = clock
        self._ledger = ledger
        self._memory = ledger if isinstance(ledger, MemoryLedger) and ledger.inline else None
        self._policy = policy
        self._alerts = alerts
        self._flights = flights
        self._queues: dict[Lane, deque[_Waiter]] = {lane: deque() for lane in LANES}
        #: Waiters not yet settled, per lane.
        self._live: dict[Lane, int] = dict.fromkeys(LANES, 0)
        self._deadlines: list[tuple[float, int, _Waiter]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = _INF
        self._wakeup: asyncio.Future[None] | None = None
        self._wake_at = _INF
        #: Poked while not asleep: look again before sleeping.
        self._dirty = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def waiting(self) -> int:
        return sum(self._live.values())

    @property
    def parked(self) -> bool:
        """No dispatcher task, or it sleeps until a wake-up."""
        return self._task is None or (self._wakeup is not None and not self._wakeup.done())

    def follow_loop(self) -> None:
        """Serve callers of the running loop; those of an earlier loop are gone, but not their
        calls: the ledger still counts them, so their releases are made here."""
        if self._loop is (loop := asyncio.get_running_loop()):
            return
        self._loop = loop
        for queue in self._queues.values():
            for waiter in queue:
                waiter.counted = False  # gone with their loop: never counted again
        self._queues = {lane: deque() for lane in LANES}
        self._live = dict.fromkeys(LANES, 0)
        self._deadlines.clear()
        self._task = self._timer = self._wakeup = None
        self._wake_at = _INF
        self._flights.adopt()

    async def admit(self, lane: Lane, since: float, max_wait: float | None) -> int:
        """A ticket for a caller of ``lane`` who came at ``since``; refused past ``max_wait``."""
        deadline = _INF if max_wait is None else since + max_wait
        if self._memory is not None and self._nobody_ahead(lane):
            now = self._clock.monotonic()
            limits, gated = self._policy.limits(lane, now)
            admission = self._memory.admit_now(limits)
            if admission.ticket is not None:
                self._flights.took(lane, admission.ticket)
                self._alerts.counted(admission.counts)
                return admission.ticket
            if self._refused(admission, lane, gated, now) > deadline:
                raise self._exhausted(admission, now, since)
        return await self._wait(lane, since, deadline)

    def poke(self) -> None:
        """Something changed: the dispatcher looks again now (or before it next sleeps)."""
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        else:
            self._dirty = True

    def fail_waiters(self, exc: BaseException) -> None:
        for queue in self._queues.values():
            for waiter in queue:
                if not waiter.fut.done():
                    waiter.fut.set_exception(exc)
                self._uncount(waiter)  # a cancelled one's task may not have run yet
            queue.clear()

    async def stop(self) -> None:
        """End the dispatcher task and its timer (the waiters were failed first)."""
        for task in (self._task, self._timer):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # -- waiting ----------------------------------------------------------------------------

    def _refused(self, admission: Admission, lane: Lane, gated: bool, now: float) -> float:
        """Report a refusal; the earliest moment admission may become possible."""
        refusal = self._policy.refused(lane, admission.wait, admission.counts, gated, now)
        if refusal.window_full:
            self._alerts.held(admission.window, admission.wait)
        return refusal.earliest

    def _exhausted(self, admission: Admission, now: float, since: float) -> QuotaExhausted:
        window = label(self._windows[admission.window])
        return QuotaExhausted(window, now + admission.wait, now - since)

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
            self.poke()

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiting caller was cancelled: give up its place, or its fresh ticket."""
        fut = waiter.fut
        if fut.cancelled():
            self._uncount(waiter)
        elif fut.exception() is None:
            self._flights.drop(fut.result(), waiter.lane)
        self.poke()

    def _uncount(self, waiter: _Waiter) -> None:
        """``waiter`` no longer waits: count it out of ``_live``, unless that was done."""
        if waiter.counted:
            waiter.counted = False
            self._live[waiter.lane] -= 1

    def _head(self) -> _Waiter | None:
        for lane in LANES:
            queue = self._queues[lane]
            while queue and queue[0].fut.done():
                queue.popleft()
            if queue:
                return queue[0]
        return None

    # -- the task ---------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        try:
            while (waiter := self._head()) is not None:
                self._dirty = False
                limits, gated = self._policy.limits(waiter.lane, self._clock.monotonic())
                try:
                    admission = await self._ask(limits)
                except Overdue as silence:
                    self._expire_silent(silence)
                    continue
                except Exception as exc:
                    self._fail_ledger(exc)
                    return
                if admission.ticket is not None:
                    self._flights.took(waiter.lane, admission.ticket)
                    self._hand_over(waiter, admission.ticket, admission)
                    continue
                await self._hold(waiter, admission, gated)
        finally:
            self._deadlines.clear()
            if self._timer is not None:
                self._timer.cancel()  # nobody left to wake
                self._timer = None
            if self._task is asyncio.current_task():
                self._task = None

    async def _hold(self, waiter: _Waiter, admission: Admission, gated: bool) -> None:
        """The head was refused: refuse whoever cannot wait that long, then sleep."""
        now = self._clock.monotonic()
        earliest = self._refused(admission, waiter.lane, gated, now)
        self._expire(earliest, admission, now)
        if self._dirty or self._head() is None:
            return
        # Gated: the last answer pokes us, or a release lowers the count below the gate (a
        # call that never answers must not stall the rest); otherwise the reserve may lapse
        # first.
        delay = admission.wait if gated else earliest - now
        if self._deadlines:
            delay = min(delay, self._deadlines[0][0] - now)
        await self._pause(now, delay)

    def _fail_ledger(self, exc: Exception) -> None:
        logger.error("throttle ledger failed: %r", exc)
        failure = LedgerError(f"the throttle ledger failed: {exc!r}")
        failure.__cause__ = exc
        self.fail_waiters(failure)

    async def _ask(self, limits: tuple[int, ...]) -> Admission:
        """The ledger's admission, or :class:`Overdue` when it has not answered by the
        nearest deadline of a waiter (see ``Flights.bound``)."""
        if self._memory is not None:  # it never suspends
            return await self._ledger.admit(limits)
        self._expire(_NEVER, None, self._clock.monotonic())  # prune the heap's settled ones
        nearest = self._deadlines[0][0] if self._deadlines else None
        return await within(self._clock, self._flights.bound(nearest),
                            self._ledger.admit(limits))

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
            self._flights.drop(ticket, waiter.lane)
            return
        self._uncount(waiter)
        waiter.fut.set_result(ticket)
        self._alerts.counted(admission.counts)  # after: an event hook may cancel its task

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
