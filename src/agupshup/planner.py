"""The aggregator's planner: which sources cover a set of followed groups, and how often to poll.

Pure: no I/O and no clock of its own (every method takes ``now``, in seconds), so it is tested
with plain numbers. :mod:`agupshup.aggregate` feeds it what the follower reads.

Rules this module enforces:

* Three kinds of source: ``joined`` (``users.getJoinedGroupsStream``, 30 a page: every joined
  group, private ones too), ``public`` (``gupshup.getPublicStream`` with adult content, 15 a page:
  every public group) and ``group`` (``groups.getStream``, 15 a page: one public group). A
  followed group no source can read (unknown, or private and not joined) is an
  :class:`UnreadableGroups` error naming each group and why, before any poll.
* The cover is the candidate with the lowest expected delay within the budget: shared sources
  (joined for joined groups, public for public ones) against per-group streams. A shared source
  pays for the traffic of groups nobody follows (its ``volume``), so a busy public stream loses
  to per-group polling by itself, without a threshold.
* Intervals minimise the mean delivery delay ``Σ wᵢ·Tᵢ/2 / Σ wᵢ`` (``wᵢ`` the followed rate of
  source i) under ``Σ (1 + E⌊Nᵢ/Pᵢ⌋)/Tᵢ ≤ budget`` (``Nᵢ``, Poisson with mean ``λᵢTᵢ``: the
  items a poll finds; a walk reads a page more for each full page of them). The optimum is
  ``Tᵢ ∝ 1/√wᵢ`` (the square-root rule of Cho & Garcia-Molina for Poisson sources), with the
  extra pages paid first, water-filled against a floor ``min_interval`` set by the shortest
  throttle window (which the plan's budget alone already respects); the extra pages are priced
  at the intervals of the round before (from ``λᵢ/Pᵢ``, their limit at long intervals), a few
  rounds, each within the budget.
* Rates are estimated online with exponential forgetting (time constant ``horizon``), seeded from
  the timestamps of the first page each source reads anyway, with a weak prior so that a silent
  group still gets a finite interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

from agupshup.errors import UnreadableGroups

__all__ = [
    "PAGE",
    "Budget",
    "Channel",
    "GroupInfo",
    "Limit",
    "Plan",
    "Planner",
    "Rate",
    "SourcePlan",
    "UnreadableGroups",
    "calls_per_second",
    "describe",
    "extra_pages",
    "optimal_intervals",
    "suggestions",
]

Kind = Literal["joined", "public", "group"]
Mode = Literal["plan", "per-group"]
#: Largest page per source kind (protocol.md §5).
PAGE: Mapping[Kind, int] = {"joined": 30, "public": 15, "group": 15}
DAY = 86_400.0
#: A shared source's total rate counts this many seconds of silence before it was first seen,
#: so that one burst in the first seconds does not read as a flood.
SOURCE_PRIOR_SECONDS = 60.0
#: The plan aims at this share of the budget: the calls it does not plan (discovery, probes
#: before the first poll) must fit in the windows too. Without it, a plan at share 0.9 met the
#: scheduler's 10 % interactive reserve at the end of the first day and was held 285 s.
PLAN_FILL = 0.98
#: Rounds of pricing the extra pages at the intervals of the round before (see Planner._plan).
_COST_ROUNDS = 4
#: With a target delay, sources are polled every this share of it (the rest is the walk's and
#: the throttle's margin).
TARGET_FILL = 0.9
#: No source is polled less often than this many times the uniform interval (sources / budget).
FAIR_CAP = 4.0


@dataclass(frozen=True, slots=True, order=True)
class Channel:
    """One stream the follower polls; ``group`` only for kind ``group``."""

    kind: Kind
    group: str = ""

    @property
    def key(self) -> str:
        """The stream's name in cursors (as :class:`agupshup.checkpoint.Cursor` spells them)."""
        return {"joined": "joined-stream", "public": "public+adult"}.get(
            self.kind, f"group:{self.group}"
        )

    @property
    def page(self) -> int:
        return PAGE[self.kind]


JOINED = Channel("joined")
PUBLIC = Channel("public")


class Limit(Protocol):
    """What a plan needs of a throttle window (:class:`agupshup.throttle.Window` is one): the
    planner is pure, so it types windows by this and needs nothing of the throttle."""

    @property
    def limit(self) -> int: ...

    @property
    def length(self) -> float: ...


class _Limit(NamedTuple):
    limit: int
    length: float


