"""The aggregator: 1 000 followed groups on one IP's quota, one simulated day.

The client (real scheduler, real windows 30/1 000/10 000) and the emulator (sliding windows)
share one :class:`~agupshup.virtualclock.VirtualClock` in this process: calls go to
``Emulator.request`` directly, and time jumps whenever every task waits, so a day is
deterministic and takes seconds. Traffic: 5 000 messages a day over the followed groups, Zipf
rates (s = 1), Poisson arrivals (:mod:`agupshup.emulator.traffic`). Measured from the emulator's
records: per-message delay from post to yield, calls served, 113s, lost and duplicated.

* Scenario A: every followed group joined.
* Scenario B: half joined, every group public, plus unfollowed public groups posting three times
  the traffic of the followed groups that are not joined.
* Baseline, same run and budget: every group polled on its own ``groups.getStream``
  (``mode="per-group"``, with the same square-root intervals, so stronger than a uniform poller).
  Today's ``merged_stream(follow=True)`` is measured too, at 100 groups for 2 hours (its pollers
  wake every few seconds each: a day of 1 000 would take most of an hour of CPU).

    python -m benchmarks.aggregator [--quick] [--groups 1000] [--per-day 5000] [--hours 24]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
from agupshup.planner import Budget, Mode, describe
from agupshup.transport import MockTransport, RawResponse
from agupshup.virtualclock import VirtualClock, run_virtual
from benchmarks._report import Figure, emit

DAY = 86_400.0
#: After the traffic stops, the follower gets this long to deliver what is left.
DRAIN = 3_600.0


@dataclass
class World:
    """Followed groups, which the reader joined, and the traffic of every group."""

    followed: list[str]
    joined: set[str]
    rates: dict[str, float]

    def seed(self) -> dict[str, object]:
        return many_groups_seed(sorted(self.rates), joined=self.joined)


def scenario(name: str, groups: int, per_day: float, seed: int = 1) -> World:
    followed = group_names(groups)
    rates = zipf_rates(followed, per_day / DAY, seed=seed)
    if name == "A":
        return World(followed, set(followed), rates)
    joined = set(random.Random(seed).sample(followed, groups // 2))
    public_rate = sum(r for g, r in rates.items() if g not in joined)
    others = group_names(groups, prefix="u")
    rates.update(zipf_rates(others, 3 * public_rate, seed=seed + 1))
    return World(followed, joined, rates)


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

    def pct(self, q: float) -> float:
        if not self.delays:
            return float("nan")
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.delays) if self.delays else float("nan")


def direct(emulator: Emulator) -> MockTransport:
    def handler(fields: Sequence[tuple[str, str]]) -> RawResponse:
        answer = emulator.request(list(fields))
        return RawResponse(200, answer.content_type, answer.body)

    return MockTransport(handler)


async def simulate(
    world: World,
    mode: Mode | Literal["merged"],
    seconds: float,
    *,
    share: float = 0.9,
    seed: int = 7,
) -> Result:
    """One run on its own virtual clock: traffic for ``seconds``, then :data:`DRAIN`."""
    clock = VirtualClock()
    emulator = Emulator(EmulatorConfig(clock=clock, seed=world.seed()))
    traffic = Traffic(world.rates, clock.time(), seconds, seed=seed)
    transport = direct(emulator)
    yielded: Counter[int] = Counter()
    at: dict[int, float] = {}
    result = Result(mode)

    async def consume(client: Client) -> None:
        if mode == "merged":
            async with client.merged_stream(world.followed, follow=True) as stream:
                async for message in stream:
                    yielded[message.id] += 1
                    at.setdefault(message.id, clock.time())
            return
        async with follow_groups(client, world.followed, budget=Budget(share), mode=mode) as f:
            async for message in f:
                yielded[message.id] += 1
                at.setdefault(message.id, clock.time())
                result.plan = describe(f.plan)

    async def main() -> None:
        async with Client(
            "http://emulator.invalid", phone=READER_PHONE, password=READER_PASSWORD,
            clock=clock, transport=transport,
        ) as client:
            poster = asyncio.ensure_future(traffic.run(emulator, clock.sleep))
            reader = asyncio.ensure_future(consume(client))
            await clock.sleep(seconds + DRAIN)
            for task in (poster, reader):
                task.cancel()
            await asyncio.gather(poster, reader, return_exceptions=True)

    await run_virtual(clock, main())
    followed = set(world.followed)
    for ident, group, stamp in traffic.posted:
        if group not in followed:
            continue
        result.posted += 1
        if ident in at:
            result.delays.append(at[ident] - stamp / 1000)
        else:
            result.lost += 1
    result.duplicated = sum(n - 1 for n in yielded.values())
    result.calls = sum(emulator.calls.values())
    result.refused = sum(emulator.throttled.values())
    return result


def report(name: str, ours: Result, base: Result, targets: dict[str, float]) -> list[Figure]:
    ratio = base.mean / ours.mean if ours.mean > 0 else float("inf")
    tag = f"per-group: {base.mean:,.0f} s mean"
    return [
        Figure(f"aggregator {name}: p50 delay", ours.pct(0.5), "s",
               f"per-group {base.pct(0.5):,.0f} s", _t(targets, "p50"),
               _le(ours.pct(0.5), targets.get("p50"))),
        Figure(f"aggregator {name}: p99 delay", ours.pct(0.99), "s",
               f"per-group {base.pct(0.99):,.0f} s", _t(targets, "p99"),
               _le(ours.pct(0.99), targets.get("p99"))),
        Figure(f"aggregator {name}: max delay", max(ours.delays, default=0.0), "s",
               f"per-group {max(base.delays, default=0.0):,.0f} s"),
        Figure(f"aggregator {name}: mean delay vs per-group", ratio, "× lower", tag,
               f"≥ {targets['ratio']:g}×", ratio >= targets["ratio"]),
        Figure(f"aggregator {name}: calls", ours.calls, "calls",
               f"per-group {base.calls:,} calls", "≤ 10 000", ours.calls <= 10_000),
        Figure(f"aggregator {name}: 113s", ours.refused, "", f"per-group {base.refused}", "0",
               ours.refused == 0),
        Figure(f"aggregator {name}: lost (undelivered 1 h after the traffic)", ours.lost,
               f"of {ours.posted}",
               f"per-group {base.lost}", "0", ours.lost == 0),
        Figure(f"aggregator {name}: duplicated", ours.duplicated, "",
               f"per-group {base.duplicated}", "0", ours.duplicated == 0),
    ]


def _t(targets: dict[str, float], key: str) -> str:
    return f"≤ {targets[key]:g} s" if key in targets else ""


def _le(value: float, target: float | None) -> bool | None:
    return None if target is None else value <= target


TARGETS = {"A": {"p50": 10.0, "p99": 60.0, "ratio": 100.0}, "B": {"ratio": 10.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 groups, 2 simulated hours")
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--per-day", type=float, default=5000.0)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    groups, hours = (100, 2.0) if args.quick else (args.groups, args.hours)
    figures: list[Figure] = []
    for name in ("A", "B"):
        world = scenario(name, groups, args.per_day)
        started = time.monotonic()
        ours = asyncio.run(simulate(world, "plan", hours * 3600))
        base = asyncio.run(simulate(world, "per-group", hours * 3600))
        print(f"scenario {name}: {time.monotonic() - started:.1f} s of CPU for two runs")
        print(ours.plan)
        print("baseline:", next((x for x in base.plan.splitlines() if "expected" in x), "-"))
        figures += report(name, ours, base, TARGETS[name])
    if not args.quick:
        figures.append(todays_merged_stream(args.per_day))
    for fig in figures:
        print(fig.row())
    emit("aggregator", figures)


def todays_merged_stream(per_day: float, groups: int = 100, hours: float = 2.0) -> Figure:
    """Today's ``merged_stream(follow=True)`` (one adaptive poller per group), informative: its
    pollers wake every few virtual seconds each, so a day of 1 000 would take most of an hour
    of CPU; 100 groups for 2 hours, against the planner at the same scale."""
    world = scenario("A", groups, per_day)
    merged = asyncio.run(simulate(world, "merged", hours * 3600))
    ours = asyncio.run(simulate(world, "plan", hours * 3600))
    ratio = merged.mean / ours.mean if ours.mean > 0 else float("inf")
    return Figure(
        f"aggregator A ({groups} groups, {hours:g} h): mean delay vs today's merged_stream",
        ratio, "× lower",
        f"merged_stream {merged.mean:,.0f} s mean, {merged.calls:,} calls, "
        f"{merged.lost} undelivered; ours {ours.mean:.1f} s, {ours.calls:,} calls",
        "(informative)",
    )


if __name__ == "__main__":
    main()
