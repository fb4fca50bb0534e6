"""One process of the multi-process runs: a Scheduler on a shared ledger (SQLite or Redis)
calling the emulator at full demand. Prints one JSON line: admission times and 113s seen.

    python throttle_worker.py URL WINDOWS_JSON (sqlite:PATH | redis:URL#KEY) CALLERS DURATION

It prints ``ready`` once loaded, then reads the wall-clock start time from stdin, so that every
process starts together however long interpreters take to start.
"""

from __future__ import annotations

import asyncio
import json
import sys

from throttle_http import full_demand

from agupshup.throttle import Ledger, RedisLedger, Scheduler, SqliteLedger, Window


def ledger_from(spec: str) -> Ledger:
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        return SqliteLedger(where)
    url, _, key = where.rpartition("#")
    return RedisLedger(url, key=key)


async def main(url: str, windows: str, ledger: str, callers: str, duration: str) -> None:
    sched = Scheduler(
        [Window(**w) for w in json.loads(windows)],
        ledger=ledger_from(ledger),
        interactive_reserve=0.0,
    )
    await sched.fetch_quota()  # connect (and load the scripts) before the start
    print("ready", flush=True)
    start = float(await asyncio.to_thread(sys.stdin.readline))
    admitted, limited = await full_demand(sched, url, int(callers), start, float(duration))
    await sched.aclose()
    print(json.dumps({"admitted": admitted, "limited": limited}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
