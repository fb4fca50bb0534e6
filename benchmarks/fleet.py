"""The fleet on the one follow engine: 1 000 joined groups on 1, 2 and 4 addresses, one run.

Each address is a ``Client`` (its own throttle, 30/1 000/10 000) with a
:class:`~agupshup.aggregate.Follower` over all 1 000 groups, the followers peers of one
:class:`~agupshup.aggregate.LocalFleet`: they take turns on the joined stream (follower ``k``
of ``N`` at ``k/N`` of the interval) and share its head, so each reads only what arrived since
any peer's last read. Everything runs on one :class:`~agupshup.virtualclock.VirtualClock`
against one in-process emulator, which throttles each address apart (as GupShup does per IP),
so a simulated day takes seconds and is the same every run. The feed keeps each message once,
as :class:`~agupshup.fleet.RedisStreamSink` does; a message's delay is from its post to its
first arrival in the feed.

Scenarios, with scenario A's traffic of ``benchmarks.aggregator`` (5 000 messages a day over
the groups, Zipf rates, Poisson arrivals), share 0.9 on every address:

* the single-process planner (``follow_groups``, no peers): the baseline of the same run;
* 1, 2 and 4 addresses;
* 4 addresses, one killed mid-run (halted without saving, the way ``kill -9`` leaves it; its
  membership lapses a lease later), with a message a second more while the takeover lasts:
  every message still in the feed, and the p99 delay of the messages posted during the
  takeover within two leases plus one poll interval.

What runs here is the engine's side of the fleet; the Redis side (claims, fencing tokens, the
heads' Lua script, the feed) is exercised on loopback by ``tests/fleet`` (a ``kill -9`` of a
worker process included) and measured in real time by ``python -m benchmarks.fleet_redis``.

    python -m benchmarks.fleet [--quick] [--groups 1000] [--hours 6]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from agupshup import Client
from agupshup.aggregate import Follower, LocalFleet
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.core import Emulator
from agupshup.emulator.traffic import READER_PASSWORD, READER_PHONE
from agupshup.transport import MockTransport, RawResponse
from agupshup.virtualclock import VirtualClock, run_virtual
from benchmarks._report import Figure, emit
from benchmarks.aggregator import DRAIN, World, scenario

#: Seconds a dead member keeps its turn (the fleet's default lease).
LEASE = 15.0


@dataclass
class Run:
    """What one configuration delivered."""

    name: str
    delays: list[float] = field(default_factory=list)
    posted: int = 0
    lost: int = 0
    refused: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    #: Hand-outs beyond the first of a message (two peers reading it): calls spent twice.
    repeats: int = 0
    #: Delays of the messages posted during a takeover (kill → kill + 2 leases + 1 interval).
    takeover: list[float] = field(default_factory=list)
    interval: float = 0.0

    def pct(self, q: float, values: Sequence[float] | None = None) -> float:
        ordered = sorted(self.delays if values is None else values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Feed:
    """The exactly-once feed: the first arrival of each id, and how many arrived."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.first: dict[int, float] = {}
        self.arrivals: Counter[int] = Counter()

    def publish(self, ident: int) -> None:
        self.arrivals[ident] += 1
        self.first.setdefault(ident, self.clock.time())


def _client(emulator: Emulator, clock: VirtualClock, ip: str, calls: Counter[str]) -> Client:
    def handle(fields: Sequence[tuple[str, str]]) -> RawResponse:
        calls[ip] += 1
        answer = emulator.request(list(fields), ip=ip)
        return RawResponse(200, answer.content_type, answer.body)

    # Its own address: its own throttle (the process-wide scheduler is kept per address).
    return Client("http://emulator.invalid", phone=READER_PHONE, password=READER_PASSWORD,
                  clock=clock, transport=MockTransport(handle), local_address=ip)


async def _member(client: Client, world: World, feed: Feed, fleet: LocalFleet | None,
                  name: str, followers: dict[str, Follower]) -> None:
    peers = fleet.member(name) if fleet is not None else None
    async with client, Follower(client, world.followed, budget=world.budget,
                                peers=peers) as follower:
        followers[name] = follower
        async for message in follower:
            feed.publish(message.id)