#: GupShup's windows (protocol.md §3) as a plan needs them, for a budget that names none:
#: the limits and lengths of :data:`agupshup.throttle.DEFAULT_WINDOWS`, which
#: ``tests/test_imports.py`` holds equal (the planner may not import the throttle).
_GUPSHUP_LIMITS: tuple[Limit, ...] = (
    _Limit(30, 60.0), _Limit(1000, 3600.0), _Limit(10000, 86400.0),
)


@dataclass(frozen=True, slots=True)
class Budget:
    """The share of the throttle windows the follower may use; the rest is the bot's."""

    share: float = 0.8
    #: The throttle windows the share is of; None: the client's (GupShup's by default).
    windows: Sequence[Limit] | None = None
    #: Seconds a followed message may wait at most (about the p99 delay): the plan then spends
    #: the fewest calls that meet it, within ``share``, and leaves the rest of the quota unused.
    #: None: the freshest plan ``share`` allows.
    target_delay: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError("share must be in (0, 1]")
        if self.target_delay is not None and not (
            math.isfinite(self.target_delay) and self.target_delay > 0
        ):
            raise ValueError("target_delay must be a positive number of seconds")

    @property
    def limits(self) -> Sequence[Limit]:
        """The windows the plan is made for: GupShup's where none are known."""
        return self.windows or _GUPSHUP_LIMITS

    @property
    def calls_per_second(self) -> float:
        """The steady rate of the strictest window, times the share."""
        return self.share * min(w.limit / w.length for w in self.limits)

    @property
    def min_interval(self) -> float:
        """No source is polled more often than the shortest window allows for the share."""
        shortest = min(self.limits, key=lambda w: w.length)
        return shortest.length / (shortest.limit * self.share)


@dataclass(slots=True)
class Rate:
    """An arrival rate with exponential forgetting: decayed count over decayed exposure."""

    horizon: float
    count: float = 0.0
    exposure: float = 0.0
    at: float | None = None

    def _advance(self, now: float) -> None:
        if self.at is not None and now > self.at:
            decay = math.exp(-(now - self.at) / self.horizon)
            self.count *= decay
            self.exposure = self.exposure * decay + self.horizon * (1 - decay)
        self.at = now if self.at is None else max(self.at, now)

    def seed(self, stamps: Iterable[float], since: float, now: float) -> None:
        """Start from a backlog: the items stamped after ``since`` (seconds), seen until ``now``."""
        span = max(0.0, now - since)
        self.exposure = self.horizon * (1 - math.exp(-span / self.horizon))
        self.count = sum(math.exp(-(now - t) / self.horizon) for t in stamps if t > since)
        self.at = now

    def add(self, n: int, now: float) -> None:
        self._advance(now)
        self.count += n

    def value(self, now: float, prior_count: float, prior_seconds: float) -> float:
        """Items per second until ``now``, shrunk towards ``prior_count / prior_seconds``."""
        self._advance(now)
        return self.last(prior_count, prior_seconds)

    def last(self, prior_count: float, prior_seconds: float) -> float:
        """The rate as of the last observation: for a source no longer watched, whose silence
        since then says nothing."""
        return (self.count + prior_count) / (self.exposure + prior_seconds)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """What the follower learned of a followed group before planning."""

    name: str
    joined: bool = False
    #: None: not known yet; the follower finds out with one ``groups.getStream``.
    public: bool | None = None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class SourcePlan:
    source: Channel
    groups: tuple[str, ...]
    #: Seconds between polls.
    interval: float
    #: Followed messages per second through this source.
    followed_rate: float
    #: Every message per second through this source (what its pages carry).
    total_rate: float

    @property
    def calls_per_day(self) -> float:
        return DAY * calls_per_second(self.interval, self.total_rate, self.source.page)


@dataclass(frozen=True, slots=True)
class Plan:
    sources: tuple[SourcePlan, ...]
    #: The budget, in calls a day.
    budget_per_day: float
    #: Mean seconds from post to yield, if the rates hold.
    expected_delay: float
    mode: Mode = "plan"
    #: Groups a subscription would move from their own stream to the joined stream.
    subscribable: tuple[str, ...] = ()

    @property
    def calls_per_day(self) -> float:
        return sum(s.calls_per_day for s in self.sources)

    @property
    def over_budget(self) -> bool:
        return self.calls_per_day > self.budget_per_day * (1 + 1e-9)

    def source_of(self, group: str) -> Channel | None:
        name = group.lower()
        return next((s.source for s in self.sources if name in s.groups), None)


