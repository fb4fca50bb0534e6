"""The follower's own windows: the budget every call it makes takes a place in.

* **Budget.** Every call the follower makes (discovery, probes, polls, walks, catch-ups,
  resamples) first takes a place in the follower's own windows: ``share`` of each throttle
  window's limit. So it never spends more than its share of any window, whatever the traffic;
  a flood costs delay, never the user's other calls. Followers of one client share one set of
  windows.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections import deque

from agupshup.aggregate._calls import FollowCalls
from agupshup.clock import Clock
from agupshup.planner import Budget
from agupshup.throttle import Window


class _Spend:
    """The follower's own windows: ``share`` of each throttle window, over its own calls."""

    def __init__(self, budget: Budget, clock: Clock) -> None:
        self.clock = clock
        # A client without a throttle (windows None and none reported) has no windows to
        # share: nothing to hold back.
        self.windows = [(w.length, max(1, math.floor(w.limit * budget.share)))
                        for w in budget.windows or ()]
        self.calls: deque[float] = deque()
        self.longest = max((length for length, _ in self.windows), default=0.0)

    def wait(self) -> float:
        """Seconds until every window has a place."""
        now = self.clock.monotonic()
        while self.calls and self.calls[0] <= now - self.longest:
            self.calls.popleft()
        wait = 0.0
        for length, cap in self.windows:
            if len(self.calls) >= cap:  # the cap-th call back frees the window's next place
                wait = max(wait, self.calls[-cap] + length - now)
        return wait

    def sustainable(self, shortest: float) -> float:
        """The highest steady rate (calls a second) from now on that never meets a full
        window at least ``shortest`` seconds long, given the calls each still holds: a burst
        (probes, discovery, a flood's pages) lowers it until the burst rolls out of the
        window. (A shorter window only holds a call for seconds: the wait does.) Infinite
        when there is no such window."""
        now = self.clock.monotonic()
        rate = math.inf
        for length, cap in self.windows:
            if length < shortest:
                continue
            inside = [t for t in self.calls if t > now - length]
            rate = min(rate, cap / length)
            for i, t in enumerate(inside):  # by t + length, i of them have rolled out
                rate = min(rate, max(cap - len(inside) + i, 0) / max(t + length - now, 1e-9))
        return rate

    async def take(self) -> None:
        while (wait := self.wait()) > 0:
            await self.clock.sleep(wait)
        self.calls.append(self.clock.monotonic())


#: Each client's follower windows: followers of one client (a restarted one included) share
#: one budget, so that together they never take more than their share.
_SPENDS: weakref.WeakKeyDictionary[object, dict[object, _Spend]] = weakref.WeakKeyDictionary()
def _spend_of(client: FollowCalls, budget: Budget) -> _Spend:
    spends = _SPENDS.setdefault(client, {})
    key = (budget.share, tuple((w.length, w.limit) for w in budget.windows or ()))
    spend = spends.get(key)
    if spend is None:
        spend = spends[key] = _Spend(budget, client.clock)
    return spend

def _windows_of(budget: Budget, client: FollowCalls) -> Budget:
    """``budget`` with the client's windows when it names none (an empty tuple: the client has
    no throttle, and the plan is made for GupShup's limits)."""
    if budget.windows is not None:
        return budget
    windows = tuple(Window(w.period, w.limit, w.length, w.limit) for w in client.quota())
    return dataclasses.replace(budget, windows=windows)
