"""Test helpers: drive a Scheduler on a FakeClock, an independent greedy reference, and the
window checks that say whether any server, sliding or fixed, could have refused a call.

Times in these tests are multiples of 1/8 s, so every sum is exact and the scheduler's
admission times can be compared with the reference's for equality.

A :class:`Server` stands for GupShup's side: sliding windows that count our calls when they
are dispatched and other programs' calls on the same IP (``foreign``), refuse with 113 what
does not fit, and report their counts in throttle tags. Both the simulation and the reference
ask their own one, so the reference learns from tags and 113s by the ledger's rule alone.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from agupshup.clock import FakeClock
from agupshup.errors import QuotaExhausted
from agupshup.models import ThrottleTag
from agupshup.throttle import Ledger, Scheduler, Window
from agupshup.throttle._ledger import release_margin

RANK = {"interactive": 0, "bulk": 1}


@dataclass(frozen=True)
class Call:
    arrival: float
    latency: float
    lane: str = "bulk"
    max_wait: float | None = None
    #: Cancelled this long after dispatch (before ``latency``): its answer is never read.
    cancel_after: float | None = None
    #: Its answer carries the server's throttle tags.
    tagged: bool = False


class Server:
    """GupShup's throttle as the server applies it: sliding windows over the calls it counted
    (ours at dispatch, and ``foreign`` ones at their times), 113 for a call that does not fit
    (not counted), and each window's count in the answer's tags."""

    def __init__(self, windows: Sequence[Window], foreign: Sequence[float] = ()) -> None:
        self.windows = list(windows)
        self.foreign = sorted(foreign)
        self.counted: list[float] = []
        self.refused = 0

    def _counts(self, now: float) -> list[int]:
        return [sum(1 for t in self.counted if now - w.length < t <= now) for w in self.windows]

    def _take(self, now: float) -> tuple[bool, list[int]]:
        counts = self._counts(now)
        if any(c >= w.limit for c, w in zip(counts, self.windows, strict=True)):
            return False, counts
        self.counted.append(now)
        return True, [c + 1 for c in counts]

    def see(self, now: float) -> tuple[bool, list[int]]:
        """One call of ours at ``now``: (counted, each window's count); other programs' calls
        up to ``now`` come first."""
        while self.foreign and self.foreign[0] <= now:
            self._take(self.foreign.pop(0))
        counted, counts = self._take(now)
        self.refused += not counted
        return counted, counts

    def tags(self, counted: bool, counts: Sequence[int]) -> list[tuple[int, int]]:
        """(window, count) the answer reports: all windows, or on a 113 the full ones."""
        return [(k, c) for k, (c, w) in enumerate(zip(counts, self.windows, strict=True))
                if counted or c >= w.limit]


#: Makes ledgers that share one storage (see the ``ledger_factory`` fixture).
LedgerFactory = Callable[[], Ledger]

#: (dispatch, completion) of an admitted call, None for one refused with QuotaExhausted.
Outcome = tuple[float, float] | None


async def settle(rounds: int = 12) -> None:
    """Let every runnable task run until it sleeps again."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def _idle(sched: Scheduler) -> bool:
    """No ledger update under way, and the dispatcher (if any) parked on its wake-up."""
    return not sched._flights.pending and sched._dispatcher.parked


async def quiet(sched: Scheduler, tries: int = 5000) -> None:
    """Let every task run until it waits on the fake clock or for admission, including the
    ledger's round trips (a thread for SQLite, a socket for Redis): the fake clock must not
    move while one is under way. Waits for I/O, asserts nothing about time."""
    for _ in range(tries):
        await settle()
        if _idle(sched):
            await settle()
            if _idle(sched):
                return
        await asyncio.sleep(0.001)  # the ledger's thread or socket needs the loop to wait
    raise AssertionError("the scheduler did not settle")


def next_deadline(clock: FakeClock) -> float | None:
    live = [deadline for deadline, _, fut in clock._sleepers if not fut.done()]
    return min(live) if live else None


async def drive(
    clock: FakeClock, tasks: Sequence[asyncio.Task[None]], steps: int = 20_000,
    calm: Callable[[], Awaitable[None]] = settle,
) -> None:
    """Advance the clock from one sleeper's deadline to the next until every task is done
    (``calm``: how to let everything run first; a shared ledger needs :func:`quiet`)."""
    for _ in range(steps):
        await calm()
        if all(t.done() for t in tasks):
            return
        deadline = next_deadline(clock)
        assert deadline is not None, "deadlock: callers wait, but nothing sleeps on the clock"
        await clock.advance(max(0.0, deadline - clock.monotonic()))
    raise AssertionError("the simulation did not finish")


async def simulate(
    sched: Scheduler, clock: FakeClock, calls: Sequence[Call], server: Server | None = None,
    *, shared: bool = False,
) -> list[Outcome]:
    """Run each call as a task: arrive, wait for a slot, stay in flight ``latency`` seconds
    (or be cancelled ``cancel_after`` seconds in), learn from ``server``'s answer."""
    outcomes: list[Outcome] = [None] * len(calls)
    server = server or Server(sched.windows)

    async def one(i: int, call: Call) -> None:
        await clock.sleep(call.arrival - clock.monotonic())
        try:
            async with sched.slot(call.lane, max_wait=call.max_wait) as slot:  # type: ignore[arg-type]
                dispatched = clock.monotonic()
                counted, counts = server.see(dispatched)
                # A zero sleep on the fake clock does not yield: without this, a call of no
                # latency would read its answer before the other arrivals of its moment.
                await asyncio.sleep(0)
                if call.cancel_after is not None:
                    await clock.sleep(call.cancel_after)
                    outcomes[i] = (dispatched, clock.monotonic())
                    raise asyncio.CancelledError  # as a cancelled caller: no answer read
                await clock.sleep(call.latency)
                slot.learn(_tags(server, counted, counts, call), limited=not counted)
            outcomes[i] = (dispatched, clock.monotonic())
        except QuotaExhausted:
            outcomes[i] = None
        except asyncio.CancelledError:
            assert call.cancel_after is not None

    tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(calls)]
    await drive(clock, tasks, calm=(lambda: quiet(sched)) if shared else settle)
    for t in tasks:
        t.result()
    return outcomes


