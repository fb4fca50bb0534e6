"""Streams at scale: peak memory of 1 000 concurrent streams, and calls per message.

The emulator runs in a child process (throttle off), seeded with 1 000 groups and one big group,
so neither its CPU nor its memory is counted here. Measured in this process:

* calls per message: one ``group_stream`` over N messages; calls counted by the emulator
  (``/_emulator/stats``) against ⌈N/15⌉. Target ≤ 1.02×.
* 1 000 concurrent ``group_stream`` walks (one task each), then a ``merged_stream`` of the same
  1 000 groups with ``follow=True`` that takes every backlog and then keeps 1 000 followers
  polling for a few seconds. Peak RSS of this process (``ru_maxrss``). Target ≤ 150 MB.
* the walk under fast arrivals: one ``group_stream`` over N messages while K new ones land before
  every read (the emulator's ``arrivals_per_read``, in a thread of this process), K in
  {0, 3, 14, 15, 30}. Calls against ⌈N/15⌉: ≤ 1.10× for K ≤ 14, ≤ 1.25× for 15–30, and the
  walk ends (it is stopped, and reported as not ending, past 20 × ⌈N/15⌉ calls).
* shared reads: 50 concurrent ``group_stream`` walks of that group (no arrivals) in one client.
  Calls against ⌈N/15⌉ + 1, the cost of one walk; target ≤ 1.02×.

    python benchmarks/streams.py [--quick] [--json]

Under 2 minutes with the defaults (about 20 s on 2 cores); ``--quick`` takes a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from agupshup import Client
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.seed import DEMO_PHONE, load_seed
from agupshup.emulator.server import EmulatorThread
from agupshup.emulator.throttle import ThrottleConfig
from agupshup.polling import PollPolicy
from benchmarks._report import Figure, emit
from benchmarks._server import emulator_process

RSS_TARGET_MB = 150.0
CALLS_TARGET = 1.02
#: Arrivals per read → target for the walk's calls / ⌈N/15⌉ (issue 13.1).
WALK_TARGETS = {0: 1.10, 3: 1.10, 14: 1.10, 15: 1.25, 30: 1.25}


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024


def write_seed(path: Path, groups: int, each: int, big: int) -> None:
    seed = dict(load_seed(None))
    extra: list[dict[str, Any]] = [
        {"name": f"g{i:04d}", "owner": DEMO_PHONE, "created_on": 1262304000000,
         "messages": {"count": each, "text": f"g{i:04d} message {{n}}",
                      "start": 1275350400000 + i, "step": 1000}}
        for i in range(groups)
    ]
    extra.append({"name": "big", "owner": DEMO_PHONE, "created_on": 1262304000000,
                  "messages": {"count": big, "text": "big message {n}",
                               "start": 1275350400000, "step": 1000}})
    seed["groups"] = list(seed["groups"]) + extra
    path.write_text(json.dumps(seed))


def stats(base: str, reset: bool = False) -> dict[str, Any]:
    request = urllib.request.Request(f"{base}/_emulator/stats",
                                     method="DELETE" if reset else "GET")
    with urllib.request.urlopen(request, timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


async def calls_per_message(base: str, n: int) -> dict[str, float]:
    async with Client(base, throttle=None) as client:
        stats(base, reset=True)
        got = 0
        async for _ in client.group_stream("big"):
            got += 1
    calls = stats(base)["calls"].get("groups.getstream", 0)
    pages = math.ceil(n / 15)
    assert got == n, (got, n)
    return {"messages": got, "calls": calls, "pages": pages, "ratio": calls / pages}


async def concurrent(base: str, groups: int, each: int, follow_seconds: float) -> dict[str, Any]:
    names = [f"g{i:04d}" for i in range(groups)]
    out: dict[str, Any] = {"rss_before_mb": rss_mb()}
    async with Client(base, throttle=None) as client:
        stats(base, reset=True)
        started = time.perf_counter()
        counts: list[int] = []

        async def walk(name: str) -> None:
            n = 0
            async with client.group_stream(name) as stream:
                async for _ in stream:
                    n += 1
            counts.append(n)

        await asyncio.gather(*(walk(n) for n in names))
        out["walk_seconds"] = time.perf_counter() - started
        out["walk_messages"] = sum(counts)
        out["walk_calls"] = stats(base)["calls"].get("groups.getstream", 0)
        out["walk_pages"] = groups * math.ceil(each / 15)
        out["rss_after_walks_mb"] = rss_mb()

        # 1 000 followers: every backlog through one merged stream, then live polling
        client.poll_policy = PollPolicy(min_interval=1.0, max_interval=5.0)
        stats(base, reset=True)
        started = time.perf_counter()
        got = 0
        async with client.merged_stream(names, follow=True) as merged:
            async for _ in merged:
                got += 1
                if got == groups * each:
                    out["merged_backlog_seconds"] = time.perf_counter() - started
                    break
            # nothing new arrives: the producers sit in their feeds, polling, for a while
            await asyncio.sleep(follow_seconds)
            out["followers_polling"] = len(client.stream_hub.feeds)
        out["merged_messages"] = got
        out["merged_calls"] = stats(base)["calls"].get("groups.getstream", 0)
        out["feeds_after_close"] = len(client.stream_hub.feeds)
    await asyncio.sleep(0)
    out["tasks_left"] = len(asyncio.all_tasks()) - 1
    out["peak_rss_mb"] = rss_mb()
    return out


async def _walk(base: str, limit: int) -> tuple[int, int]:
    """(messages yielded, distinct) of one walk of ``walk``, stopped after ``limit`` of them."""
    got: list[int] = []
    async with Client(base, throttle=None) as client:
        async for message in client.group_stream("walk", limit=limit):
            got.append(message.id)
    return len(got), len(set(got))


def _walk_seed(n: int) -> dict[str, Any]:
    seed = dict(load_seed(None))
    seed["groups"] = [*seed["groups"], {
        "name": "walk", "owner": DEMO_PHONE, "created_on": 1262304000000,
        "messages": {"count": n, "text": "walk {n}", "start": 1275350400000, "step": 1000}}]
    return seed


def shared_walks(n: int, walkers: int = 50) -> dict[str, Any]:
    """``walkers`` concurrent walks of an ``n``-message group in one client."""
    config = EmulatorConfig(seed=_walk_seed(n), throttle=ThrottleConfig.off())

    async def run(base: str) -> list[int]:
        async with Client(base, throttle=None) as client:

            async def walk() -> int:
                return len([m async for m in client.group_stream("walk")])

            return list(await asyncio.gather(*(walk() for _ in range(walkers))))

    with EmulatorThread(config) as server:
        counts = asyncio.run(run(server.base_url))
        calls = server.emulator.calls["groups.getstream"]
    one = n // 15 + 1
    return {"walkers": walkers, "n": n, "calls": calls, "one_walk": one, "ratio": calls / one,
            "complete": all(c == n for c in counts)}


def walk_costs(n: int) -> list[dict[str, Any]]:
    """The walk of an ``n``-message group while K messages land before each read."""
    seed = _walk_seed(n)
    pages = math.ceil(n / 15)
    out = []
    for k, target in WALK_TARGETS.items():
        config = EmulatorConfig(seed=seed, throttle=ThrottleConfig.off(), arrivals_per_read=k)
        with EmulatorThread(config) as server:
            present = {m.id for m in server.emulator.world.groups["walk"].messages}
            # a walk that never ends yields at most one page per call: bound it by items
            got, distinct = asyncio.run(_walk(server.base_url, 20 * pages * 15))
            calls = server.emulator.calls["groups.getstream"]
        ended = calls < 20 * pages and got >= len(present)
        out.append({"k": k, "n": n, "calls": calls, "pages": pages, "ratio": calls / pages,
                    "target": target, "ended": ended, "duplicates": got - distinct})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller, a few seconds")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--groups", type=int, default=1000)
    args = parser.parse_args(argv)
    each, big, follow_seconds = (20, 1500, 1.0) if args.quick else (40, 10_000, 6.0)
    groups = args.groups
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.json"
        write_seed(seed, groups, each, big)
        with emulator_process("--seed", str(seed), "--throttle", "off") as base:
            cpm = asyncio.run(calls_per_message(base, big))
            conc = asyncio.run(concurrent(base, groups, each, follow_seconds))
    walks = walk_costs(1500)
    shared = shared_walks(1500)
    print(f"streams benchmark (pid {os.getpid()}, emulator in a child process)")
    print(f"  calls per message: {cpm['calls']} calls for {cpm['messages']} messages, "
          f"⌈N/15⌉ = {cpm['pages']}: {cpm['ratio']:.3f}× (target ≤ {CALLS_TARGET}×)")
    walk_ratio = conc["walk_calls"] / conc["walk_pages"]
    print(f"  {groups} concurrent group_stream walks: {conc['walk_messages']} messages, "
          f"{conc['walk_calls']} calls vs {conc['walk_pages']} = Σ⌈n/15⌉: {walk_ratio:.3f}× "
          f"(target ≤ {CALLS_TARGET}×), {conc['walk_seconds']:.1f} s")
    print(f"  merged_stream of {groups} groups, follow=True: {conc['merged_messages']} messages "
          f"in {conc.get('merged_backlog_seconds', float('nan')):.1f} s, "
          f"{conc.get('followers_polling', 0)} followers polling for {follow_seconds:.0f} s, "
          f"{conc['merged_calls']} calls; after close: {conc['feeds_after_close']} feeds, "
          f"{conc['tasks_left']} tasks left")
    print(f"  peak RSS: {conc['peak_rss_mb']:.1f} MB (target ≤ {RSS_TARGET_MB:.0f} MB; "
          f"{conc['rss_before_mb']:.1f} MB before the streams)")
    for w in walks:
        print(f"  walk of {w['n']} messages, {w['k']} arriving before each read: {w['calls']} calls"
              f" vs ⌈N/15⌉ = {w['pages']}: {w['ratio']:.3f}× (target ≤ {w['target']}×), "
              f"{'ended' if w['ended'] else 'DID NOT END'}, {w['duplicates']} duplicates")
    print(f"  {shared['walkers']} concurrent walks of {shared['n']} messages: "
          f"{shared['calls']} calls vs {shared['one_walk']} for one walk: "
          f"{shared['ratio']:.3f}× (target ≤ {CALLS_TARGET}×), "
          f"{'every walk complete' if shared['complete'] else 'INCOMPLETE'}")
    emit("streams", [
        Figure("stream calls per message vs ⌈N/15⌉", cpm["ratio"], "×",
               f"⌈N/15⌉ = {cpm['pages']} for N = {cpm['messages']}", f"≤ {CALLS_TARGET}×",
               cpm["ratio"] <= CALLS_TARGET),
        Figure(f"{groups} concurrent streams: calls vs Σ⌈n/15⌉", walk_ratio, "×",
               f"Σ⌈n/15⌉ = {conc['walk_pages']}", f"≤ {CALLS_TARGET}×",
               walk_ratio <= CALLS_TARGET),
        Figure(f"peak RSS, {groups} concurrent streams", conc["peak_rss_mb"], "MB",
               f"{conc['rss_before_mb']:.1f} MB before the streams", f"≤ {RSS_TARGET_MB:.0f} MB",
               conc["peak_rss_mb"] <= RSS_TARGET_MB),
        *(Figure(f"walk calls vs ⌈N/15⌉, {w['k']} arrivals per read", w["ratio"], "×",
                 f"⌈N/15⌉ = {w['pages']} for N = {w['n']}", f"≤ {w['target']}×, ends",
                 w["ended"] and not w["duplicates"] and w["ratio"] <= w["target"])
          for w in walks),
        Figure(f"{shared['walkers']} concurrent walks of one group: calls vs one walk",
               shared["ratio"], "×", f"one walk = {shared['one_walk']} calls",
               f"≤ {CALLS_TARGET}×", shared["complete"] and shared["ratio"] <= CALLS_TARGET),
    ])
    result = {"calls_per_message": cpm, "concurrent": conc, "walks": walks, "shared": shared}
    if args.json:
        print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
