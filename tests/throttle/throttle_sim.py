"""Test helpers: drive a Scheduler on a FakeClock, an independent greedy reference, and the
window checks that say whether any server, sliding or fixed, could have refused a call.

Times in these tests are multiples of 1/8 s, so every sum is exact and the scheduler's
admission times can be compared with the reference's for equality.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agupshup.clock import FakeClock
from agupshup.errors import QuotaExhausted
from agupshup.throttle import Ledger, Scheduler, Window
from agupshup.throttle._ledger import release_margin

RANK = {"interactive": 0, "bulk": 1}


@dataclass(frozen=True)
class Call:
    arrival: float
    latency: float
    lane: str = "bulk"
    max_wait: float | None = None


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
    wakeup = sched._wakeup
    return not sched._pending and (sched._task is None or (wakeup is not None
                                                            and not wakeup.done()))


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


async def drive(clock: FakeClock, tasks: Sequence[asyncio.Task[None]], steps: int = 20_000) -> None:
    """Advance the clock from one sleeper's deadline to the next until every task is done."""
    for _ in range(steps):
        await settle()
        if all(t.done() for t in tasks):
            return
        deadline = next_deadline(clock)
        assert deadline is not None, "deadlock: callers wait, but nothing sleeps on the clock"
        await clock.advance(max(0.0, deadline - clock.monotonic()))
    raise AssertionError("the simulation did not finish")


async def simulate(sched: Scheduler, clock: FakeClock, calls: Sequence[Call]) -> list[Outcome]:
    """Run each call as a task: arrive, wait for a slot, stay in flight ``latency`` seconds."""
    outcomes: list[Outcome] = [None] * len(calls)

    async def one(i: int, call: Call) -> None:
        await clock.sleep(call.arrival - clock.monotonic())
        try:
            async with sched.slot(call.lane, max_wait=call.max_wait):  # type: ignore[arg-type]
                dispatched = clock.monotonic()
                await clock.sleep(call.latency)
            outcomes[i] = (dispatched, clock.monotonic())
        except QuotaExhausted:
            outcomes[i] = None

    tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(calls)]
    await drive(clock, tasks)
    for t in tasks:
        t.result()
    return outcomes


def reference(calls: Sequence[Call], windows: Sequence[Window], reserve: float) -> list[Outcome]:
    """The greedy schedule, computed from the rule alone (quadratic, obviously correct).

    A call *fits* at ``now`` when every window holds fewer than its lane's limit of admitted
    calls with ``completion + length + release_margin(length) > now`` (the margin is 1/1024 s
    here, so times stay exact); a bulk call's limit is lowered by the reserve
    while the window holds an interactive call. Calls arrive one by one, in order of (arrival,
    index): one that finds nobody of its lane or a higher one waiting, and fits, goes at once;
    the others wait. After the arrivals of a moment, and at each release time, waiting calls go
    in order (interactive first, then by arrival) while the head fits. A call not admitted by
    ``arrival + max_wait`` is refused.
    """
    kept = [math.floor(w.limit * reserve + 1e-9) for w in windows]
    done: dict[int, tuple[float, float]] = {}
    arrived: list[int] = []

    held = [w.length + release_margin(w.length) for w in windows]

    def limit(i: int, k: int, now: float) -> int:
        """Bulk leaves the reserve free while an interactive call is in window ``k``."""
        length = windows[k].length
        reserving = calls[i].lane == "bulk" and any(
            calls[j].lane == "interactive" and c + length > now for j, (_, c) in done.items()
        )
        return windows[k].limit - (kept[k] if reserving else 0)

    def fits(i: int, now: float) -> bool:
        return all(
            sum(1 for _, c in done.values() if c + held[k] > now) < limit(i, k, now)
            for k in range(len(windows))
        )

    def waiting(now: float) -> list[int]:
        return [i for i in arrived if i not in done
                and (calls[i].max_wait is None or now <= calls[i].arrival + calls[i].max_wait)]

    def admit(i: int, now: float) -> None:
        done[i] = (now, now + calls[i].latency)
        # A release (with its margin), and the moment the call's reserve lapses (without).
        ends = [now + calls[i].latency + h for h in held]
        ends += [now + calls[i].latency + w.length for w in windows]
        events.extend((end, 1, -1) for end in ends)
        events.sort()

    # (time, 0, index) is an arrival; (time, 1, -1) a release, after the arrivals of its time.
    events = sorted((c.arrival, 0, i) for i, c in enumerate(calls))
    while events:
        now, _, index = events.pop(0)
        if index >= 0:
            ahead = [i for i in waiting(now) if RANK[calls[i].lane] <= RANK[calls[index].lane]]
            arrived.append(index)
            if not ahead and fits(index, now):
                admit(index, now)
            if events and events[0][:2] == (now, 0):
                continue  # more arrivals at this moment come first
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
