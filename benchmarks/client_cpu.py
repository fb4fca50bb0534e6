"""Client CPU per call: agupshup vs raw aiohttp + json.loads, same requests, same server.

The emulator runs in a child process; CPU (user + system) is measured in this process only,
with the throttle off. Both sides send ``groups.getStream`` for a 15-message page with the
same concurrency. Target: agupshup ≤ 1.10 × the baseline.

    python benchmarks/client_cpu.py [--calls N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from agupshup import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks._report import Figure, emit
from benchmarks._server import emulator_process

CONCURRENCY = 1  # sequential: the least noisy measure of per-call CPU


async def _drive(calls: int, one: Callable[[], Awaitable[object]]) -> float:
    """CPU seconds spent in this process for ``calls`` calls of ``one``."""
    queue = iter(range(calls))

    async def worker() -> None:
        for _ in queue:
            await one()

    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.process_time() - cpu0


async def _baseline(base: str, calls: int) -> float:
    url = f"{base}/GupshupAPI/rest"
    params = {
        "method": "groups.getStream",
        "v": "1.0",
        "format": "json",
        "group": "jumpy",
        "from": "0",
        "range": "15",
    }
    async with aiohttp.ClientSession() as session:

        async def one() -> object:
            async with session.get(url, params=params) as resp:
                return json.loads(await resp.read())["response"]["messages"]

        await _drive(20, one)  # warm-up
        return await _drive(calls, one)


async def _agupshup(base: str, calls: int) -> float:
    async with Client(base, throttle=False) as client:

        async def one() -> object:
            return await client.get_stream("jumpy", 0, 15)

        await _drive(20, one)
        return await _drive(calls, one)


async def measure(base: str, calls: int, rounds: int) -> dict[str, float]:
    best_base = best_ours = float("inf")
    for _ in range(rounds):  # interleaved, best of N: the least disturbed run of each
        best_ours = min(best_ours, await _agupshup(base, calls))
        best_base = min(best_base, await _baseline(base, calls))
    return {
        "baseline_us_per_call": best_base / calls * 1e6,
        "agupshup_us_per_call": best_ours / calls * 1e6,
        "ratio": best_ours / best_base,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    calls, rounds = (200, 1) if args.quick else (args.calls, args.rounds)
    with emulator_process() as base:
        out = asyncio.run(measure(base, calls, rounds))
    print(
        f"client CPU per call: baseline (aiohttp+json.loads) {out['baseline_us_per_call']:.1f} µs,"
        f" agupshup {out['agupshup_us_per_call']:.1f} µs, ratio {out['ratio']:.3f}×"
        f" (target ≤ 1.10×)"
    )
    emit(
        "client_cpu",
        [
            Figure(
                "client CPU per call (getStream, 15 msgs)",
                out["agupshup_us_per_call"],
                "µs",
                f"aiohttp+json.loads {out['baseline_us_per_call']:.1f} µs",
                "≤ 1.10× baseline",
                out["ratio"] <= 1.10,
            ),
            Figure(
                "client CPU ratio vs baseline",
                out["ratio"],
                "×",
                "1.00×",
                "≤ 1.10×",
                out["ratio"] <= 1.10,
            ),
        ],
    )
    return out


if __name__ == "__main__":
    main()
