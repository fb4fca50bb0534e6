"""The follow engine: 1 000 followed groups on one IP's quota, one simulated day per scenario.

The client (real scheduler, real windows 30/1 000/10 000) and the emulator (sliding windows)
share one :class:`~agupshup.virtualclock.VirtualClock` in this process: calls go to
``Emulator.request`` directly, and time jumps whenever every task waits, so a day is
deterministic and takes seconds. Base traffic: 5 000 messages a day over the followed groups,
Zipf rates (s = 1), Poisson arrivals (:mod:`agupshup.emulator.traffic`). Measured from the
emulator's records: per-message delay from post to yield, calls served, 113s, lost and
duplicated.

* A: every followed group joined.
* B: half joined, every group public, plus unfollowed public groups posting three times the
  traffic of the followed groups that are not joined.
* C, a day curve: A's traffic, its rate following the hours of a day (night 0.2×, evening 1.8×).
* D, a group going viral: A, and one group posting a message a second for an hour at noon.
* E, a flooded shared source: B's groups, and unfollowed public groups posting 2 a second for
  two hours from 06:00.
* F, an outage mid-day: A, and every call failing to connect for 30 minutes from noon.
* G, a quiet day with a delay target: 50 messages a day over the joined groups,
  ``Budget(target_delay=60)``: the fewest calls that keep p99 under a minute.
* Baseline, same run and budget (A and B): every group polled on its own ``groups.getStream``
  (``per_group=True``, with the same square-root intervals, so stronger than a uniform poller).

    python -m benchmarks.aggregator [--quick] [--groups 1000] [--per-day 5000] [--hours 24]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# `benchmarks` as a package, and this checkout's agupshup whatever an editable install points at.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from agupshup import Client
from agupshup.aggregate import follow_groups
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.core import Emulator
from agupshup.emulator.traffic import (
    READER_PASSWORD,
    READER_PHONE,
    Traffic,
    group_names,
    many_groups_seed,
    zipf_rates,
)
from agupshup.errors import ConnectError
from agupshup.planner import Budget, Mode, describe
from agupshup.transport import MockTransport, RawResponse
from agupshup.virtualclock import VirtualClock, run_virtual
from benchmarks._report import Figure, emit

DAY = 86_400.0
#: After the traffic stops, the follower gets this long to deliver what is left.
DRAIN = 3_600.0


@dataclass
class World:
    """Followed groups, which the reader joined, and the traffic of every group: steady
    ``rates`` and extra blocks of ``(start offset, seconds, rates)``."""

    followed: list[str]
    joined: set[str]
    rates: dict[str, float]
    blocks: list[tuple[float, float, dict[str, float]]] = field(default_factory=list)
    #: (start offset, seconds) during which every call fails to connect.
    outage: tuple[float, float] | None = None
    budget: Budget = field(default_factory=lambda: Budget(0.9))

    def seed(self) -> dict[str, object]:
        names = set(self.rates) | {g for _, _, r in self.blocks for g in r}
        return many_groups_seed(sorted(names), joined=self.joined)

    def traffic(self, start: float, seconds: float, seed: int) -> list[Traffic]:
        out = [Traffic(self.rates, start, seconds, seed=seed)]
        out += [Traffic(rates, start + at, min(length, max(0.0, seconds - at)), seed=seed + n)
                for n, (at, length, rates) in enumerate(self.blocks, 1)]
        return out


def scenario(name: str, groups: int, per_day: float, hours: float = 24.0, seed: int = 1) -> World:
    """Scenario ``name`` (A–G, see the module's docstring) over ``hours`` of traffic."""
    followed = group_names(groups)
    rates = zipf_rates(followed, per_day / DAY, seed=seed)
    mid = hours * 3600 / 2  # "noon": the middle of the run
    if name in "ACDFG":
        world = World(followed, set(followed), rates)
        if name == "C":
            world.rates = {}
            world.blocks = [(h * 3600.0, 3600.0, {g: r * _curve(h) for g, r in rates.items()})
                            for h in range(int(hours))]
        elif name == "D":
            world.blocks = [(mid, 3600.0, {followed[0]: 1.0})]
        elif name == "F":
            world.outage = (mid, 1800.0)
        elif name == "G":
            world.rates = zipf_rates(followed, 50 / DAY, seed=seed)
            world.budget = Budget(0.9, target_delay=60)
        return world
    joined = set(random.Random(seed).sample(followed, groups // 2))
    public_rate = sum(r for g, r in rates.items() if g not in joined)
    others = group_names(groups, prefix="u")
    world = World(followed, joined, rates)
    world.rates.update(zipf_rates(others, 3 * public_rate, seed=seed + 1))
    if name == "E":
        flood = group_names(20, prefix="f")
        world.blocks = [(hours * 3600 / 4, 7200.0, {g: 2.0 / len(flood) for g in flood})]
    return world


def _curve(hour: int) -> float:
    """A day's shape: quiet at night, busy in the evening (mean about 1)."""
    return 1.0 + 0.8 * math.sin((hour - 12) / 24 * 2 * math.pi)


@dataclass
class Result:
    mode: str
    delays: list[float] = field(default_factory=list)
    calls: int = 0
    refused: int = 0
    lost: int = 0
    duplicated: int = 0
    posted: int = 0
    plan: str = ""
    #: Most calls the follower sent in any window of the budget, over that window's share.
    fill: float = 0.0

    def pct(self, q: float) -> float:
        if not self.delays:
            return float("nan")
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.delays) if self.delays else float("nan")


def direct(emulator: Emulator, fail: Callable[[], bool] = lambda: False) -> MockTransport:
    def handler(fields: Sequence[tuple[str, str]]) -> RawResponse:
        if fail():
            raise ConnectError("connection refused", maybe_sent=False)
        answer = emulator.request(list(fields))
        return RawResponse(200, answer.content_type, answer.body)

    return MockTransport(handler)


async def simulate(world: World, mode: Mode, seconds: float, *, seed: int = 7) -> Result:
    """One run on its own virtual clock: traffic for ``seconds``, then :data:`DRAIN`."""
    clock = VirtualClock()
    emulator = Emulator(EmulatorConfig(clock=clock, seed=world.seed()))
    traffic = world.traffic(clock.time(), seconds, seed)
    stamps: list[float] = []

    def fail() -> bool:
        stamps.append(clock.monotonic())
        if world.outage is None:
            return False
        at, length = world.outage
        return at <= clock.monotonic() < at + length

    yielded: Counter[int] = Counter()
    at: dict[int, float] = {}
    result = Result(mode)

    async def consume(client: Client) -> None:
        async with follow_groups(client, world.followed, budget=world.budget,
                                 per_group=mode == "per-group") as f:
            result.plan = describe(f.plan)
            async for message in f:
                yielded[message.id] += 1
                at.setdefault(message.id, clock.time())

    async def main() -> None:
        async with Client(
            "http://emulator.invalid", phone=READER_PHONE, password=READER_PASSWORD,
            clock=clock, transport=direct(emulator, fail),
        ) as client:
            tasks = [asyncio.ensure_future(t.run(emulator, clock.sleep)) for t in traffic]
            tasks.append(asyncio.ensure_future(consume(client)))
            await clock.sleep(seconds + DRAIN)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    await run_virtual(clock, main())
    followed = set(world.followed)
    for ident, group, stamp in (p for t in traffic for p in t.posted):
        if group not in followed:
            continue
        result.posted += 1
        if ident in at:
            result.delays.append(at[ident] - stamp / 1000)
            if "DEBUG_LOST" in __import__("os").environ and at[ident] - stamp / 1000 > 600:
                print("late", ident, group, group in world.joined, stamp / 1000 - 1.7e9,
                      at[ident] - stamp / 1000)
        else:
            result.lost += 1
            if __debug__ and "DEBUG_LOST" in __import__("os").environ:
                print("lost", ident, group, stamp / 1000 - clock.time() + seconds + DRAIN)
    result.duplicated = sum(n - 1 for n in yielded.values())
    result.calls = sum(emulator.calls.values())
    result.refused = sum(emulator.throttled.values())
    result.fill = _fill(stamps, world.budget)
    return result


def _fill(stamps: list[float], budget: Budget) -> float:
    """The fullest window of the budget: most calls in it over its share (≤ 1: within)."""
    worst = 0.0
    for w in budget.limits:
        cap = w.limit * budget.share
        j = 0
        for i, t in enumerate(stamps):
            while stamps[j] <= t - w.length:
                j += 1
            worst = max(worst, (i - j + 1) / cap)
    return worst


def report(name: str, ours: Result, base: Result | None, targets: dict[str, float]) -> list[Figure]:
    def vs(what: str) -> str:
        return "" if base is None else what

    figures = [
        Figure(f"aggregator {name}: p50 delay", ours.pct(0.5), "s",
               vs(f"per-group {base.pct(0.5):,.0f} s" if base else ""), _t(targets, "p50"),
               _le(ours.pct(0.5), targets.get("p50"))),
        Figure(f"aggregator {name}: p99 delay", ours.pct(0.99), "s",
               vs(f"per-group {base.pct(0.99):,.0f} s" if base else ""), _t(targets, "p99"),
               _le(ours.pct(0.99), targets.get("p99"))),
        Figure(f"aggregator {name}: max delay", max(ours.delays, default=0.0), "s"),
        Figure(f"aggregator {name}: calls", ours.calls, "calls",
               vs(f"per-group {base.calls:,} calls" if base else ""),
               f"≤ {targets.get('calls', 10_000):,.0f}",
               ours.calls <= targets.get("calls", 10_000)),
        Figure(f"aggregator {name}: fullest budget window", ours.fill, "× share", "",
               "≤ 1 (+ login)", ours.fill <= 1.0 + 3 / 30),
        Figure(f"aggregator {name}: 113s", ours.refused, "", "", "0", ours.refused == 0),
        Figure(f"aggregator {name}: lost (undelivered 1 h after the traffic)", ours.lost,
               f"of {ours.posted}", "", "0", ours.lost == 0),
        Figure(f"aggregator {name}: duplicated", ours.duplicated, "", "", "0",
               ours.duplicated == 0),
    ]
    if base is not None:
        ratio = base.mean / ours.mean if ours.mean > 0 else float("inf")
        figures.insert(3, Figure(
            f"aggregator {name}: mean delay vs per-group", ratio, "× lower",
            f"per-group: {base.mean:,.0f} s mean", f"≥ {targets['ratio']:g}×",
            ratio >= targets["ratio"]))
    return figures


def _t(targets: dict[str, float], key: str) -> str:
    return f"≤ {targets[key]:g} s" if key in targets else ""


def _le(value: float, target: float | None) -> bool | None:
    return None if target is None else value <= target


TARGETS: dict[str, dict[str, float]] = {
    "A": {"p50": 5.0, "p99": 10.0, "ratio": 100.0},
    "B": {"ratio": 10.0},
    "C": {},
    "D": {},
    "E": {},
    "F": {},
    "G": {"p99": 60.0, "calls": 3_000.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 groups, 2 simulated hours")
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--per-day", type=float, default=5000.0)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--only", default="ABCDEFG", help="scenarios to run, e.g. AG")
    args = parser.parse_args()
    groups, hours = (100, 2.0) if args.quick else (args.groups, args.hours)
    figures: list[Figure] = []
    for name in args.only:
        world = scenario(name, groups, args.per_day, hours)
        started = time.monotonic()
        ours = asyncio.run(simulate(world, "plan", hours * 3600))
        base = (asyncio.run(simulate(world, "per-group", hours * 3600))
                if name in "AB" else None)
        print(f"scenario {name}: {time.monotonic() - started:.1f} s of CPU")
        print(ours.plan)
        figures += report(name, ours, base, TARGETS[name])
    for fig in figures:
        print(fig.row())
    emit("aggregator", figures)


if __name__ == "__main__":
    main()
