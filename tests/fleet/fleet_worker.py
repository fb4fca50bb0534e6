"""One fleet worker, run as a child process by test_fleet (and killed with SIGKILL).

``python fleet_worker.py BASE_URL REDIS_URL NS ADDRESS GROUPS SCALE LEASE``: follows its share of
the comma-separated GROUPS from ADDRESS with the fleet ``NS``, publishes to the feed ``NS:feed``
and prints each message as ``id group`` once "processed", flushing every line.
"""

from __future__ import annotations

import asyncio
import sys

from agupshup import Client, Throttle
from agupshup.fleet import FleetWorker, RedisStreamSink
from agupshup.polling import PollPolicy
from agupshup.throttle import scaled_windows

#: Checkpoint every this many items: what a takeover may re-yield (plus the one in hand).
EVERY = 3


async def main(
    base: str, redis: str, ns: str, address: str, groups: str, scale: float, lease: float
) -> None:
    client = Client(base, local_address=address, throttle=Throttle(windows=scaled_windows(scale)))
    client.poll_policy = PollPolicy(min_interval=0.2, max_interval=1.0)
    sink = RedisStreamSink(redis, stream=f"{ns}:feed")
    async with client, FleetWorker(
        client, redis, groups.split(","), name=address, lease=lease, every=EVERY,
        prefix=ns, sink=sink,
    ) as worker:
        async for message in worker:
            print(message.id, message.group_name.lower(), flush=True)
    await sink.aclose()


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(*a[:5], float(a[5]), float(a[6])))
