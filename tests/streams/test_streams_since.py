"""``since="now"``: follow only what arrives, for one call to learn the head; ``since=<id>``:
every later item, oldest first (one meaning of ``since`` for one stream and for many)."""

from __future__ import annotations

import anyio
import pytest

from agupshup import Client, FakeClock
from agupshup.checkpoint import Checkpoint, MemoryCheckpointStore
from agupshup.emulator.core import Emulator

from .helpers import group_ids, insert, run_clock, settle

FakeEnv = tuple[Client, FakeClock, Emulator, list[tuple[float, str]]]


async def follow_now(
    client: Client, group: str, sink: list[int], checkpoint: Checkpoint | None = None
) -> None:
    async with client.group_stream(group, follow=True, since="now",
                                   checkpoint=checkpoint) as stream:
        async for message in stream:
            sink.append(message.id)


async def test_only_new_messages_for_one_call(fake_client: FakeEnv) -> None:
    client, clock, emulator, log = fake_client
    got: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(follow_now, client, "few", got)
        await settle()
        assert [m for _, m in log] == ["groups.getstream"]  # one call: the head
        assert client.stream_hub.head("group:few") == group_ids(emulator, "few")[-1]
        new = insert(emulator, "few", 3)
        await run_clock(clock, 6)  # the first poll: min_interval after the head was read
        tg.cancel_scope.cancel()
    assert got == new
    assert sum(1 for _, m in log if m == "groups.getstream") == 2


async def test_a_stream_already_followed_costs_nothing(fake_client: FakeEnv) -> None:
    client, clock, emulator, log = fake_client
    first: list[int] = []
    second: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(follow_now, client, "few", first)
        await settle()
        reads = len(log)
        tg.start_soon(follow_now, client, "few", second)
        await settle()
        assert len(log) == reads  # the feed's head, no call
        new = insert(emulator, "few", 2)
        await run_clock(clock, 6)
        tg.cancel_scope.cancel()
    assert first == second == new


async def test_an_empty_group_followed_from_now_yields_its_first_message(
    fake_client: FakeEnv,
) -> None:
    client, clock, emulator, _log = fake_client
    got: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(follow_now, client, "quiet", got)
        await settle()
        new = insert(emulator, "quiet", 1)
        await run_clock(clock, 6)
        tg.cancel_scope.cancel()
    assert got == new


async def test_a_checkpoint_wins_over_now(fake_client: FakeEnv) -> None:
    """A bot restarted with its checkpoint goes on from it: nothing that landed while it was
    down is lost."""
    client, clock, emulator, _log = fake_client
    store = MemoryCheckpointStore()
    checkpoint = Checkpoint(store, key="bot")
    async with client.group_stream("few", follow=True, since="now",
                                   checkpoint=checkpoint) as stream:
        with anyio.move_on_after(0.2):
            async for _ in stream:
                pass
        assert stream.cursor.phase == "live"
    assert '"phase":"live"' in (await store.load("bot") or "")
    down = insert(emulator, "few", 2)  # lands while the bot is down
    got: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(follow_now, client, "few", got, checkpoint)
        await settle()
        await run_clock(clock, 6)
        tg.cancel_scope.cancel()
    assert got == down


def test_since_is_checked_before_any_call() -> None:
    client = Client(throttle=None)
    with pytest.raises(ValueError, match="follow=True"):
        client.group_stream("few", since="now")
    with pytest.raises(ValueError, match="resume_from"):
        client.group_stream("few", follow=True, since="now", resume_from='{"source":"group:few"}')
    with pytest.raises(ValueError, match="'now', a message id"):
        client.public_stream(follow=True, since="then")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="message id >= 0"):
        client.public_stream(since=-1)
    with pytest.raises(ValueError, match="resume_from"):
        client.group_stream("few", since=5, resume_from='{"source":"group:few"}')


async def test_an_id_yields_every_later_message_oldest_first(fake_client: FakeEnv) -> None:
    client, _clock, emulator, _log = fake_client
    ids = group_ids(emulator, "jumpy")
    after = ids[-20]  # more than a page (15) back: the catch-up walks two pages
    async with client.group_stream("jumpy", since=after) as stream:
        got = [m.id async for m in stream]
        assert stream.cursor.newest == ids[-1]
    assert got == ids[-19:]


async def test_an_id_then_follows(fake_client: FakeEnv) -> None:
    client, clock, emulator, _log = fake_client
    ids = group_ids(emulator, "few")
    got: list[int] = []

    async def consume() -> None:
        async with client.group_stream("few", follow=True, since=ids[-2]) as stream:
            async for message in stream:
                got.append(message.id)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await settle()
        new = insert(emulator, "few", 2)
        await run_clock(clock, 6)
        tg.cancel_scope.cancel()
    assert got == [ids[-1], *new]


async def test_follow_groups_takes_none_for_the_history(fake_client: FakeEnv) -> None:
    client, _clock, emulator, _log = fake_client
    with anyio.fail_after(10):  # from "now" nothing would come: the follow would not end
        async with client.follow_groups(["few"], since=None, limit=3) as follower:
            got = [m.id async for m in follower]
    assert follower.since == 0  # the engine's spelling of "the whole history"
    assert len(got) == 3
    assert set(got) <= set(group_ids(emulator, "few"))


async def test_a_merged_stream_from_now(fake_client: FakeEnv) -> None:
    client, clock, emulator, log = fake_client
    got: list[int] = []

    every: list[float] = []

    async def consume() -> None:
        async with client.merged_stream(["few", "jumpy"], follow=True, since="now",
                                        per_group=True) as merged:
            every.extend(s.interval for s in merged.plan.sources)
            async for message in merged:
                got.append(message.id)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await settle()
        assert len(log) == 2  # one head a group
        new = insert(emulator, "few", 2) + insert(emulator, "jumpy", 1)
        await run_clock(clock, max(every) + 1, step=max(every) / 8)
        tg.cancel_scope.cancel()
    assert sorted(got) == new
    with pytest.raises(ValueError, match="follow=True"):
        client.merged_stream(["few"], since="now")