def extra_pages(mean: float, page: int) -> float:
    """Pages past the first that a poll reads, on average, when a Poisson number of items with
    this ``mean`` arrived since the last one: ``E⌊N/P⌋`` (a walk of N new items reads
    ``1 + ⌊N/P⌋`` pages: it stops at the first page holding a seen item)."""
    if not math.isfinite(mean):
        return math.inf
    if mean > 200 * page:
        # Far out, ⌊N/P⌋ loses (P−1)/2P to N/P on average; the tail sum below would be long.
        return mean / page - (page - 1) / (2 * page)
    if mean <= 0:
        return 0.0
    top = int(mean + 12 * math.sqrt(mean) + 2 * page)
    log_mean = math.log(mean)
    return sum(
        (n // page) * math.exp(n * log_mean - mean - math.lgamma(n + 1))
        for n in range(page, top + 1)
    )


def calls_per_second(interval: float, rate: float, page: int) -> float:
    """What polling a source carrying ``rate`` items a second every ``interval`` costs."""
    if not math.isfinite(interval):
        return rate / page
    return (1 + extra_pages(rate * interval, page)) / interval


def optimal_intervals(
    weights: Sequence[float], volumes: Sequence[float], budget: float, floor: float
) -> list[float]:
    """Poll intervals minimising ``Σ wᵢTᵢ`` under ``Σ 1/Tᵢ + Σ vᵢ ≤ budget``, each ``≥ floor``.

    ``Tᵢ = S / (B'·√wᵢ)`` with ``S = Σ√wⱼ`` over the sources not held at the floor and ``B'`` the
    budget they share; a source the formula puts below the floor is fixed there (water-filling).
    A budget the volumes alone exceed leaves a tenth of it for freshness, rather than none.

    The water-filling is kept for direct callers (the function is exported, e.g. for budgets
    other than a :class:`Budget`'s): :meth:`Planner._plan` never needs it, since its budget is
    at most ``calls_per_second`` ≤ ``1 / min_interval``, and no source gets more than the
    whole budget, so none falls below the floor there.
    """
    n = len(weights)
    spare = max(budget - sum(volumes), 0.1 * budget)
    roots = [math.sqrt(max(w, 1e-12)) for w in weights]
    out = [floor] * n
    free = set(range(n))
    for _ in range(n + 1):  # each round fixes at least one source or ends
        if not free:
            break
        total = sum(roots[i] for i in free)
        for i in free:
            out[i] = total / (spare * roots[i]) if spare > 0 else math.inf
        low = {i for i in free if out[i] < floor}
        if not low:  # always, on the first round, for the planner's own budgets
            break
        for i in low:
            out[i] = floor
        free -= low
        spare -= len(low) / floor
    return out


@dataclass
class Planner:
    """Chooses the cover and the intervals for ``groups``; learns rates as the follower reads."""

    groups: dict[str, GroupInfo]
    budget: Budget = field(default_factory=Budget)
    mode: Mode = "plan"
    #: Seconds of memory of the rate estimates.
    horizon: float = 6 * 3600.0
    #: The prior rate of a group: ``prior_count`` messages in ``prior_seconds``.
    prior_count: float = 0.05
    prior_seconds: float = 3600.0
    group_rates: dict[str, Rate] = field(default_factory=dict)
    source_rates: dict[Channel, Rate] = field(default_factory=dict)
    #: Calls a second kept out of the plan (the follower's background probes).
    reserve: float = 0.0
    #: The most calls a second the windows allow from now on (the follower's recent calls
    #: taken into account); the plan keeps below it.
    ceiling: float = math.inf

    def __post_init__(self) -> None:
        bad = {g.name: g.problem for g in self.groups.values() if g.problem}
        if bad:
            raise UnreadableGroups(bad)
        self.groups = dict(self.groups)
        for name in self.groups:
            self.group_rates.setdefault(name, Rate(self.horizon))

    def learn(self, info: GroupInfo) -> None:
        """What a probe found of a group: readable (it stays), or not (it leaves the plan)."""
        if info.problem:
            self.groups.pop(info.name, None)
            self.group_rates.pop(info.name, None)
        elif info.name in self.groups:
            self.groups[info.name] = info

    # -- learning -------------------------------------------------------------------------

    def seed_source(
        self, source: Channel, covered: Iterable[str], stamps: Sequence[tuple[str, float]],
        now: float,
    ) -> None:
        """A first page of ``source``: (group, seconds) of its items, newest first.

        A full page says nothing of the time before its oldest item, so that item only marks
        where exposure starts; a short page holds the whole history."""
        if not stamps:
            return
        full = len(stamps) >= source.page
        since = stamps[-1][1] if full else stamps[-1][1] - 1e-3
        rate = self.source_rates.setdefault(source, Rate(self.horizon))
        if rate.at is None:
            rate.seed((t for _, t in stamps), since, now)
        names = {g.lower() for g in covered}
        for name in names & self.groups.keys():
            group_rate = self.group_rates[name]
            # A group nothing was counted for yet (a background probe's page, read after
            # the first plans) learns more from its backlog than from its silence so far.
            if group_rate.at is None or group_rate.count == 0:
                group_rate.seed((t for g, t in stamps if g == name), since, now)

    def resample(self, source: Channel, stamps: Sequence[tuple[str, float]], now: float) -> None:
        """A fresh first page of a shared source the plan does not poll: its total rate restarts
        from the page's timestamps (the only way to see a flood end once groups moved off)."""
        if len(stamps) >= 2:
            self.source_rates[source] = rate = Rate(self.horizon)
            rate.seed((t for _, t in stamps), stamps[-1][1], now)

    def unused_shared(self, plan: Plan) -> list[Channel]:
        """Shared sources with a rate on record that ``plan`` does not poll."""
        polled = {s.source for s in plan.sources}
        return [s for s in (JOINED, PUBLIC) if s in self.source_rates and s not in polled]

    def observe(self, source: Channel, total: int, followed: Iterable[str], now: float) -> None:
        """A poll of ``source`` brought ``total`` new items; ``followed`` are the groups of the
        followed ones not yielded before (one entry per message)."""
        self.source_rates.setdefault(source, Rate(self.horizon)).add(total, now)
        for name in followed:
            rate = self.group_rates.get(name)
            if rate is not None:
                rate.add(1, now)

    def group_rate(self, name: str, now: float) -> float:
        return self.group_rates[name].value(now, self.prior_count, self.prior_seconds)

    def _total_rate(self, source: Channel, followed: float, now: float) -> float:
        rate = self.source_rates.get(source)
        if rate is None or source.kind == "group":
            return followed
        # A shared stream carries at least the followed traffic it covers; one that is not
        # polled now keeps the rate it had (a flood that moved groups off it still counts).
        # The prior only guards against reading a first burst as a flood: once a page's worth
        # of items was counted, their span is the measure (a prior of 60 s read a flood of
        # 2/s, 15 items in 7 s, as 0.2/s).
        prior = SOURCE_PRIOR_SECONDS if rate.count < source.page - 1 else 0.0
        return max(followed, rate.last(0.0, prior) if rate.exposure + prior > 0 else followed)

    # -- planning -------------------------------------------------------------------------

    def covers(self) -> list[dict[Channel, list[str]]]:
        """Candidate covers: each maps a source to the followed groups it is polled for."""
        groups = sorted(self.groups.values(), key=lambda g: g.name)
        if self.mode == "per-group":
            return [_cover(groups, joined=False, public=False)]
        out = [
            _cover(groups, joined=True, public=True),
            _cover(groups, joined=True, public=False),
        ]
        if PUBLIC in self.source_rates:
            out.append(_cover(groups, joined=False, public=True))
        return [c for i, c in enumerate(out) if c not in out[:i]]

    def plan(self, now: float) -> Plan:
        """The best candidate cover with its intervals, under today's estimates."""
        covers = self.covers()
        plans = [self._plan(cover, now) for cover in covers]
        # A cover whose traffic alone outruns the budget falls behind without end.
        best = min(plans, key=lambda p: (p.over_budget, p.expected_delay, p.calls_per_day))
        target = self.budget.target_delay
        if target is not None:
            cheap = [self._plan(cover, now, target) for cover in covers]
            within = [p for p in cheap if not p.over_budget]
            if within:  # else the target cannot be met: the freshest plan within the share
                best = min(within, key=lambda p: (p.calls_per_day, p.expected_delay))
        subscribable = tuple(
            s.source.group for s in best.sources if s.source.kind == "group"
        )
        return Plan(best.sources, best.budget_per_day, best.expected_delay, self.mode,
                    subscribable)

    def _plan(
        self, cover: Mapping[Channel, list[str]], now: float, target: float | None = None
    ) -> Plan:
        """``cover`` at the delay-optimal intervals within the budget; with ``target``, at the
        longest intervals that meet it (the fewest calls)."""
        sources = sorted(cover)
        followed = [sum(self.group_rate(g, now) for g in cover[s]) for s in sources]
        totals = [self._total_rate(s, f, now) for s, f in zip(sources, followed, strict=True)]
        rate = min(self.budget.calls_per_second, self.ceiling)
        budget = max(rate * PLAN_FILL - self.reserve, 0.0)
        if target is not None:
            # A message waits up to one interval (and the walk): the interval is the target,
            # less a margin for the walk and the throttle's pacing.
            every = max(self.budget.min_interval, TARGET_FILL * target)
            intervals = [every] * len(sources)
        else:
            intervals = self._intervals(sources, followed, totals, budget)
        rows = tuple(
            SourcePlan(s, tuple(cover[s]), t, f, lam)
            for s, t, f, lam in zip(sources, intervals, followed, totals, strict=True)
        )
        weight = sum(followed) or 1.0
        delay = sum(f * t / 2 for f, t in zip(followed, intervals, strict=True)) / weight
        return Plan(rows, self.budget.calls_per_second * DAY, delay, self.mode)

    def _intervals(
        self, sources: Sequence[Channel], followed: Sequence[float], totals: Sequence[float],
        budget: float,
    ) -> list[float]:
        intervals = [math.inf] * len(sources)
        for _ in range(_COST_ROUNDS):
            # λ/P (at infinite intervals) over-counts the extra pages of quiet sources: price
            # them at the last round's intervals. Shorter intervals read fewer extra pages a
            # second, so every round's intervals stay within the budget.
            volumes = [calls_per_second(t, lam, s.page) - 1 / t
                       for s, t, lam in zip(sources, intervals, totals, strict=True)]
            intervals = optimal_intervals(followed, volumes, budget, self.budget.min_interval)
        # The square-root rule starves quiet sources when one is busy (a burst once put quiet
        # groups 21 h apart): none waits more than FAIR_CAP times the uniform interval.
        cap = FAIR_CAP * len(sources) / max(budget, 1e-9)
        return [min(t, cap) for t in intervals]


def _cover(groups: Sequence[GroupInfo], *, joined: bool, public: bool) -> dict[Channel, list[str]]:
    """Joined groups to the joined stream (if allowed), public ones to the public stream (if
    allowed), the rest to their own streams; private joined groups always to the joined one.
    A group not known yet (``public is None``, not joined) counts as public: if it is not, it
    is unreadable, which its probe will say."""
    out: dict[Channel, list[str]] = {}
    for g in groups:
        if g.joined and (joined or g.public is False):
            source = JOINED
        elif public and g.public is not False:
            source = PUBLIC
        else:
            source = Channel("group", g.name)
        out.setdefault(source, []).append(g.name)
    return out


_LABEL: Mapping[Kind, str] = {"joined": "joined stream", "public": "public stream",
                              "group": "group:*"}


def describe(plan: Plan) -> str:
    """The plan as text, for ``agupshup plan``: one line per shared source, per-group streams
    summed, then the totals."""
    how = "each group on its own stream" if plan.mode == "per-group" else "cheapest cover"
    count = len(plan.sources)
    lines = [f"plan: {count} source{'s' if count != 1 else ''} ({how})"]
    singles = [s for s in plan.sources if s.source.kind == "group"]
    for s in plan.sources:
        if s.source.kind != "group":
            lines.append(
                f"  {_LABEL[s.source.kind]:<14} {len(s.groups):>5} groups  "
                f"every {s.interval:8.1f} s  "
                f"{s.total_rate * DAY:8.0f} msgs/day ({s.followed_rate * DAY:.0f} followed)  "
                f"{s.calls_per_day:7.0f} calls/day"
            )
    if singles:
        lo = min(s.interval for s in singles)
        hi = max(s.interval for s in singles)
        calls = sum(s.calls_per_day for s in singles)
        lines.append(
            f"  {'group:*':<14} {len(singles):>5} groups  every {lo:.1f}–{hi:.1f} s  "
            f"{sum(s.followed_rate for s in singles) * DAY:8.0f} msgs/day  {calls:7.0f} calls/day"
        )
    lines.append(
        f"  expected: {plan.calls_per_day:.0f} calls/day of {plan.budget_per_day:.0f} budgeted, "
        f"mean delay {plan.expected_delay:.1f} s"
    )
    lines += [f"  hint: {s}" for s in suggestions(plan)]
    return "\n".join(lines)


def suggestions(plan: Plan, limit: int = 5) -> list[str]:
    """Subscriptions that would cut delay or cost: the busiest groups polled on their own
    streams, which the joined stream would cover once subscribed."""
    singles = sorted(
        (s for s in plan.sources if s.source.kind == "group"),
        key=lambda s: s.followed_rate,
        reverse=True,
    )
    return [
        f"subscribe to {s.source.group}: the joined stream would carry its "
        f"{s.followed_rate * DAY:.0f} msgs/day and save {s.calls_per_day:.0f} calls/day"
        for s in singles[:limit]
    ]
