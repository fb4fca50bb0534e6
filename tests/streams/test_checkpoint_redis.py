"""The Redis checkpoint store against a real redis-server (started by the ``redis_url`` fixture)."""

from __future__ import annotations

from agupshup.checkpoint import Cursor, RedisCheckpointStore


async def test_redis_store_round_trip(redis_url: str) -> None:
    store = RedisCheckpointStore(redis_url.rsplit("/", 1)[0] + "/4")
    cursor = Cursor(source="group:jumpy", phase="live", newest=100180, oldest=100001, offset=120)
    try:
        assert await store.load("aggregator") is None
        await store.save("aggregator", cursor.to_json())
        assert Cursor.from_json(await store.load("aggregator") or "") == cursor
        await store.delete("aggregator")
        assert await store.load("aggregator") is None
    finally:
        await store.aclose()
