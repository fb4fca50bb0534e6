"""Throughput of the emulator: calls per second for a cheap and a page method, JSON and XML.

Starts ``python -m agupshup.emulator`` (throttle off) in a separate process, drives it from this
one with concurrent aiohttp requests for a few seconds per case, and prints calls/s.

    python benchmarks/emulator_throughput.py [--seconds 3] [--concurrency 32]

Finishes in well under a minute with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks._report import Figure, emit

CASES: list[tuple[str, dict[str, str]]] = [
    ("groups.getMessage json", {"method": "groups.getMessage", "group": "jumpy", "format": "json"}),
    ("groups.getMessage xml", {"method": "groups.getMessage", "group": "jumpy", "format": "xml"}),
    (
        "groups.getStream range=15 json",
        {"method": "groups.getStream", "group": "jumpy", "range": "15", "format": "json"},
    ),
    (
        "groups.getStream range=15 xml",
        {"method": "groups.getStream", "group": "jumpy", "range": "15", "format": "xml"},
    ),
]


@dataclass
class Outcome:
    name: str
    calls: int
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agupshup.emulator", "--port", "0", "--throttle", "off"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    base = proc.stdout.readline().strip()
    if not base.startswith("http://"):
        proc.kill()
        raise SystemExit(f"the emulator did not start: {base!r}")
    return proc, base


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    deadline: float,
    counts: list[int],
) -> None:
    while time.monotonic() < deadline:
        async with session.get(url, params=params) as response:
            body = await response.read()
        if response.status == 200 and b"error" not in body:
            counts[0] += 1
        else:
            counts[1] += 1


async def run_case(
    session: aiohttp.ClientSession,
    url: str,
    name: str,
    params: dict[str, str],
    seconds: float,
    concurrency: int,
) -> Outcome:
    params = {"v": "1.0", **params}
    async with session.get(url, params=params) as response:  # warm up
        await response.read()
    counts = [0, 0]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(worker(session, url, params, deadline, counts) for _ in range(concurrency))
    )
    return Outcome(name, counts[0], counts[1], time.monotonic() - started)


async def main(seconds: float, concurrency: int) -> list[Outcome]:
    proc, base = start_emulator()
    try:
        url = base + "/GupshupAPI/rest"
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            return [
                await run_case(session, url, name, params, seconds, concurrency)
                for name, params in CASES
            ]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per case")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="one second per case")
    args = parser.parse_args()
    outcomes = asyncio.run(main(1.0 if args.quick else args.seconds, args.concurrency))
    print(f"{'case':34} {'calls':>7} {'errors':>6} {'calls/s':>9}")
    for o in outcomes:
        print(f"{o.name:34} {o.calls:7d} {o.errors:6d} {o.rate:9.0f}")
    # No target: the figure says when the server, not the client, bounds a benchmark.
    emit("emulator_throughput", [
        Figure(f"emulator throughput: {o.name}", o.rate, "calls/s",
               f"{args.concurrency} concurrent raw aiohttp callers", "(informative)")
        for o in outcomes
    ])


if __name__ == "__main__":
    cli()