async def simulate(world: World, addresses: int | None, seconds: float,
                   kill_at: float | None = None) -> Run:
    """``addresses`` peers (None: one follower without peers) for ``seconds`` of traffic."""
    clock = VirtualClock()
    emulator = Emulator(EmulatorConfig(clock=clock, seed=world.seed()))
    traffic = world.traffic(clock.time(), seconds, seed=7)
    feed, calls = Feed(clock), Counter[str]()
    fleet = None if addresses is None else LocalFleet()
    names = [f"10.0.0.{k + 1}" for k in range(addresses or 1)]
    followers: dict[str, Follower] = {}
    run = Run("single process" if addresses is None else f"{addresses} address(es)")

    async def main() -> None:
        tasks = [asyncio.ensure_future(t.run(emulator, clock.sleep)) for t in traffic]
        members = {n: asyncio.ensure_future(_member(_client(emulator, clock, n, calls), world,
                                                    feed, fleet, n, followers)) for n in names}
        if kill_at is not None and fleet is not None:
            await clock.sleep(kill_at)
            victim = names[-1]
            followers[victim].halt()  # no save, no head moved: kill -9
            members[victim].cancel()
            run.interval = min(s.interval for s in followers[names[0]]._sources.values())
            await clock.sleep(LEASE)
            fleet.leave(victim)
            await clock.sleep(seconds + DRAIN - kill_at - LEASE)
        else:
            await clock.sleep(seconds + DRAIN)
        for task in [*tasks, *members.values()]:
            task.cancel()
        await asyncio.gather(*tasks, *members.values(), return_exceptions=True)

    start = clock.time()
    await run_virtual(clock, main())
    followed = set(world.followed)
    window = None if kill_at is None else (start + kill_at, start + kill_at + 2 * LEASE)
    for ident, group, stamp in (p for t in traffic for p in t.posted):
        if group not in followed:
            continue
        run.posted += 1
        if ident not in feed.first:
            run.lost += 1
            continue
        delay = feed.first[ident] - stamp / 1000
        run.delays.append(delay)
        if window is not None and window[0] <= stamp / 1000 <= window[1] + run.interval:
            run.takeover.append(delay)
    run.repeats = sum(n - 1 for n in feed.arrivals.values())
    run.refused = sum(emulator.throttled.values())
    run.calls = dict(calls)
    return run


def figures(runs: list[Run], targets: dict[str, float]) -> list[Figure]:
    base = runs[0]
    out: list[Figure] = []
    for run in runs:
        n = run.name
        target = targets.get(n)
        out += [
            Figure(f"fleet {n}: p50 delay", run.pct(0.5), "s",
                   f"single process {base.pct(0.5):.1f} s",
                   f"≤ {target:g} s" if target else "", None if target is None
                   else run.pct(0.5) <= target),
            Figure(f"fleet {n}: p99 delay", run.pct(0.99), "s",
                   f"single process {base.pct(0.99):.1f} s"),
            Figure(f"fleet {n}: calls per address over the run (most)",
                   max(run.calls.values()), "calls", "", "share 0.9 of each window"),
            Figure(f"fleet {n}: 113s", run.refused, "", "", "0", run.refused == 0),
            Figure(f"fleet {n}: lost", run.lost, f"of {run.posted}", "", "0", run.lost == 0),
            Figure(f"fleet {n}: read twice (the feed keeps one)", run.repeats, "hand-outs"),
        ]
        if run.takeover:
            limit = 2 * LEASE + run.interval
            out.append(Figure(f"fleet {n}: p99 delay during the takeover", run.pct(
                0.99, run.takeover), "s", f"{len(run.takeover)} messages",
                f"≤ {limit:.0f} s (2 leases + 1 interval)", run.pct(0.99, run.takeover) <= limit))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 groups, 2 simulated hours")
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--per-day", type=float, default=5000.0)
    parser.add_argument("--hours", type=float, default=6.0)
    args = parser.parse_args()
    groups, hours = (200, 2.0) if args.quick else (args.groups, args.hours)
    world = scenario("A", groups, args.per_day, hours)
    seconds = hours * 3600
    runs = []
    # The kill's run: a message a second over the groups while the takeover lasts, so its
    # p99 is measured on enough messages.
    busy = dataclasses.replace(world, blocks=[*world.blocks, (
        seconds / 2, 2 * LEASE + 60, {g: 1 / len(world.followed) for g in world.followed})])
    for addresses, kill in ((None, None), (1, None), (2, None), (4, None), (4, seconds / 2)):
        started = time.monotonic()
        run = asyncio.run(simulate(busy if kill else world, addresses, seconds, kill))
        if kill is not None:
            run.name += ", one killed"
        print(f"{run.name}: {time.monotonic() - started:.1f} s of CPU", flush=True)
        runs.append(run)
    table = figures(runs, {"1 address(es)": 5.0, "2 address(es)": 2.5, "4 address(es)": 1.3})
    for fig in table:
        print(fig.row())
    emit("fleet", table)


if __name__ == "__main__":
    main()
