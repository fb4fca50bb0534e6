"""Cursors, resume, checkpoint stores, and restarts after a crash."""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest
from anyio.abc import Process

from agupshup import Message
from agupshup.checkpoint import (
    Checkpoint,
    Cursor,
    MemoryCheckpointStore,
    MergedCursor,
    RedisCheckpointStore,
    SqliteCheckpointStore,
)
from agupshup.emulator.server import EmulatorServer
from agupshup.polling import PollPolicy
from agupshup.streams import Stream

from .helpers import demo_client, group_ids, insert

FAST = PollPolicy(min_interval=0.02, max_interval=0.1)
CHILD = Path(__file__).with_name("resume_child.py")


def covered(cursor: Cursor, ident: int) -> bool:
    """Whether ``cursor`` says ``ident`` was yielded (and acknowledged)."""
    if cursor.newest is None or ident > cursor.newest:
        return False
    return cursor.phase == "live" or (cursor.oldest is not None and ident >= cursor.oldest)


def test_cursor_is_small_json_and_round_trips() -> None:
    cursor = Cursor(source="group:jumpy", phase="live", newest=100180, oldest=100001, offset=120)
    text = cursor.to_json()
    assert msgspec.json.decode(text) == {
        "source": "group:jumpy", "phase": "live", "newest": 100180, "oldest": 100001,
        "offset": 120,
    }
    assert Cursor.from_json(text) == cursor
    assert Cursor.from_json(Cursor(source="public").to_json()) == Cursor(source="public")
    merged = MergedCursor(streams={"jumpy": cursor})
    assert MergedCursor.from_json(merged.to_json()) == merged
    with pytest.raises(ValueError, match="version"):
        Cursor.from_json('{"source": "public", "v": 99}')


async def test_a_cursor_resumes_only_its_own_stream(gupshup_server: EmulatorServer) -> None:
    async with demo_client(gupshup_server.base_url) as client:
        async with client.group_stream("few", limit=2) as it:
            _ = [m async for m in it]
        with pytest.raises(ValueError, match="cannot resume"):
            client.group_stream("jumpy", resume_from=it.cursor)
        with pytest.raises(ValueError, match="cannot resume"):
            client.public_stream(resume_from=it.cursor.to_json())


async def test_resume_finishes_the_backlog_then_catches_up(gupshup_server: EmulatorServer) -> None:
    emulator = gupshup_server.emulator
    async with demo_client(gupshup_server.base_url) as client:
        first = client.group_stream("bulk", limit=100)
        ids = [m.id async for m in first]
        insert(emulator, "bulk", 30)  # lands while "down": pushes every position by 30
        emulator.reset_counts()
        second = client.group_stream("bulk", resume_from=first.cursor.to_json())
        ids += [m.id async for m in second]
        assert second.cursor.phase == "live"
        # the shift costs the re-read of 30 positions, nothing else
        assert emulator.calls["groups.getstream"] <= (900 + 30) // 15 + 1
        assert sorted(ids) == group_ids(emulator, "bulk")[:1000]
        new = insert(emulator, "bulk", 20)
        third = client.group_stream("bulk", resume_from=second.cursor)
        later = [m.id async for m in third]  # a finished walk resumed: what is new, oldest first
        assert later == sorted(later)
        assert set(later) == set(group_ids(emulator, "bulk")) - set(ids)
        assert set(new) <= set(later)
        fourth = client.group_stream("bulk", resume_from=third.cursor)
        assert [m async for m in fourth] == []


async def test_group_lists_resume_by_name(gupshup_server: EmulatorServer) -> None:
    async with demo_client(gupshup_server.base_url) as client:
        first = client.my_groups(limit=3)
        names = [g.group_name async for g in first]
        rest = [g.group_name async for g in client.my_groups(resume_from=first.cursor)]
        assert len(names + rest) == len(set(names + rest)) == 7
        again = client.my_groups(resume_from=Cursor(source="my-groups", phase="live",
                                                    seen=tuple(n.lower() for n in names + rest)))
        assert [g async for g in again] == []


