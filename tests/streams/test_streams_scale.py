"""A thousand concurrent streams, and a thousand groups merged: they complete, and leave no task
or connection behind."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio

from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.server import EmulatorThread
from agupshup.emulator.throttle import ThrottleConfig

from .helpers import demo_client, stream_seed

GROUPS = 1000
EACH = 20  # two pages per group: 15 + 5


async def test_a_thousand_concurrent_group_streams() -> None:
    config = EmulatorConfig(seed=stream_seed({}, many=GROUPS, each=EACH),
                            throttle=ThrottleConfig.off())
    names = [f"g{i:04d}" for i in range(GROUPS)]
    with EmulatorThread(config) as server:  # its tasks live in its own loop, not in ours
        async with demo_client(server.base_url) as client:
            results: dict[str, list[int]] = {}

            async def walk(group: str) -> None:
                async with client.group_stream(group) as stream:
                    results[group] = [m.id async for m in stream]

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for name in names:
                        tg.start_soon(walk, name)
            assert len(results) == GROUPS
            assert all(len(ids) == EACH == len(set(ids)) for ids in results.values())
            assert client.stream_pages == 2 * GROUPS  # ⌈20/15⌉ calls a group, none wasted

            with anyio.fail_after(60):
                async with client.merged_stream(names) as merged:
                    ids = [m.id async for m in merged]
            assert len(ids) == len(set(ids)) == GROUPS * EACH
            assert set(ids) == {i for group in results.values() for i in group}

            transport: Any = client._transport
            connector = transport._session.connector
            assert not connector._acquired  # every connection is back in the pool
            assert client.stream_hub.feeds == {}
        assert transport._session is None  # the pool is closed with the client
        assert connector.closed
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert server.emulator.calls["groups.getstream"] == 4 * GROUPS


async def test_a_thousand_followers_are_released_when_cancelled() -> None:
    config = EmulatorConfig(seed=stream_seed({}, many=GROUPS, each=3),
                            throttle=ThrottleConfig.off())
    names = [f"g{i:04d}" for i in range(GROUPS)]
    with EmulatorThread(config) as server:
        async with demo_client(server.base_url) as client:
            count = 0
            with anyio.fail_after(60):
                async with client.merged_stream(names, follow=True) as merged:
                    async for _ in merged:
                        count += 1
                        if count == GROUPS * 3:
                            break  # every backlog is in; the follower is polling
                    assert merged.count == GROUPS * 3
            transport: Any = client._transport
            assert not transport._session.connector._acquired
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}
