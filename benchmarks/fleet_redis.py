"""The fleet: how delivery delay scales with the number of egress addresses.

1, 2 and 3 workers, each a ``Client`` leaving from its own loopback address (127.0.0.2, .3, .4)
with a ``FleetWorker``, follow the same 300 groups (per-group polling through
``merged_stream(follow=True)``), coordinated through one redis-server, while Zipf-distributed
traffic (exponent 1.1) arrives. One emulator, whose time runs ``SCALE`` times faster, throttles
each address apart; every worker starts live (cursors primed in Redis), so only following is
measured.

Figures, per worker count: delay from a message's arrival to its first delivery by any worker,
p50 and p99, in emulator seconds (what a deployment on the real API would see), messages still
undelivered at the end, calls per address per emulator hour, and 113s (target 0).

    python -m benchmarks.fleet_redis [--quick] [--json]

About 2 minutes with the defaults (4 emulator hours per worker count); ``--quick`` (60 groups,
40 emulator minutes each) about 25 s. A follower spends a window's unused share fast (see
"Pacing" in docs/throttle.md): while the day's share is far from spent, as in these few hours,
the hour's governs, about 0.8 × 1 000 = 800 calls an hour per address sustained (a first hour
overshoots towards 1 000, hence ``--quick``'s looser target); over a whole day the day's share
brings that down to ~333 an hour (0.8 × 10 000 / 24). Calls per hour count the whole time
each client was open, the fleet's settling included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from agupshup import Client, Throttle
from agupshup.checkpoint import Cursor
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.seed import DEMO_PHONE, load_seed
from agupshup.emulator.server import EmulatorServer
from agupshup.fleet import FleetWorker
from agupshup.polling import PollPolicy
from agupshup.throttle import Scheduler, scaled_windows
from benchmarks._report import Figure, emit
from benchmarks._server import free_port

#: Emulator seconds per real second.
SCALE = 600.0
#: Messages per emulator minute over all groups, and the Zipf exponent of their groups.
RATE = 5.0
ZIPF = 1.1
LEASE = 2.0
#: What the polling pacing lets an address spend in an hour while the day's share is mostly
#: unused (a run of a few emulator hours): ``quota_share`` of the hour's limit, sustained. In
#: the first hour the share is spent fast and the count may overshoot it towards the limit.
HOUR_SHARE = round(PollPolicy().quota_share * 1000)
HOUR_LIMIT = 1000


@contextlib.contextmanager
def redis_process() -> Iterator[str]:
    """A redis-server of our own on a free port, without persistence."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is missing: `bash .ci/run` installs it")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def seed(groups: list[str]) -> Any:
    """The default seed plus ``groups``, one message each (so each has a live cursor)."""
    data = copy.deepcopy(dict(load_seed(None)))
    for n, name in enumerate(groups):
        data["groups"].append({
            "name": name, "owner": DEMO_PHONE, "created_on": 1262304000000,
            "messages": {"count": 1, "text": f"{name} {{n}}", "start": 1275350400000 + n},
        })
    return data