async def test_checkpoint_survives_abrupt_cancellation(
    gupshup_server: EmulatorServer, tmp_path: Path
) -> None:
    """Cancel a checkpointing consumer at random moments, insert, restart; ten times over."""
    emulator = gupshup_server.emulator
    rng = random.Random(7)
    processed: list[int] = []
    target = 0
    reached = anyio.Event()
    async with SqliteCheckpointStore(tmp_path / "cursors.db") as store, \
            demo_client(gupshup_server.base_url) as client:
        client.poll_policy = FAST
        checkpoint = Checkpoint(store, key="agg", every=25)

        async def consume() -> None:
            async with client.group_stream("bulk", follow=True, checkpoint=checkpoint) as s:
                async for message in s:
                    await anyio.lowlevel.checkpoint()  # "processing": a cancellation lands here
                    processed.append(message.id)
                    if len(processed) >= target:
                        reached.set()

        for run in range(11):
            insert(emulator, "bulk", rng.randint(0, 40))
            total = len(group_ids(emulator, "bulk"))
            target = total if run == 10 else min(total, len(processed) + rng.randint(1, 150))
            reached = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                with anyio.fail_after(10):
                    await reached.wait()
                for _ in range(rng.randint(0, 3)):  # let it run on a little, at random
                    await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()
    # a cancelled consumer saves what it acknowledged: nothing is lost and nothing repeats
    assert sorted(processed) == group_ids(emulator, "bulk")
    assert len(processed) == len(set(processed))


async def test_merged_stream_resumes_from_its_checkpoint(gupshup_server: EmulatorServer) -> None:
    emulator = gupshup_server.emulator
    store = MemoryCheckpointStore()
    groups = ["jumpy", "few", "bulk", "quiet"]
    got: list[int] = []
    async with demo_client(gupshup_server.base_url) as client:
        for _ in range(4):
            checkpoint = Checkpoint(store, every=10)
            async with client.merged_stream(groups, checkpoint=checkpoint) as merged:
                async for message in merged:
                    got.append(message.id)
                    if merged.count == 150:
                        break
            insert(emulator, "few", 3)
        checkpoint = Checkpoint(store, every=10)
        async with client.merged_stream(groups, checkpoint=checkpoint) as merged:
            got += [m.id async for m in merged]
    everything = set(group_ids(emulator, "jumpy") + group_ids(emulator, "few")
                     + group_ids(emulator, "bulk"))
    assert len(got) == len(set(got))
    assert set(got) == everything


async def test_kill_between_checkpoints_loses_nothing(
    gupshup_server: EmulatorServer, tmp_path: Path
) -> None:
    """SIGKILL a checkpointing aggregator mid-stream and restart it: every message arrives; the
    repeats are exactly the ones yielded after its last checkpoint, no more than ``every``."""
    emulator = gupshup_server.emulator
    db, every = tmp_path / "agg.db", 10
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [sys.executable, str(CHILD), gupshup_server.base_url, str(db), "bulk", str(every)]

    async def run(stop: Any) -> list[int]:
        out: list[int] = []
        process: Process = await anyio.open_process(args, env=env)
        try:
            assert process.stdout is not None
            buffer = b""
            with anyio.fail_after(30):
                while not stop(out):
                    chunk = await process.stdout.receive()
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    out += [int(line) for line in lines]
            process.send_signal(signal.SIGKILL)  # no cleanup, no final save
            await process.wait()
            async for chunk in process.stdout:  # what it printed before dying
                buffer += chunk
            out += [int(line) for line in buffer.split(b"\n") if line]
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()
        return out

    first = await run(lambda out: len(out) >= 137)
    async with SqliteCheckpointStore(db) as store:
        raw = await store.load("aggregator")
    assert raw is not None
    saved = Cursor.from_json(raw)
    landed = insert(emulator, "bulk", 25)  # while the aggregator is down
    everything = set(group_ids(emulator, "bulk"))
    second = await run(lambda out: everything <= set(first) | set(out))

    assert set(first) | set(second) == everything  # nothing lost
    assert len(second) == len(set(second))
    repeats = [i for i in second if i in set(first)]
    unsaved = [i for i in first if not covered(saved, i)]
    assert sorted(repeats) == sorted(unsaved)  # repeats: exactly the un-checkpointed window
    assert len(repeats) <= every
    assert set(landed) <= set(second)


