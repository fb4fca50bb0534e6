"""The scheduler: who may call the server now, and who waits. It puts the parts together.

Rules this module enforces:

* Admission is the ledger's (see ``_ledger``): every window must have room, and a call keeps
  its place ``release_margin`` (about 1 ms) past ``completion + length``, since the server's
  clock may run a little slower than ours. Up to which count each lane may fill a window is
  the policy's (``_policy``: the interactive reserve, the answer gate); who goes first, and
  when waiting callers look again, the dispatcher's (``_dispatcher``); how a call's release
  lands, the flights' (``_flights``); what a server's answer teaches, the tag interpreter's
  (``_tags``); which scheduler an egress has, the registry's (``_registry``).
* A :class:`Slot` is one call: admitted on entry, released on exit with what its answer
  taught (:meth:`Slot.learn`). A slot that exits by an exception before its answer was read
  is released late (see ``_flights``); one whose event loop has gone does nothing.
* A scheduler may outlive an event loop (``Scheduler.shared`` in tests): the first call from
  a new loop takes over (see ``_dispatcher`` and ``_flights``).
* Closing refuses new calls, fails the waiting ones with :class:`Closed`, makes the late
  releases, waits for the ledger updates under way and closes the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agupshup.clock import Clock, SystemClock
from agupshup.errors import Closed
from agupshup.models import QuotaWindow, ThrottleTag

from ._dispatcher import Dispatcher
from ._flights import LEDGER_GRACE, Flights
from ._ledger import Ledger, MemoryLedger, with_margins
from ._pacing import Pacer
from ._policy import LANES, AdmissionPolicy
from ._registry import REGISTRY, Wanted
from ._report import Alerts, logger, quota_of, show
from ._tags import TagInterpreter
from ._windows import DEFAULT_WINDOWS, Lane, ThrottleEvent, Window, check_windows

__all__ = ["LEDGER_GRACE", "Scheduler", "Slot"]


class Slot:
    """One admitted call: ``async with sched.slot() as slot: ...; slot.learn(...)``."""

    __slots__ = ("_answered", "_deadline", "_held", "_learned", "_max_wait", "_sched",
                 "_ticket", "admitted_at", "lane", "waited")

    def __init__(self, sched: Scheduler, lane: Lane, max_wait: float | None) -> None:
        if lane not in LANES:
            raise ValueError(f"lane must be one of {LANES}, not {lane!r}")
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
        since = self._sched.clock.monotonic()
        if self._max_wait is not None:
            self._deadline = since + self._max_wait
        self._ticket = await self._sched._acquire(self.lane, since, self._max_wait)
        self.admitted_at = self._sched.clock.monotonic()
        self.waited = self.admitted_at - since
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._ticket is not None
        flights = self._sched._flights
        if not flights.ended(self._ticket):
            return  # a later event loop took this call over and releases it (Flights.adopt)
        if exc_info[0] is not None and not self._answered and not self._sched.closed:
            flights.finish_late(self._ticket, self.lane)
            return
        await flights.finish(self._ticket, self.lane, self._learned, self._held, self._deadline)

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

    __slots__ = ("_alerts", "_clock", "_closed", "_dispatcher", "_flights", "_ledger",
                 "_pacer", "_policy", "_tags", "_users", "_windows")

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
        self._windows = check_windows(windows)
        self._policy = AdmissionPolicy(self._windows, interactive_reserve, burst_margin)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        # Releases keep a small margin past the window (see release_margin): the server's
        # clock is not ours.
        self._ledger.bind(with_margins(self._windows), self._clock)
        self._tags = TagInterpreter(self._windows)
        self._alerts = Alerts(self._windows, on_event)
        self._pacer = Pacer(self._policy.pacing_interval(), self._clock) if pacing else None
        self._flights = Flights(self._clock, self._ledger, self._policy,
                                look_again=lambda: self._dispatcher.poke())
        self._dispatcher = Dispatcher(self._windows, self._clock, self._ledger, self._policy,
                                      self._alerts, self._flights)
        self._users = 0
        self._closed = False

    # -- public ---------------------------------------------------------------------------

    @classmethod
    def shared(
        cls,
        key: str,
        windows: Sequence[Window] | None = None,
        *,
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        interactive_reserve: float | None = None,
        pacing: bool | None = None,
        on_event: Callable[[ThrottleEvent], None] | None = None,
        default_ledger: Callable[[], Ledger | None] | None = None,
    ) -> Scheduler:
        """The process's scheduler for egress ``key`` (see ``agupshup.client.egress_key``).

        The first call's options create it (an option left out: the constructor's default);
        later calls get the same one until it is closed. An option given must match what the
        egress has, and ``clock`` (``None``: the system clock) must equal its clock, or
        :class:`~agupshup.errors.ValidationError` (a ``ValueError``) names the option that
        differs, unless no one uses it any more (see :meth:`attach`): then the new options
        replace it. ``default_ledger`` makes the ledger of a scheduler created here when
        ``ledger`` is left out (the client's per-host file); it is not called when one is
        joined.
        """
        wanted = Wanted(SystemClock() if clock is None else clock, windows, ledger,
                        interactive_reserve, pacing, on_event)

        def make() -> Scheduler:
            chosen = ledger if ledger is not None or default_ledger is None else default_ledger()
            return cls(DEFAULT_WINDOWS if windows is None else windows, clock=wanted.clock,
                       ledger=chosen, pacing=bool(pacing), on_event=on_event,
                       interactive_reserve=0.1 if interactive_reserve is None
                       else interactive_reserve)

        return REGISTRY.shared(key, wanted, make)

    def attach(self) -> Scheduler:
        """Count one more user (a Client); a shared scheduler with users is never replaced."""
        self._users += 1
        return self

    def detach(self) -> None:
        """A user is done; the scheduler (and what it counted) stays for the next one."""
        self._users = max(0, self._users - 1)
        if not self._users:
            self._flights.flush_late()

    @property
    def in_use(self) -> bool:
        """Attached users, callers waiting, or calls in flight."""
        return bool(self._users or self.waiting or self._policy.in_flight)

    @property
    def windows(self) -> tuple[Window, ...]:
        return self._windows

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def interactive_reserve(self) -> float:
        return self._policy.interactive_reserve

    @property
    def pacing(self) -> bool:
        return self._pacer is not None

    @property
    def on_event(self) -> Callable[[ThrottleEvent], None] | None:
        return self._alerts.on_event

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def slot(self, lane: Lane = "bulk", max_wait: float | None = None) -> Slot:
        """An async context manager that waits for admission (at most ``max_wait`` seconds)."""
        return Slot(self, lane, max_wait)

    def quota(self) -> list[QuotaWindow]:
        """Each window as this process last saw it (live for the memory ledger)."""
        return quota_of(self._windows, self._clock, self._ledger.view())

    async def fetch_quota(self) -> list[QuotaWindow]:
        """Each window as the ledger sees it now (a round trip for shared ledgers)."""
        return quota_of(self._windows, self._clock, await self._ledger.usage())

    @property
    def waiting(self) -> int:
        """How many callers are waiting for admission."""
        return self._dispatcher.waiting

    async def aclose(self) -> None:
        """Refuse new calls, fail waiting ones, and close the ledger."""
        if self._closed:
            return
        self._closed = True
        self._dispatcher.follow_loop()  # what ran in another loop is over
        REGISTRY.forget(self)
        self._dispatcher.fail_waiters(Closed("the scheduler was closed"))
        await self._dispatcher.stop()
        await self._flights.aclose()
        await self._ledger.aclose()

    def __repr__(self) -> str:
        return f"Scheduler({show(self._windows)}, waiting={self.waiting}, ledger={self._ledger!r})"

    # -- for Slot -------------------------------------------------------------------------

    async def _acquire(self, lane: Lane, since: float, max_wait: float | None) -> int:
        if self._closed:
            raise Closed("the scheduler is closed")
        self._dispatcher.follow_loop()
        if self._pacer is not None and lane == "bulk":
            await self._pacer.pace(since, max_wait)
        return await self._dispatcher.admit(lane, since, max_wait)

    def _interpret(
        self, tags: Sequence[ThrottleTag], limited: bool
    ) -> tuple[list[tuple[int, int]], list[int]]:
        reading = self._tags.read(tags, limited)
        for note in reading.notes:
            logger.warning("%s", note)
        for i, count in reading.warnings:
            self._alerts.warn(i, count)
        for i in reading.held:
            self._alerts.limited(i)
        return reading.learned, reading.held