class Run:
    """One configuration: ``workers`` addresses following ``groups`` for ``seconds``."""

    def __init__(self, workers: int, groups: list[str], redis_url: str) -> None:
        self.addresses = [f"127.0.0.{2 + i}" for i in range(workers)]
        self.groups = groups
        self.redis_url = redis_url
        self.ns = f"bench:{uuid.uuid4().hex}"
        self.born: dict[int, float] = {}
        self.seen: dict[int, float] = {}
        self.workers: list[FleetWorker] = []
        self.pages: dict[str, int] = {}
        #: Real seconds each address's client was open (its calls include the fleet's settling).
        self.lived: dict[str, float] = {}

    async def follow(self, base_url: str, address: str) -> None:
        client = Client(base_url, local_address=address,
                        throttle=Throttle(windows=scaled_windows(SCALE)))
        opened = time.monotonic()
        try:
            async with client, FleetWorker(client, self.redis_url, self.groups, name=address,
                                           lease=LEASE, prefix=self.ns) as worker:
                self.workers.append(worker)
                async for message in worker:
                    self.seen.setdefault(message.id, time.monotonic())
        finally:
            # Every call of this address so far (the run is shorter than its day window).
            self.pages[address] = max((w.used for w in client.quota()), default=0)
            self.lived[address] = time.monotonic() - opened
            if isinstance(client.scheduler, Scheduler):
                # The process-wide scheduler of this address: the next run starts afresh.
                await client.scheduler.aclose()

    async def prime(self, server: EmulatorServer) -> None:
        """Every group's cursor, live at its one seeded message: the fleet starts following."""
        from redis.asyncio import Redis

        r = Redis.from_url(self.redis_url)
        world = server.emulator.world
        async with r.pipeline(transaction=False) as pipe:
            for name in self.groups:
                group = world.group(name)
                assert group is not None
                newest = group.messages[-1].id
                cursor = Cursor(source=f"group:{name}", phase="live", newest=newest, oldest=newest)
                pipe.set(f"{self.ns}:cursor:{name}", cursor.to_json())
            await pipe.execute()
        await r.aclose()

    async def traffic(self, server: EmulatorServer, seconds: float, rng: random.Random) -> None:
        """Poisson arrivals at ``RATE`` per emulator minute, groups drawn by Zipf rank; posted
        on a fixed schedule (every 20 ms, whatever is due), so a loaded loop posts late, not
        fewer."""
        world, clock = server.emulator.world, server.emulator.timebase
        weights = [1 / (rank + 1) ** ZIPF for rank in range(len(self.groups))]
        due: list[float] = [rng.expovariate(RATE * SCALE / 60)]
        while due[-1] < seconds:
            due.append(due[-1] + rng.expovariate(RATE * SCALE / 60))
        names = rng.choices(self.groups, weights, k=len(due) - 1)
        start, posted = time.monotonic(), 0
        while posted < len(names):
            await asyncio.sleep(0.02)
            now = time.monotonic()
            while posted < len(names) and due[posted] <= now - start:
                group = world.group(names[posted])
                assert group is not None
                post = world.post(group, f"traffic {posted}", DEMO_PHONE, clock.now_ms())
                self.born[post.id] = now
                posted += 1

    async def settled(self) -> None:
        """Until every worker sees all the others and the groups are split between them."""
        for _ in range(600):
            members = all(len(w.members) == len(self.addresses) for w in self.workers)
            split = sum(len(w.following) for w in self.workers) == len(self.groups)
            if len(self.workers) == len(self.addresses) and members and split:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the fleet did not settle")

    async def run(self, seconds: float, drain: float) -> dict[str, Any]:
        config = EmulatorConfig(seed=seed(self.groups), time_scale=SCALE)
        async with EmulatorServer(config) as server:
            await self.prime(server)
            tasks = [asyncio.create_task(self.follow(server.base_url, a)) for a in self.addresses]
            try:
                await self.settled()
                await self.traffic(server, seconds, random.Random(18))
                await asyncio.sleep(drain)
            finally:
                await stop(tasks)
            refusals = sum(server.emulator.throttle.refusals.values())
        result = self.report(refusals)
        result["hours"] = (seconds + drain) * SCALE / 3600
        return result

    def report(self, refusals: int) -> dict[str, Any]:
        """Delays over every message; one still undelivered counts as delivered at the end (so
        a percentile it reaches is a lower bound, flagged ``*_bound``)."""
        end = time.monotonic()
        delays = sorted((self.seen.get(i, end) - t) * SCALE for i, t in self.born.items())
        undelivered = sum(1 for i in self.born if i not in self.seen)
        out: dict[str, Any] = {
            "workers": len(self.addresses),
            "messages": len(self.born),
            "undelivered": undelivered,
            "calls_per_address_hour": {a: round(c / (self.lived[a] * SCALE / 3600))
                                       for a, c in self.pages.items()},
            "refusals_113": refusals,
        }
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            k = min(len(delays) - 1, int(len(delays) * q))
            out[f"{name}_s"] = delays[k] if delays else 0.0
            out[f"{name}_bound"] = len(delays) - k <= undelivered
        return out


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the workers; one that does not stop within 30 s is a bug: show where it hangs."""
    for task in tasks:
        task.cancel()
    done, pending = await asyncio.wait(tasks, timeout=30)
    for task in done:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure
    for task in pending:
        task.print_stack(file=sys.stderr)
    if pending:
        raise RuntimeError(f"{len(pending)} fleet workers did not stop within 30 s")


def _s(result: dict[str, Any], name: str) -> str:
    """The unit of a delay: seconds, or "s or more" when undelivered messages reach it."""
    return "s or more" if result[f"{name}_bound"] else "s"


def _pace_bound(hours: float) -> int:
    """The hour's share over a run of hours; in a run of about one, its first hour's burst."""
    return HOUR_SHARE if hours >= 2 else HOUR_LIMIT


def _pace_target(hours: float) -> str:
    if hours >= 2:
        return f"≤ {HOUR_SHARE} (the hour's share, 0.8 × 1 000, sustained)"
    return f"≤ {HOUR_LIMIT} (a first hour: its share spent fast, overshoot towards the limit)"


def figures(results: list[dict[str, Any]]) -> list[Figure]:
    one = results[0]
    out: list[Figure] = []
    for r in results:
        n = r["workers"]
        calls = sorted(r["calls_per_address_hour"].values())
        base = f"1 worker: {one['p50_s']:.0f} s" if n > 1 else ""
        out += [
            Figure(f"fleet delay p50, {n} worker(s), {r['groups']} groups", r["p50_s"],
                   _s(r, "p50"), baseline=base, target="falls with workers",
                   met=None if n == 1 else r["p50_s"] < one["p50_s"]),
            Figure(f"fleet delay p99, {n} worker(s)", r["p99_s"], _s(r, "p99")),
            Figure(f"fleet undelivered at the end, {n} worker(s)", r["undelivered"],
                   f"of {r['messages']}"),
            Figure(f"fleet calls/address/hour, {n} worker(s) (max)", calls[-1] if calls else 0,
                   "calls", target=_pace_target(r["hours"]),
                   met=bool(calls) and calls[-1] <= _pace_bound(r["hours"])),
            Figure(f"fleet 113s, {n} worker(s)", r["refusals_113"], "", target="0",
                   met=r["refusals_113"] == 0),
        ]
    return out


async def amain(quick: bool, groups: int) -> list[dict[str, Any]]:
    # Real seconds; × SCALE: 40 emulator minutes quick, 4 hours (plus 80 minutes to drain).
    seconds, drain = (4.0, 2.0) if quick else (24.0, 8.0)
    names = [f"f{i:04d}" for i in range(groups)]
    results = []
    with redis_process() as redis_url:
        for workers in (1, 2, 3):
            result = await Run(workers, names, redis_url).run(seconds, drain)
            result["groups"] = groups
            results.append(result)
            print(json.dumps(result), flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 groups, a few seconds each")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--groups", type=int, default=None)
    args = parser.parse_args(argv)
    groups = args.groups or (60 if args.quick else 300)
    results = asyncio.run(amain(args.quick, groups))
    print("| workers | messages | p50 delay | p99 delay | undelivered | calls/address/h | 113s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        calls = ", ".join(str(c) for c in r["calls_per_address_hour"].values())
        print(f"| {r['workers']} | {r['messages']} | {r['p50_s']:.0f} {_s(r, 'p50')} "
              f"| {r['p99_s']:.0f} {_s(r, 'p99')} "
              f"| {r['undelivered']} | {calls} | {r['refusals_113']} |")
    emit("fleet", figures(results))


if __name__ == "__main__":
    main()
