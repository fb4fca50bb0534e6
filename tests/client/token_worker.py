"""A worker process for test_token_store: one Client, one shared token store, one call."""

from __future__ import annotations

import asyncio
import sys

from agupshup import Client
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.tokenstore import RedisTokenStore, SqliteTokenStore


async def main(base_url: str, kind: str, where: str) -> None:
    store = SqliteTokenStore(where) if kind == "sqlite" else RedisTokenStore(where)
    async with Client(
        base_url, phone=DEMO_PHONE, password=DEMO_PASSWORD, throttle=None, token_store=store
    ) as client:
        assert await client.get_my_groups()
    if isinstance(store, RedisTokenStore):
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
