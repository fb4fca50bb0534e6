"""The follower's plan: which source covers which group, and the hand-over when that changes.

* **Hand-over.** A group that moves to another source (a new plan, a resumed cursor, a start
  from an id) brings its claim: the point up to which its messages were handed out. Its own
  stream starts there; a shared source above it leaves the difference to a *catch-up*, a walk
  of the group's own stream down to the claim (a private joined group, which only the joined
  stream shows, makes the joined stream walk down instead). So a hand-over never walks
  unfollowed traffic of a shared source.
* **Pace.** A plan is revised at most every :data:`~agupshup.aggregate._tuning.REPLAN_GAP`
  seconds; a shared source the plan left is read once every ``resample_every`` seconds, the
  only way to see that the traffic that made it too dear has passed.
"""

from __future__ import annotations

import math

from agupshup import errors as E
from agupshup.aggregate import _tuning as tuning
from agupshup.aggregate._calls import FATAL, _stamps, log
from agupshup.aggregate._core import _Core
from agupshup.aggregate._peers import fleet_budget, turn_due
from agupshup.aggregate._source import _Source
from agupshup.paging import Descent
from agupshup.planner import JOINED, PUBLIC, Channel, Plan


class _Planning(_Core):
    """Plans, hand-overs, catch-ups and resamples."""

    def _catch_up(self, group: str, claim: int) -> None:
        """``group``, now on the public stream, has messages above ``claim`` that stream
        will not show: its own stream reads them (its head once more, then down to the
        claim), and leaves."""
        if group not in self.groups or not self._mine(group):
            return
        own = self._sources.get(Channel("group", group).key)
        if own is None:
            own = self._sources[Channel("group", group).key] = _Source(
                Channel("group", group), head=claim
            )
        elif own.head is not None and claim < own.head:
            own.open_gap(claim)
        own.head = claim if own.head is None else own.head
        own.retiring, own.caught = True, False

    def _catch_up_below(self, src: _Source) -> None:
        """A shared source just read for the first time: its groups that start below its
        head catch up."""
        assert src.head is not None
        assert self._plan is not None
        row = next((r for r in self._plan.sources if r.source == src.channel), None)
        for g in row.groups if row else ():
            start = self._starts.get(g)
            if start is not None and start < src.head and src.channel == PUBLIC:
                self._catch_up(g, start)

    # -- planning -------------------------------------------------------------------------

    def _replan_soon(self) -> None:
        """Re-plan now, or :data:`REPLAN_GAP` seconds after the last plan: a plan is not
        revised faster than that, so groups do not flap between sources."""
        now = self.clock.monotonic()
        at = max(now, self._planned_at + tuning.REPLAN_GAP)
        self._planned_at = min(self._planned_at, at - self.replan_every)

    def _replan(self) -> None:
        assert self._planner is not None
        if not self.groups:
            self._planned_at = math.inf
            return
        if not self._pending and not any(s.retiring for s in self._sources.values()):
            self._planner.reserve = 0.0
        else:
            self._planner.reserve = tuning.PROBE_SHARE * self.budget.calls_per_second
        old = self._plan
        self._count = self._peers.turn()[1] if self._peers is not None else 1
        self._planner.budget = fleet_budget(self.budget, self._count)
        self._planner.ceiling = self._spend.sustainable(self.replan_every) * self._count
        plan = self._planner.plan(self.clock.time())
        self._plan = plan
        self._planned_at = self.clock.monotonic()
        claims = self._group_claims(old)
        self._apply(plan, old, claims)
        log.info("plan: %d sources, %.0f calls/day, mean delay %.1f s",
                 len(plan.sources), plan.calls_per_day, plan.expected_delay)

    def _group_claims(self, old: Plan | None) -> dict[str, int | None]:
        """Each group's claim before this plan: its source's, or its start."""
        if old is None:
            return dict(self._starts)
        out: dict[str, int | None] = {}
        for row in old.sources:
            src = self._sources.get(row.source.key)
            claim = src.claim() if src is not None else None
            for g in row.groups:
                out[g] = claim if claim is not None else self._starts.get(g)
        return out

    def _apply(self, plan: Plan, old: Plan | None, claims: dict[str, int | None]) -> None:
        now = self.clock.monotonic()
        before = {g: r.source for r in old.sources for g in r.groups} if old else {}
        keep = {r.source.key for r in plan.sources}
        for row in plan.sources:
            if row.source.kind == "group" and not self._mine(row.source.group):
                continue  # a peer reads it
            src = self._sources.get(row.source.key)
            if src is None:
                src = self._sources[row.source.key] = self._open(row.source)
            src.retiring = False
            interval = row.interval
            if row.source.kind != "group" and self._peers is not None:
                # Peers' plans differ (each measured the traffic and spent its windows
                # itself): the turns keep to the longest period a peer proposes, one grid.
                interval = max(round(row.interval * self._count, 1), 0.1)
            if src.interval != interval:
                src.interval = interval
                src.due = (now if src.polled is None
                           else min(src.due, self._due_after(src, src.polled, now)))
            for g in row.groups:
                if before.get(g) != row.source:
                    self._hand_over(g, src, claims.get(g))
        for key in [k for k, s in self._sources.items() if k not in keep and not s.retiring]:
            del self._sources[key]

    def _mine(self, group: str) -> bool:
        """Whether this follower reads ``group``'s own stream (with peers, one of them does)."""
        return self._peers is None or self._peers.owns(group)

    def _due_after(self, src: _Source, last: float, now: float) -> float:
        """When ``src``, last polled at ``last``, is polled next: one interval on, or, for a
        shared source with peers, at this follower's next turn."""
        if self._peers is None or src.channel.kind == "group":
            return max(now, last + src.interval)
        place, count = self._peers.turn()
        period = self._peers.period(src.key, src.interval)
        return turn_due(now, self.clock.time(), period, place, count)

    def _open(self, channel: Channel) -> _Source:
        """A source the follower did not poll before."""
        src = _Source(channel)
        restored = self._restored
        shared = self._shared.get(channel.key)
        if shared is not None and (restored is None or channel.key not in restored.heads
                                   or restored.heads[channel.key] < shared):
            src.head = shared  # the peers' head: every item up to it was handed out
        elif restored is not None and channel.key in restored.heads:
            src.head = restored.heads[channel.key]
            for low, top in restored.gaps.get(channel.key, ()):
                gap = Descent(channel.page, low)
                gap.top = top
                src.gaps.append(gap)
        return src

    def _hand_over(self, group: str, src: _Source, claim: int | None) -> None:
        """``group`` is now covered by ``src``; everything of it up to ``claim`` was handed
        out. What lies between is read again, never walked through unfollowed traffic."""
        if claim is None:
            return
        self._starts[group] = claim
        mine = src.claim()
        if src.channel.kind == "group":
            if mine is None:
                src.head = claim
            elif claim < mine:
                src.open_gap(claim)
            return
        if src.channel == JOINED:
            # The joined stream carries only the account's own groups: it walks down itself
            # (and private groups have no other source).
            if mine is None:
                src.rewind = claim if src.rewind is None else min(src.rewind, claim)
            elif claim < mine:
                src.open_gap(claim)
            return
        if mine is None:
            return  # catches up once the public stream's head is known (_catch_up_below)
        if claim < mine:
            self._catch_up(group, claim)

    async def _resample(self) -> None:
        """Once every ``resample_every`` seconds, one page of each shared source the plan left:
        the only way to see that the traffic that made it too dear has passed."""
        self._resample_at = self.clock.monotonic() + self.resample_every
        assert self._planner is not None
        assert self._plan is not None
        for channel in self._planner.unused_shared(self._plan):
            try:
                page = await self._fetch(channel, 0)
            except FATAL:
                raise
            except E.GupshupError as exc:
                log.warning("%s: resample failed (%s)", channel.key, exc)
                return
            self._planner.resample(channel, _stamps(page), self.clock.time())
