"""A bot's run, as a process of its own: a default Client makes N calls and exits (for
test_first_day's restart test). Windows shrunk to match the test's emulator."""

from __future__ import annotations

import asyncio
import sys

from agupshup import Client, Throttle
from agupshup.throttle import Window

WINDOWS = (Window("minute", 6, 10.0, 5),)


async def main(base_url: str, calls: int) -> None:
    async with Client(base_url, throttle=Throttle(windows=WINDOWS)) as client:
        for _ in range(calls):
            await client.get_info("jumpy")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