async def test_sqlite_and_redis_stores(tmp_path: Path) -> None:
    store = SqliteCheckpointStore(tmp_path / "c.db")
    assert await store.load("k") is None
    await store.save("k", "one")
    await store.save("k", "two")
    assert await store.load("k") == "two"
    store.close()
    reopened = SqliteCheckpointStore(tmp_path / "c.db")
    assert await reopened.load("k") == "two"
    await reopened.delete("k")
    assert await reopened.load("k") is None
    reopened.close()
    with pytest.raises(RuntimeError):
        await reopened.load("k")

    class FakeRedis:
        def __init__(self) -> None:
            self.data: dict[str, bytes] = {}

        async def get(self, name: str) -> bytes | None:
            return self.data.get(name)

        async def set(self, name: str, value: str) -> bool:
            self.data[name] = value.encode()
            return True

        async def delete(self, *names: str) -> int:
            return sum(self.data.pop(n, None) is not None for n in names)

    fake = FakeRedis()
    redis_store = RedisCheckpointStore(fake, prefix="t:")
    await redis_store.save("k", Cursor(source="public").to_json())
    assert list(fake.data) == ["t:k"]
    assert Cursor.from_json(await redis_store.load("k") or "") == Cursor(source="public")
    await redis_store.delete("k")
    assert await redis_store.load("k") is None


async def test_what_counts_as_acknowledged(gupshup_server: EmulatorServer) -> None:
    store = MemoryCheckpointStore()

    def saved() -> Cursor:
        return Cursor.from_json(store.data["k"])

    async def fail_at_fifth(stream: Stream[Message], seen: list[int]) -> None:
        async with stream:
            async for message in stream:
                seen.append(message.id)
                if stream.count == 5:
                    raise RuntimeError("processing failed")  # message 25 is not done

    async with demo_client(gupshup_server.base_url) as client:
        checkpoint = Checkpoint(store, key="k", every=1000)
        seen: list[int] = []
        async with client.group_stream("bulk", checkpoint=checkpoint) as stream:
            async for message in stream:
                seen.append(message.id)
                if stream.count == 20:
                    break  # a normal exit: the consumer was done with message 20
        assert saved().oldest == seen[-1]

        with pytest.raises(RuntimeError):
            await fail_at_fifth(client.group_stream("bulk", checkpoint=checkpoint), seen)
        assert saved().oldest == seen[-2]  # the failed one comes again on resume

        stream = client.group_stream("bulk", checkpoint=checkpoint)
        async for message in stream:
            seen.append(message.id)
            if stream.count == 3:
                break
        assert seen[-3] == seen[-4]  # the failed one, again
        await stream.commit()  # the consumer says it is done with all three
        assert saved().oldest == seen[-1]
        await stream.aclose()
        assert store.saves == 3  # one per normal exit or failure, one for the commit


async def test_a_store_given_a_url_closes_its_own_redis_client() -> None:
    import redis  # noqa: F401  (the test extra has it: missing, this fails rather than skips)

    store = RedisCheckpointStore("redis://127.0.0.1:1/0")  # never connected
    closed: list[bool] = []
    real_aclose = store.redis.aclose  # type: ignore[attr-defined]

    async def aclose() -> None:
        closed.append(True)
        await real_aclose()

    store.redis.aclose = aclose  # type: ignore[attr-defined]
    async with store:
        pass
    await store.aclose()  # idempotent
    assert closed == [True]
    borrowed = RedisCheckpointStore(store.redis)
    await borrowed.aclose()  # a client the caller owns stays open
    assert closed == [True]


async def test_the_old_spellings_still_work_and_warn() -> None:
    import agupshup
    from agupshup import checkpoint

    with pytest.warns(DeprecationWarning, match="SqliteCheckpointStore"):
        assert agupshup.SQLiteCheckpointStore is SqliteCheckpointStore  # type: ignore[attr-defined]
    with pytest.warns(DeprecationWarning, match="SqliteCheckpointStore"):
        assert checkpoint.SQLiteCheckpointStore is SqliteCheckpointStore  # type: ignore[attr-defined]
    assert "SQLiteCheckpointStore" not in agupshup.__all__
    with pytest.warns(DeprecationWarning, match=r"RedisCheckpointStore\(url\)"):
        store = RedisCheckpointStore.from_url("redis://127.0.0.1:1/0", prefix="p:")
    assert store.prefix == "p:"
    await store.aclose()
