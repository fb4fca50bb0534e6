"""A checkpointing aggregator, run as a child process by test_streams_resume (then killed).

``python resume_child.py BASE_URL DB GROUP EVERY``: follows GROUP from the SQLite checkpoint in
DB and prints each message id as it is "processed", flushing every line.
"""

from __future__ import annotations

import asyncio
import sys

from agupshup import Client
from agupshup.checkpoint import Checkpoint, SqliteCheckpointStore
from agupshup.polling import PollPolicy


async def main(base_url: str, db: str, group: str, every: int) -> None:
    async with SqliteCheckpointStore(db) as store, Client(base_url, throttle=None) as client:
        client.poll_policy = PollPolicy(min_interval=0.05, max_interval=0.2)
        checkpoint = Checkpoint(store, key="aggregator", every=every)
        async with client.group_stream(group, follow=True, checkpoint=checkpoint) as stream:
            async for message in stream:
                print(message.id, flush=True)
                await asyncio.sleep(0.001)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
