"""``merged_stream(groups, follow=True, since="now")`` and ``client.follow_groups``: many groups
followed through the planner, over loopback, on a time-scaled emulator and client."""

from __future__ import annotations

import anyio
import pytest

from agupshup import Client
from agupshup.aggregate import Follower
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.server import EmulatorServer
from agupshup.emulator.traffic import READER_PASSWORD, READER_PHONE, group_names, many_groups_seed
from agupshup.streams import MergedStream

SCALE = 60.0
GROUPS = group_names(12)
JOINED = GROUPS[:6]


@pytest.fixture
def gupshup_config() -> EmulatorConfig:
    return EmulatorConfig(seed=many_groups_seed(GROUPS, joined=JOINED), time_scale=SCALE)


def _client(server: EmulatorServer) -> Client:
    return Client(server.base_url, phone=READER_PHONE, password=READER_PASSWORD,
                  time_scale=SCALE)


async def test_following_from_now_goes_through_the_planner(gupshup_server: EmulatorServer) -> None:
    emulator = gupshup_server.emulator
    async with _client(gupshup_server) as client:
        stream = client.merged_stream(GROUPS, follow=True, since="now", limit=3)
        assert isinstance(stream, Follower)
        got = []
        async with stream:
            assert {s.source.kind for s in stream.plan.sources} <= {"joined", "public"}
            posted = {emulator.insert_message(g, f"news {i}") for i, g in
                      enumerate((JOINED[0], GROUPS[-1], JOINED[1]))}
            with anyio.fail_after(30):
                got = [m.id async for m in stream]
    assert sorted(got) == sorted(posted)  # only what came after the start, each once
    assert emulator.throttled == {}


async def test_per_group_polling_stays_available(gupshup_server: EmulatorServer) -> None:
    async with _client(gupshup_server) as client:
        merged = client.merged_stream(GROUPS[:2], follow=True, since="now", planned=False)
        assert isinstance(merged, MergedStream)
        follower = client.follow_groups(GROUPS[:2], per_group=True)
        async with follower:
            assert follower.plan.mode == "per-group"
            assert {s.source.kind for s in follower.plan.sources} == {"group"}


async def test_a_backlog_is_still_walked_group_by_group(gupshup_server: EmulatorServer) -> None:
    async with _client(gupshup_server) as client:
        merged = client.merged_stream(GROUPS[:2], follow=True)
        assert isinstance(merged, MergedStream)


def test_a_negative_limit_is_refused() -> None:
    client = Client("http://127.0.0.1:9", throttle=False)
    with pytest.raises(ValueError, match="limit"):
        client.follow_groups(["a"], limit=-1)


def test_a_buffer_is_refused_on_the_planner_path() -> None:
    """The planner's follower buffers nothing: a buffer asked of it would be silently ignored."""
    client = Client("http://127.0.0.1:9", throttle=False)
    with pytest.raises(ValueError, match="buffer"):
        client.merged_stream(["a"], follow=True, since="now", buffer=4)
    assert isinstance(client.merged_stream(["a"], follow=True, since="now"), Follower)
    merged = client.merged_stream(["a"], follow=True, since="now", buffer=4, planned=False)
    assert isinstance(merged, MergedStream)
