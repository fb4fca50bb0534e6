"""Client CPU per call: agupshup vs raw aiohttp + json.loads, same requests, same server.

The emulator runs in a child process pinned to its own core; CPU (user + system) is measured
in this process only, with the throttle off. Both sides send ``groups.getStream`` for a
15-message page, one call at a time, in short alternating batches: each pair of batches ran
under the same conditions, so the median of the per-pair ratios shrugs off the moments when
the machine was busy. Target: agupshup ≤ 1.10 × the baseline.

    python -m benchmarks.client_cpu [--batches N] [--calls-per-batch N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from agupshup import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks._report import Figure, emit
from benchmarks._server import emulator_process

Call = Callable[[], Awaitable[object]]
TARGET = 1.10


async def _cpu(calls: int, one: Call) -> float:
    """CPU seconds per call of ``one``, in this process."""
    cpu0 = time.process_time()
    for _ in range(calls):
        await one()
    return (time.process_time() - cpu0) / calls


async def _paired(base_call: Call, ours_call: Call, batches: int, calls: int) -> dict[str, float]:
    await _cpu(50, base_call)  # warm both paths (connections, caches) before measuring
    await _cpu(50, ours_call)
    base_t: list[float] = []
    ours_t: list[float] = []
    for i in range(batches):
        pair = [(base_t, base_call), (ours_t, ours_call)]
        for sink, call in pair if i % 2 == 0 else reversed(pair):  # alternate who goes first
            sink.append(await _cpu(calls, call))
    ratios = [o / b for o, b in zip(ours_t, base_t, strict=True)]
    return {
        "baseline_us_per_call": statistics.median(base_t) * 1e6,
        "agupshup_us_per_call": statistics.median(ours_t) * 1e6,
        "ratio": statistics.median(ratios),
    }


async def measure(base: str, batches: int, calls: int) -> dict[str, float]:
    url = f"{base}/GupshupAPI/rest"
    # The request the client sends for get_stream: a GET with these parameters.
    params = {
        "method": "groups.getStream",
        "v": "1.0",
        "format": "json",
        "group": "jumpy",
        "from": "0",
        "range": "15",
    }
    async with aiohttp.ClientSession() as session, Client(base, throttle=None) as client:

        async def baseline() -> object:
            async with session.get(url, params=params) as resp:
                return json.loads(await resp.read())["response"]["messages"]

        async def ours() -> object:
            return await client.get_stream("jumpy", 0, 15)

        return await _paired(baseline, ours, batches, calls)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--calls-per-batch", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    batches, calls = (6, 50) if args.quick else (args.batches, args.calls_per_batch)
    with emulator_process(pinned=True) as base:
        out = asyncio.run(measure(base, batches, calls))
    met = out["ratio"] <= TARGET
    print(
        f"client CPU per call ({batches} paired batches of {calls}): baseline (aiohttp + "
        f"json.loads) {out['baseline_us_per_call']:.1f} µs, agupshup "
        f"{out['agupshup_us_per_call']:.1f} µs; median ratio {out['ratio']:.3f}× "
        f"(target ≤ {TARGET:.2f}×)"
    )
    emit(
        "client_cpu",
        [
            Figure(
                "client CPU per call (getStream, 15 msgs)",
                out["agupshup_us_per_call"],
                "µs",
                f"aiohttp+json.loads {out['baseline_us_per_call']:.1f} µs",
                f"≤ {TARGET:.2f}× baseline",
                met,
            ),
            Figure(
                "client CPU ratio vs baseline (median of pairs)",
                out["ratio"],
                "×",
                "1.00×",
                f"≤ {TARGET:.2f}×",
                met,
            ),
        ],
    )
    return out


if __name__ == "__main__":
    main()
