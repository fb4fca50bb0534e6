"""The iterators against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import math
import random
from typing import Any

import anyio
import pytest

from agupshup import Client, GroupNotFound, Message
from agupshup.emulator.server import EmulatorServer
from agupshup.polling import PollPolicy

from .helpers import demo_client, group_ids, insert

FAST = PollPolicy(min_interval=0.02, max_interval=0.1)


class InsertingClient(Client):
    """Lands ``k`` new messages in the group after each page read (k drawn per read)."""

    def __init__(self, *args: Any, server: EmulatorServer, rng: random.Random,
                 most: int = 20, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._server, self._rng, self._most = server, rng, most
        self.inserted: list[int] = []
        self.inserting = True

    async def get_stream(self, group: str, start: int = 0, count: int = 15) -> list[Message]:
        page = await super().get_stream(group, start, count)
        if self.inserting:
            self.inserted += insert(self._server.emulator, group, self._rng.randint(0, self._most))
        return page


async def test_exactly_once_over_1000_messages_while_new_ones_land(
    gupshup_server: EmulatorServer,
) -> None:
    emulator = gupshup_server.emulator
    seeded = group_ids(emulator, "bulk")
    assert len(seeded) == 1000
    async with InsertingClient(
        gupshup_server.base_url, phone="9999900000", password="gupshup-demo", throttle=None,
        server=gupshup_server, rng=random.Random(6),
    ) as client:
        client.poll_policy = FAST
        backlog: list[int] = []
        live: list[int] = []
        with anyio.fail_after(30):
            async with client.group_stream("bulk", follow=True) as stream:
                async for message in stream:
                    start = backlog[0] if backlog else message.id  # the head when the walk began
                    (backlog if message.id <= start else live).append(message.id)
                    if len(backlog) + len(live) >= 1000 and client.inserting:
                        client.inserting = False  # stop growing; drain what has landed
                    if not client.inserting and len(backlog) + len(live) == len(
                        group_ids(emulator, "bulk")
                    ):
                        break
    everything = backlog + live
    assert len(client.inserted) > 500  # many pages saw the stream move under them
    assert len(everything) == len(set(everything)), "a message came twice"
    assert sorted(everything) == group_ids(emulator, "bulk"), "a message was lost"
    assert backlog == sorted(backlog, reverse=True)  # history: newest first
    assert live == sorted(live)  # new messages: oldest first
    assert set(seeded) <= set(backlog)


async def test_exactly_once_with_a_concurrent_writer(gupshup_server: EmulatorServer) -> None:
    emulator = gupshup_server.emulator
    got: list[int] = []
    async with demo_client(gupshup_server.base_url) as client:
        client.poll_policy = FAST

        async def writer() -> None:
            for _ in range(300):
                insert(emulator, "bulk", 2)
                await anyio.sleep(0.001)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer)
                async with client.group_stream("bulk", follow=True) as stream:
                    async for message in stream:
                        got.append(message.id)
                        if len(got) == 1600:
                            break
    assert len(got) == len(set(got)) == 1600
    assert sorted(got) == group_ids(emulator, "bulk")


@pytest.mark.parametrize(("group", "n"), [("bulk", 1000), ("bulk1005", 1005), ("bulk1500", 1500)])
async def test_calls_per_message(gupshup_server: EmulatorServer, group: str, n: int) -> None:
    emulator = gupshup_server.emulator
    async with demo_client(gupshup_server.base_url) as client:
        emulator.reset_counts()
        ids = [m.id async for m in client.group_stream(group)]
    calls = emulator.calls["groups.getstream"]
    assert len(ids) == n
    pages = math.ceil(n / 15)
    assert calls <= 1.02 * pages, (calls, pages)
    assert calls == pages + (n % 15 == 0)  # one empty read only when n is a page multiple


async def test_every_stream_uses_its_largest_page(gupshup_server: EmulatorServer) -> None:
    emulator = gupshup_server.emulator
    sizes: dict[str, set[str]] = {}
    async with demo_client(gupshup_server.base_url) as client:
        transport: Any = client._transport
        send = transport.send

        async def spy(fields: Any, **kw: Any) -> Any:
            f = dict(fields)
            if "range" in f:
                sizes.setdefault(f["method"], set()).add(f["range"])
            return await send(fields, **kw)

        transport.send = spy
        public = [m async for m in client.public_stream()]
        replies = [r async for r in client.replies("jumpy")]
        joined = [m async for m in client.joined_groups_stream()]
        mine = [g.group_name async for g in client.my_groups()]
        joined_groups = [g.group_name async for g in client.joined_groups()]
        group = [m async for m in client.group_stream("few")]
    assert sizes == {
        "gupshup.getPublicStream": {"15"},
        "groups.getReplies": {"30"},
        "users.getJoinedGroupsStream": {"30"},
        "users.getMyGroups": {"30"},
        "users.getJoinedGroups": {"30"},
        "groups.getStream": {"15"},
    }
    public_ids = [m.id for m in public]
    assert public_ids == sorted(set(public_ids), reverse=True)
    assert len(replies) == 3  # the hidden one only with include_hidden (owner)
    assert [m.group_name for m in joined] == ["cricket"] * 40
    assert mine[:2] == ["jumpy", "demo-bot"]
    assert len(mine) == len(set(mine)) == 2 + 5  # seeded + the stream tests' groups
    assert joined_groups == ["cricket"]
    assert len(group) == 7
    assert emulator.calls["groups.getstream"] == 1  # 7 < 15: the short page was the end
    assert emulator.calls["users.getmygroups"] == 1


async def test_hidden_replies_for_the_owner(gupshup_server: EmulatorServer) -> None:
    async with demo_client(gupshup_server.base_url) as client:
        hidden = [r async for r in client.replies("jumpy", include_hidden=True)]
        assert len(hidden) == 4
        async with client.replies("jumpy", include_hidden=True) as it:
            async for _ in it:
                break
        assert it.cursor.source == "replies+hidden:jumpy"


async def test_limit_stops_without_another_call(gupshup_server: EmulatorServer) -> None:
    emulator = gupshup_server.emulator
    async with demo_client(gupshup_server.base_url) as client:
        emulator.reset_counts()
        got = [m.id async for m in client.group_stream("bulk", limit=30)]
        assert len(got) == 30
        assert emulator.calls["groups.getstream"] == 2
        assert [m async for m in client.group_stream("bulk", limit=0)] == []
        assert emulator.calls["groups.getstream"] == 2
        ten = [g async for g in client.my_groups(limit=1)]
        assert [g.group_name for g in ten] == ["jumpy"]


async def test_errors_reach_the_consumer(gupshup_server: EmulatorServer) -> None:
    async with demo_client(gupshup_server.base_url) as client:
        with pytest.raises(GroupNotFound):
            async for _ in client.group_stream("no-such-group"):
                pass


async def test_merged_stream_over_http(gupshup_server: EmulatorServer) -> None:
    emulator = gupshup_server.emulator
    groups = ["jumpy", "few", "bulk", "quiet", "Jumpy"]
    async with demo_client(gupshup_server.base_url) as client:
        async with client.merged_stream(groups) as merged:
            got = [m async for m in merged]
        cursor = merged.cursor
    ids = [m.id for m in got]
    assert len(ids) == len(set(ids)) == 120 + 7 + 1000
    assert set(ids) == set(group_ids(emulator, "jumpy") + group_ids(emulator, "few")
                           + group_ids(emulator, "bulk"))
    assert set(cursor.heads) == {f"group:{g}" for g in ("jumpy", "few", "bulk", "quiet")}
    assert not cursor.gaps  # every history read to its end
