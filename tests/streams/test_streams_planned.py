"""``merged_stream(groups, follow=True, since="now")`` and ``client.follow_groups``: many groups
followed through the planner, over loopback, on a time-scaled emulator and client."""

from __future__ import annotations

import anyio
import pytest

from agupshup import Client, ScaledClock
from agupshup.aggregate import Follower
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.server import EmulatorServer
from agupshup.emulator.traffic import READER_PASSWORD, READER_PHONE, group_names, many_groups_seed

SCALE = 60.0
GROUPS = group_names(12)
JOINED = GROUPS[:6]


@pytest.fixture
def gupshup_config() -> EmulatorConfig:
    return EmulatorConfig(seed=many_groups_seed(GROUPS, joined=JOINED), time_scale=SCALE)


def _client(server: EmulatorServer) -> Client:
    return Client(server.base_url, phone=READER_PHONE, password=READER_PASSWORD,
                  clock=ScaledClock(scale=SCALE))


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


async def test_per_group_polling_is_a_plan_of_the_same_engine(
    gupshup_server: EmulatorServer,
) -> None:
    async with _client(gupshup_server) as client:
        follower = client.follow_groups(GROUPS[:2], per_group=True)
        async with follower:
            assert follower.plan.mode == "per-group"
            assert {s.source.kind for s in follower.plan.sources} == {"group"}


async def test_every_start_is_the_one_engine(gupshup_server: EmulatorServer) -> None:
    """The backlog first, from now, from an id, from a cursor, with or without follow: one type,
    and a backlog walk yields each group's history once and ends."""
    emulator = gupshup_server.emulator
    history = {emulator.insert_message(g, f"old {g} {i}") for g in GROUPS[:2] for i in range(20)}
    async with _client(gupshup_server) as client:
        starts = [
            client.merged_stream(GROUPS[:2]),
            client.merged_stream(GROUPS[:2], follow=True),
            client.merged_stream(GROUPS[:2], follow=True, since="now"),
            client.merged_stream(GROUPS[:2], since=min(history)),
            client.merged_stream(GROUPS[:2], follow=True, per_group=True),
        ]
        assert {type(s) for s in starts} == {Follower}
        async with client.merged_stream(GROUPS[:2]) as merged:
            with anyio.fail_after(60):
                got = [m.id async for m in merged]
        assert sorted(got) == sorted(history)
        async with client.merged_stream(GROUPS[:2], since=min(history)) as merged:
            with anyio.fail_after(60):
                after = [m.id async for m in merged]
        assert sorted(after) == sorted(history - {min(history)})


def test_a_negative_limit_is_refused() -> None:
    client = Client("http://127.0.0.1:9", throttle=None)
    with pytest.raises(ValueError, match="limit"):
        client.follow_groups(["a"], limit=-1)


def test_the_old_spellings_warn_and_still_work() -> None:
    """``buffer=`` and ``planned=`` belonged to the per-group pollers the engine replaced."""
    client = Client("http://127.0.0.1:9", throttle=None)
    with pytest.warns(DeprecationWarning, match="buffer"):
        merged = client.merged_stream(["a"], follow=True, since="now", buffer=4)
    assert merged.mode == "plan"
    with pytest.warns(DeprecationWarning, match="planned"):
        merged = client.merged_stream(["a"], follow=True, since="now", planned=False)
    assert merged.mode == "per-group"
    with pytest.raises(ValueError, match="follow=True"):
        client.merged_stream(["a"], since="now")
