"""Run every benchmark, print one table, write the figures as JSON.

    python -m benchmarks [--quick] [--out benchmarks/results.json] [--only NAME ...]

Each benchmark runs as its own process (so one's memory and CPU do not colour another's) and
measures its own baseline in the same run. Benchmarks are not tests: nothing here fails on a
missed target; the table says which were met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._report import PREFIX, Figure

HERE = Path(__file__).resolve().parent
BENCHES = [
    "decode", "client_cpu", "throttle", "streams", "emulator_throughput", "aggregator", "fleet",
    "fleet_redis",
]


def _run(name: str, quick: bool) -> tuple[list[Figure], float, str]:
    cmd = [sys.executable, "-m", f"benchmarks.{name}", *(["--quick"] if quick else [])]
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=HERE.parent, env=env, timeout=600, check=False
    )
    elapsed = time.monotonic() - started
    figures: list[Figure] = []
    for line in proc.stdout.splitlines():
        if line.startswith(PREFIX):
            figures += [Figure(**f) for f in json.loads(line[len(PREFIX) :])["figures"]]
    status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr[-300:]}"
    return figures, elapsed, status


def main() -> None:
    parser = argparse.ArgumentParser(description="Run every agupshup benchmark.")
    parser.add_argument("--quick", action="store_true", help="small sizes: check they still run")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    parser.add_argument("--only", nargs="*", default=BENCHES, choices=BENCHES)
    args = parser.parse_args()
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "quick": args.quick,
        "benchmarks": {},
    }
    print("| figure | value | baseline | target | met |\n|---|---|---|---|---|")
    for name in args.only:
        figures, elapsed, status = _run(name, args.quick)
        for fig in figures:
            print(fig.row(), flush=True)
        if status != "ok" or not figures:
            print(f"| {name} | — | — | — | failed ({status.strip()[:120]}) |", flush=True)
        results["benchmarks"][name] = {  # type: ignore[index]
            "seconds": round(elapsed, 1),
            "status": status,
            "figures": [f.__dict__ for f in figures],
        }
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\n{results['date']} · {results['machine']} · written to {args.out}")


if __name__ == "__main__":
    main()