def _tags(server: Server, counted: bool, counts: Sequence[int], call: Call) -> list[ThrottleTag]:
    return server_tags(server, counted, counts) if call.tagged else []


def server_tags(server: Server, counted: bool, counts: Sequence[int]) -> list[ThrottleTag]:
    """The throttle tags of an answer, as the server writes them (see :meth:`Server.tags`)."""
    return [ThrottleTag(period=server.windows[k].name, count=c, warn=server.windows[k].warn,
                        limit=server.windows[k].limit) for k, c in server.tags(counted, counts)]


def released_at(call: Call, dispatched: float, windows: Sequence[Window]) -> float:
    """When a call leaves the ledger's flight: its completion, or for one cancelled in
    flight, a shortest window after it was given up (the server may count it late)."""
    if call.cancel_after is None:
        return dispatched + call.latency
    return dispatched + call.cancel_after + min(w.length for w in windows)


def lane_limit(
    window: Window, reserve: float, lane: str, interactive_ends: Iterable[float], now: float
) -> int:
    """The count a call of ``lane`` may fill ``window`` to at ``now``: bulk leaves the reserve
    free while an interactive call is in the window (its release, ``end``, plus the window's
    length after ``now``; one still in flight ends after ``now``)."""
    reserving = lane == "bulk" and any(end + window.length > now for end in interactive_ends)
    return window.limit - (math.floor(window.limit * reserve + 1e-9) if reserving else 0)


def held_by_113(windows: Sequence[Window], told: Sequence[tuple[int, int]]) -> list[int]:
    """The windows a 113 holds: those its tags name, or the shortest."""
    named = sorted({k for k, _ in told})
    return named or [min(range(len(windows)), key=lambda k: windows[k].length)]


