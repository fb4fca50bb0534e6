"""The history walk while the group moves faster than it is read (the emulator's
``arrivals_per_read``), over real HTTP on 127.0.0.1, and the :class:`~agupshup.paging.Chase`
that places its reads."""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel
import pytest

from agupshup import Client
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.core import Emulator
from agupshup.emulator.server import EmulatorServer
from agupshup.paging import Chase

from .helpers import demo_client, group_ids, stream_seed

#: Arrivals per read → the most calls the walk of a 1 500-message group may cost, as a multiple
#: of ⌈N/15⌉ (the targets of benchmarks/streams.py; 45 only has to end).
TARGETS = {0: 1.02, 3: 1.10, 14: 1.10, 15: 1.25, 30: 1.25, 45: 1.5}


def arrivals(k: int) -> pytest.MarkDecorator:
    return pytest.mark.gupshup(arrivals_per_read=k, arrivals_groups=frozenset({"bulk1500"}))


@pytest.mark.parametrize("k", [pytest.param(k, marks=arrivals(k)) for k in sorted(TARGETS)])
async def test_the_walk_ends_and_yields_each_message_once_at_any_arrival_rate(
    gupshup_server: EmulatorServer, k: int
) -> None:
    emulator = gupshup_server.emulator
    present = group_ids(emulator, "bulk1500")
    pages = math.ceil(len(present) / 15)
    got: list[int] = []
    # a walk that does not end (it may yield nothing at all) would hang the test: fail it
    with anyio.fail_after(60):
        async with demo_client(gupshup_server.base_url) as client:
            async for message in client.group_stream("bulk1500"):
                got.append(message.id)
    calls = emulator.calls["groups.getstream"]
    assert len(got) == len(set(got)), "a message came twice"
    assert got == sorted(got, reverse=True)
    assert set(present) <= set(got), "a message present when the walk started was lost"
    assert calls <= TARGETS[k] * pages, f"{calls} calls for {pages} pages"


def test_the_knob_lands_messages_before_each_read_of_the_named_groups_only() -> None:
    emulator = Emulator(
        EmulatorConfig(seed=stream_seed(), arrivals_per_read=3, arrivals_groups=frozenset({"FEW"}))
    )

    def read(group: str) -> None:
        emulator.request({"method": "groups.getStream", "v": "1.0", "group": group})

    few, quiet = group_ids(emulator, "few"), group_ids(emulator, "quiet")
    read("few")
    read("few")
    read("quiet")
    assert len(group_ids(emulator, "few")) == len(few) + 6
    assert group_ids(emulator, "quiet") == quiet
    read("no-such-group")  # a refused read lands nothing (and does not fail)
    with pytest.raises(ValueError):
        EmulatorConfig(arrivals_per_read=-1)


def simulate(n: int, k: int, page: int = 15) -> tuple[list[int], int]:
    """A walk of ``n`` items driven by a bare :class:`Chase` while ``k`` land before each read
    but the first; (ids yielded, reads)."""
    items = list(range(1, n + 1))  # oldest first
    chase = Chase(page)
    oldest: int | None = None
    got: list[int] = []
    for reads in range(1, 20 * (n // page + 2)):
        if reads > 1:
            items += range(items[-1] + 1 if items else 1, (items[-1] if items else 0) + k + 1)
        at = chase.position()
        stop = len(items) - at
        window = items[max(0, stop - page) : max(0, stop)][::-1]
        seen = sum(1 for i in window if oldest is not None and i >= oldest)
        outcome = chase.observe(at, seen, len(window))
        if outcome == "found":
            got += window[seen:]
            oldest = got[-1]
        if outcome == "end" or (outcome == "found" and len(window) < page):
            return got, reads
    raise AssertionError("the chase did not end")


@pytest.mark.parametrize("k", [0, 1, 7, 14, 15, 16, 29, 30, 31, 45, 60, 100])
def test_the_chase_settles_on_a_steady_rate(k: int) -> None:
    got, reads = simulate(1500, k)
    assert set(range(1, 1501)) <= set(got)
    assert len(got) == len(set(got))
    assert got == sorted(got, reverse=True)
    bound = 1.02 if k == 0 else 1.10 if k < 15 else 1.25
    assert reads <= bound * 100


def test_a_miss_steps_back_to_where_nothing_can_be_skipped() -> None:
    chase = Chase(15)
    assert chase.observe(chase.position(), 0, 15) == "found"  # the head: anchor 15
    assert chase.observe(chase.position(), 5, 15) == "found"  # 5 arrived: a rate of 5 a read
    ahead = chase.position()
    assert ahead == 30 + 5 - 1  # one seen item expected at the top of the page
    assert chase.observe(ahead, 0, 15) == "gap"  # none seen: something may lie before it
    assert chase.position() == 30  # back to the anchor, which cannot skip


async def test_concurrent_walks_of_one_group_share_their_reads(
    gupshup_server: EmulatorServer,
) -> None:
    emulator = gupshup_server.emulator
    present = group_ids(emulator, "bulk")
    walks: list[list[int]] = []

    async def walk(client: Client) -> None:
        got = [m.id async for m in client.group_stream("bulk")]
        walks.append(got)

    with anyio.fail_after(60):
        async with demo_client(gupshup_server.base_url) as client:
            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(walk, client)
            alone = [m.id async for m in client.group_stream("bulk")]  # one more, on its own
    assert all(got == present[::-1] for got in walks)
    assert alone == present[::-1]
    pages = math.ceil(len(present) / 15)
    # 50 walks in step cost the reads of one; the one on its own, its own
    assert emulator.calls["groups.getstream"] == 2 * pages


class Gate:
    """A page source whose reads wait for ``release``; counts the reads sent."""

    def __init__(self, items: list[int]) -> None:
        self.items, self.sent = items, 0
        self.release = anyio.Event()

    async def fetch(self, start: int, count: int) -> list[int]:
        self.sent += 1
        snapshot = self.items[::-1][start : start + count]
        await self.release.wait()
        return snapshot


async def test_a_walk_never_shares_a_read_sent_before_its_own_last_one_completed() -> None:
    from agupshup import FakeClock
    from agupshup.paging import Place, Reader, Source

    gate = Gate(list(range(1, 31)))
    source = Source("g", gate.fetch, 15, ident=lambda i: i)
    reader = Reader(FakeClock(), list)
    early, late = Place(), Place()
    results: dict[str, list[int]] = {}

    async def read(name: str, ticket: Place) -> None:
        results[name] = list(await reader(source, 15, ticket))

    async with anyio.create_task_group() as tg:
        tg.start_soon(read, "first", early)  # sent now: the stream as it is now
        await anyio.lowlevel.checkpoint()
        late.seen = 10**6  # a walk whose last read completed after that one was sent
        gate.items += [31, 32]  # …and saw two new items at the head
        tg.start_soon(read, "own", late)
        tg.start_soon(read, "shared", Place())  # a new walk may share
        await anyio.lowlevel.checkpoint()
        gate.release.set()
    assert gate.sent == 2  # "own" sent its own; "shared" rode on the latest one in flight
    assert results["first"] == list(range(15, 0, -1))
    assert results["own"] == results["shared"] == list(range(17, 2, -1))
