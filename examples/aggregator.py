"""A high-fan-out aggregator: many groups, one merged stream, into JSON Lines or SQLite,
with checkpoints so a restart goes on where it stopped.

    python examples/aggregator.py                          # embedded emulator, 40+ groups, 10 s
    python examples/aggregator.py                          # again: resumes from the checkpoint
    python examples/aggregator.py --sqlite out.sqlite3     # SQLite instead of JSON Lines
    python examples/aggregator.py --base-url URL --groups jumpy,cricket --seconds 0

Without ``--base-url`` (or ``GUPSHUP_BASE_URL``) it starts the emulator in-process with 40 extra
groups (``feed-00`` … ``feed-39``) and a publisher posting to them, so there is live traffic.
Time runs 60x faster there, in the emulator and in the throttle windows alike.

It says what it follows and how (the plan in one line) before the first message, prints each
message as it is written, and what it saved when it stops (Ctrl-C included).

Delivery: each message is written, then acknowledged (by asking for the next one); the
checkpoint saves acknowledged cursors every 25 messages or 2 seconds and on exit. After a
crash, a restart re-emits at most what came after the last save: the SQLite sink ignores those
repeats (``INSERT OR IGNORE`` by id), the JSON Lines sink may repeat a few lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

from target import Target, target

from agupshup import Checkpoint, Follower, Message, SqliteCheckpointStore

FEEDS = [f"feed-{i:02d}" for i in range(40)]


class Sink(Protocol):
    def write(self, message: Message) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8")

    def write(self, message: Message) -> None:
        record = {"id": message.id, "group": message.group_name, "sender": message.sender,
                  "text": message.text, "timestamp": message.timestamp}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class SqliteSink:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, group_name TEXT, "
            "sender TEXT, text TEXT, timestamp INTEGER)"
        )

    def write(self, message: Message) -> None:
        with self.db:  # one transaction per message: written before it is acknowledged
            self.db.execute(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?)",
                (message.id, message.group_name, message.sender, message.text,
                 message.timestamp),
            )

    def close(self) -> None:
        self.db.close()


def emulator_seed() -> dict[str, Any]:
    """The default seed plus 40 small groups owned by the demo user."""
    from agupshup.emulator.seed import DEMO_PHONE, load_seed

    seed = dict(load_seed())
    seed["groups"] = [*seed["groups"], *(
        {"name": name, "owner": DEMO_PHONE, "created_on": 1262304000000 + i,
         "description": f"Feed {i}",
         "messages": {"count": 4, "text": f"{name} item {{n}}", "start": 1275350400000 + i,
                      "step": 60000}}
        for i, name in enumerate(FEEDS)
    )]
    return seed


async def publish(api: Target) -> None:
    """The embedded emulator's traffic: the demo user posts to random feeds."""
    creds = api.credentials()
    assert creds is not None
    rng = random.Random(7)
    async with api.client(creds) as owner:
        n = 0
        while True:
            await asyncio.sleep(1.0)
            n += 1
            await owner.post_message(rng.choice(FEEDS), f"live update {n} at {time.time():.0f}")


async def aggregate(api: Target, groups: list[str], sink: Sink, checkpoint: Checkpoint,
                    limit: int | None) -> int:
    written = 0
    async with api.client() as reader, reader.merged_stream(
        groups, follow=True, checkpoint=checkpoint, limit=limit
    ) as stream:
        print(f"following {len(groups)} groups: {plan_line(stream)}", flush=True)
        try:
            async for message in stream:
                sink.write(message)
                written += 1
                print(f"  #{message.id:<8} {message.group_name:<10} {message.text[:50]}"
                      f"   ({written} written, {stream.calls} calls)", flush=True)
        finally:  # leaving the block (Ctrl-C included) saves the checkpoint
            print(f"stopped: {written} written, checkpoint saved ({stream.calls} calls)",
                  flush=True)
    return written


def plan_line(stream: Follower) -> str:
    """The plan in one line: each shared source and how often it is polled."""
    plan = stream.plan
    parts = [f"{s.source.kind} stream every {s.interval:.1f}s ({len(s.groups)} groups)"
             for s in plan.sources if s.source.kind != "group"]
    own = [s for s in plan.sources if s.source.kind == "group"]
    if own:
        parts.append(f"{len(own)} on their own streams")
    return ", ".join(parts) + f"; expected delay {plan.expected_delay:.1f}s"


def prepare(args: argparse.Namespace) -> tuple[Path, Path, bool]:
    """The output and checkpoint paths, and whether a checkpoint is there to resume from."""
    out = Path(args.sqlite or args.out)
    checkpoint_path = Path(args.checkpoint or f"{out}.checkpoint.sqlite3")
    if args.fresh:
        for path in (out, checkpoint_path):
            path.unlink(missing_ok=True)
    return out, checkpoint_path, checkpoint_path.exists()


async def main(args: argparse.Namespace) -> None:
    out, checkpoint_path, resumed = prepare(args)
    sink: Sink = SqliteSink(out) if args.sqlite else JsonLinesSink(out)
    store = SqliteCheckpointStore(checkpoint_path)
    checkpoint = Checkpoint(store, key="aggregator", every=25, interval=2.0)
    seed = emulator_seed()  # used only if the emulator is embedded
    started = time.monotonic()
    try:
        async with target(args.base_url, time_scale=args.time_scale,
                          embedded_time_scale=60.0, seed=seed) as api:
            groups = args.groups.split(",") if args.groups else (
                [*FEEDS, "cricket", "demo-bot"] if api.embedded else [])
            if not groups:
                raise SystemExit("name the groups to aggregate: --groups a,b,c")
            print(f"aggregating {len(groups)} groups from {api.base_url} into {out}"
                  + (" (embedded emulator)" if api.embedded else ""), flush=True)
            print(("resuming from " if resumed else "new checkpoint: ") + str(checkpoint_path),
                  flush=True)
            work = aggregate(api, groups, sink, checkpoint, args.limit)
            tasks: list[asyncio.Task[object]] = [asyncio.create_task(work)]
            if api.embedded:
                tasks.append(asyncio.create_task(publish(api)))
            try:
                await asyncio.wait(tasks, timeout=args.seconds or None,
                                   return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    if task.done():
                        task.result()
            finally:
                for task in tasks:  # closing the merged stream saves the checkpoint
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            windows = ", ".join(f"{w.period} {w.used}/{w.limit}" for w in api.scheduler.quota())
    finally:
        sink.close()
        store.close()
    print(f"done in {time.monotonic() - started:.1f}s: {out} ({count(out, args.sqlite)} "
          f"messages); quota used: {windows}", flush=True)


def count(out: Path, sqlite: bool) -> int:
    if sqlite:
        with contextlib.closing(sqlite3.connect(out)) as db:
            return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    return sum(1 for _ in out.open(encoding="utf-8"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="API server (default: GUPSHUP_BASE_URL, else an "
                                           "embedded emulator)")
    parser.add_argument("--groups", help="comma-separated groups (embedded default: 42)")
    sink = parser.add_mutually_exclusive_group()
    sink.add_argument("--out", default="aggregated.jsonl", help="JSON Lines file (default)")
    sink.add_argument("--sqlite", help="SQLite file instead of JSON Lines")
    parser.add_argument("--checkpoint", help="checkpoint file (default: OUT.checkpoint.sqlite3)")
    parser.add_argument("--fresh", action="store_true", help="forget output and checkpoint")
    parser.add_argument("--seconds", type=float, default=10.0, help="0: run until Ctrl-C")
    parser.add_argument("--limit", type=int, default=None, help="stop after N messages")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="emulator speed-up (embedded default 60)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse_args()))