def reference(
    calls: Sequence[Call], windows: Sequence[Window], reserve: float,
    foreign: Sequence[float] = (),
) -> list[Outcome]:
    """The greedy schedule, computed from the rules alone (quadratic, obviously correct).

    A call *fits* at ``now`` when no 113 hold lasts, and every window holds fewer than its
    lane's limit of entries with ``release + length + release_margin(length) > now`` (the
    margin is 1/1024 s here, so times stay exact): our admitted calls (``release``: see
    :func:`released_at`) and the phantoms learned. A bulk call's limit is lowered by the
    reserve while the window holds an interactive call. Calls arrive one by one, in order of
    (arrival, index): one that finds nobody of its lane or a higher one waiting, and fits,
    goes at once; the others wait. Then the calls released at that moment learn from their
    answer: a window's count ``C`` above the entries the server could have counted (those at
    the call's dispatch and added since) adds the difference as phantoms, released a length
    later, in that window and every longer one; a 113 holds everyone for the length of the
    windows it named (or the shortest). Then waiting calls go in order (interactive first,
    then by arrival) while the head fits. A call not admitted by ``arrival + max_wait`` is
    refused.
    """
    n = len(windows)
    held = [w.length + release_margin(w.length) for w in windows]
    server = Server(windows, foreign)
    done: dict[int, tuple[float, float]] = {}
    release: dict[int, float] = {}
    answers: dict[int, tuple[bool, list[int]]] = {}
    marks: dict[int, tuple[list[int], list[int]]] = {}
    phantoms: list[list[float]] = [[] for _ in windows]
    added = [0] * n
    hold = [-math.inf]
    arrived: list[int] = []
    admitted: list[int] = []  # in order: answers read at one moment are read in that order

    def limit(i: int, k: int, now: float) -> int:
        ends = [r for j, r in release.items() if calls[j].lane == "interactive"]
        return lane_limit(windows[k], reserve, calls[i].lane, ends, now)

    def count(k: int, now: float) -> int:
        return (sum(1 for r in release.values() if r + held[k] > now)
                + sum(1 for p in phantoms[k] if p > now))

    def fits(i: int, now: float) -> bool:
        return now >= hold[0] and all(count(k, now) < limit(i, k, now) for k in range(n))

    def waiting(now: float) -> list[int]:
        return [i for i in arrived if i not in done
                and (calls[i].max_wait is None or now <= calls[i].arrival + calls[i].max_wait)]

    def admit(i: int, now: float) -> None:
        call = calls[i]
        release[i] = r = released_at(call, now, windows)
        done[i] = (now, now + call.latency if call.cancel_after is None
                   else now + call.cancel_after)
        answers[i] = server.see(now)
        added[:] = [a + 1 for a in added]
        marks[i] = ([count(k, now) for k in range(n)], list(added))
        # The release (with its margin), when the reserve lapses (without), and the answer.
        later(r, 1, len(admitted))
        admitted.append(i)
        for k in range(n):
            later(r + held[k], 2, -1)
            later(r + windows[k].length, 2, -1)

    def learn(i: int, now: float) -> None:
        counted, counts = answers[i]
        if calls[i].cancel_after is not None:
            return  # its answer was never read
        told = server.tags(counted, counts) if calls[i].tagged else []
        for j, c in implied(told):
            ours = marks[i][0][j] + added[j] - marks[i][1][j]
            if c > ours:
                phantoms[j] += [now + held[j]] * (c - ours)
                added[j] += c - ours
                later(now + held[j], 2, -1)
        if not counted:
            hold[0] = max(hold[0], *(now + held[k] for k in held_by_113(windows, told)))
            later(hold[0], 2, -1)

    def implied(told: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """A count bounds every window at least as long."""
        best: dict[int, int] = {}
        for k, c in told:
            for j in range(n):
                if windows[j].length >= windows[k].length and c > best.get(j, 0):
                    best[j] = c
        return sorted(best.items())

    def later(time: float, kind: int, index: int) -> None:
        events.append((time, kind, index))
        events.sort()

    # At one moment: arrivals (kind 0) first, then answers read (1), then other releases (2).
    events = sorted((c.arrival, 0, i) for i, c in enumerate(calls))
    while events:
        now, kind, index = events.pop(0)
        if kind == 0:
            ahead = [i for i in waiting(now) if RANK[calls[i].lane] <= RANK[calls[index].lane]]
            arrived.append(index)
            if not ahead and fits(index, now):
                admit(index, now)
        elif kind == 1:
            learn(admitted[index], now)
        if events and events[0][0] == now and events[0][1] <= 1:
            continue  # more arrivals or answers at this moment come first
        while queue := waiting(now):
            head = min(queue, key=lambda i: (RANK[calls[i].lane], calls[i].arrival, i))
            if not fits(head, now):
                break
            admit(head, now)
    return [done.get(i) for i in range(len(calls))]


def worst_case_count(admitted: Sequence[tuple[float, float]], length: float) -> int:
    """The most calls any server window of ``length`` could hold, wherever in
    [dispatch, completion] the server saw each call, for windows open at either end."""
    best = 0
    for d, c in admitted:
        # Windows (x - length, x]: a call can be in one iff x is in [d_j, c_j + length).
        best = max(best, sum(1 for dj, cj in admitted if dj <= d < cj + length))
        # Windows [x, x + length): iff x + length is in (d_j, c_j + length].
        best = max(best, sum(1 for dj, cj in admitted if dj < c + length <= cj + length))
    return best


def sliding_max(times: Sequence[float], length: float) -> int:
    """The most of ``times`` in any window (t - length, t]."""
    return max((sum(1 for s in times if t - length < s <= t) for t in times), default=0)


def fixed_max(times: Sequence[float], length: float, offset: float) -> int:
    """The most of ``times`` in one aligned window [k*length - offset, (k+1)*length - offset)."""
    buckets: dict[int, int] = {}
    for s in times:
        k = math.floor((s + offset) / length)
        buckets[k] = buckets.get(k, 0) + 1
    return max(buckets.values(), default=0)
