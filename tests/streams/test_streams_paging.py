"""The paging algorithms over a fake moving stream: exactly once, and no wasted call."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from agupshup import FakeClock, QuotaExhausted, ThrottleLimitExceeded
from agupshup.models import QuotaWindow
from agupshup.paging import (
    IdState,
    NameState,
    Reader,
    Source,
    catch_up,
    hold_delay,
    walk_back,
    walk_names,
)


@dataclass
class Item:
    id: int
    name: str = ""


@dataclass
class FakeStream:
    """A newest-first stream that grows at the head; ``before_read`` may grow it per call."""

    size: int = 0
    page: int = 15
    before_read: Callable[[FakeStream], None] | None = None
    items: list[Item] = field(default_factory=list)  # oldest first
    reads: list[tuple[int, int]] = field(default_factory=list)
    next_id: int = 1000

    def __post_init__(self) -> None:
        self.add(self.size)

    def add(self, n: int) -> None:
        for _ in range(n):
            self.next_id += 1 + self.next_id % 3  # ids grow, not densely
            self.items.append(Item(self.next_id, f"G{self.next_id}"))

    async def fetch(self, start: int, count: int) -> Sequence[Item]:
        assert count == self.page, "every read asks for a full page"
        if self.before_read is not None:
            self.before_read(self)
        self.reads.append((start, count))
        stop = len(self.items) - start
        return self.items[max(0, stop - count) : max(0, stop)][::-1]

    def source(self) -> Source[Item]:
        return Source("fake", self.fetch, self.page, ident=lambda i: i.id)


def reader() -> Reader:
    return Reader(FakeClock(autojump=True), list)


async def collect_backlog(stream: FakeStream, state: IdState | None = None) -> list[int]:
    state = state or IdState()
    return [i.id async for i in walk_back(stream.source(), state, reader())]


async def test_a_short_page_ends_the_walk_without_another_call() -> None:
    stream = FakeStream(size=40)
    ids = await collect_backlog(stream)
    assert ids == sorted((i.id for i in stream.items), reverse=True)
    assert stream.reads == [(0, 15), (15, 15), (30, 15)]


async def test_a_page_multiple_costs_one_empty_read_only() -> None:
    stream = FakeStream(size=45)
    assert len(await collect_backlog(stream)) == 45
    assert len(stream.reads) == 4  # ⌈45/15⌉ + the one read that proves the end


async def test_an_empty_stream_costs_one_call() -> None:
    stream = FakeStream(size=0)
    state = IdState()
    assert await collect_backlog(stream, state) == []
    assert len(stream.reads) == 1
    assert state.phase == "live"
    assert state.newest is None


async def test_state_is_final_before_the_last_item_leaves() -> None:
    stream = FakeStream(size=20)
    state = IdState()
    seen = []
    async for item in walk_back(stream.source(), state, reader()):
        seen.append(item.id)
        if len(seen) == 15:  # last of a full page: the next read is already the next page
            assert state.offset == 15
        if len(seen) == 20:
            assert state.phase == "live"
    assert state.oldest == min(seen)


async def test_shifted_items_are_skipped_by_id() -> None:
    # 3 new items land before every read but the first.
    reads = 0

    def grow(s: FakeStream) -> None:
        nonlocal reads
        if reads:
            s.add(3)
        reads += 1

    stream = FakeStream(size=100, before_read=grow)
    first = stream.items[-1].id
    ids = await collect_backlog(stream)
    assert ids == sorted((i.id for i in stream.items if i.id <= first), reverse=True)


async def test_a_page_entirely_shifted_is_passed_over() -> None:
    reads = 0

    def grow(s: FakeStream) -> None:
        nonlocal reads
        if reads == 1:
            s.add(20)  # more than a page lands between two reads
        reads += 1

    stream = FakeStream(size=60, before_read=grow)
    ids = await collect_backlog(stream)
    assert len(ids) == 60
    assert len(set(ids)) == 60


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(0, 120),
    page=st.sampled_from([1, 3, 15, 30]),
    growth=st.lists(st.integers(0, 40), max_size=60),
    cut=st.integers(0, 200),
)
async def test_backlog_then_catch_up_yield_everything_exactly_once(
    size: int, page: int, growth: list[int], cut: int
) -> None:
    """Property: whatever lands between reads, backlog + catch-up = every item, once."""
    schedule = iter(growth)

    def grow(s: FakeStream) -> None:
        s.add(next(schedule, 0))

    stream = FakeStream(size=size, page=page, before_read=grow)
    source = stream.source()
    state = IdState()
    backlog: list[int] = []
    # walk part of the backlog, then resume from a copy of the state (a cursor round trip)
    async for item in walk_back(source, state, reader()):
        backlog.append(item.id)
        if len(backlog) == cut:
            break
    resumed = IdState(state.phase, state.newest, state.oldest, state.offset)
    if resumed.phase == "backlog" and len(backlog) == cut:
        backlog += [i.id async for i in walk_back(source, resumed, reader())]
    assert backlog == sorted(backlog, reverse=True)
    present = max((i.id for i in stream.items), default=None)
    newer = [i.id for i in await catch_up(source, resumed.newest, reader())]
    assert newer == sorted(newer)
    everything = backlog + newer
    assert len(everything) == len(set(everything)), "an item came twice"
    top = max(everything, default=0)
    assert set(everything) == {i.id for i in stream.items if i.id <= top}, "an item was lost"
    if present is not None:
        assert top >= present, "the catch-up missed the head"


async def test_catch_up_costs_one_call_under_a_page() -> None:
    stream = FakeStream(size=50)
    head = stream.items[-1].id
    stream.add(14)
    got = await catch_up(stream.source(), head, reader())
    assert [i.id for i in got] == [i.id for i in stream.items[-14:]]
    assert len(stream.reads) == 1


async def test_catch_up_fills_a_gap_oldest_first() -> None:
    stream = FakeStream(size=50)
    head = stream.items[-1].id
    stream.add(40)
    gap = [i.id for i in stream.items[-40:]]
    reads = 0

    def grow(s: FakeStream) -> None:
        nonlocal reads
        reads += 1
        if reads == 2:
            s.add(5)  # lands while the gap is being filled: left for the next poll

    stream.before_read = grow
    got = [i.id for i in await catch_up(stream.source(), head, reader())]
    assert got == gap  # up to the head of the first read, oldest first, each once
    # 15 new; 10 new (5 shifted); a read ahead by the 5 that the shift predicted, which finds
    # none seen (a possible gap: the burst was over); the step back: 15 new; the page with head
    assert stream.reads == [(0, 15), (15, 15), (34, 15), (30, 15), (45, 15)]
    later = [i.id for i in await catch_up(stream.source(), got[-1], reader())]
    assert later == [i.id for i in stream.items[-5:]]


async def test_catch_up_bounded_by_upto() -> None:
    stream = FakeStream(size=30)
    after, upto = stream.items[9].id, stream.items[19].id
    got = [i.id for i in await catch_up(stream.source(), after, reader(), upto=upto)]
    assert got == [i.id for i in stream.items[10:20]]


async def test_names_are_walked_once_each_even_when_the_list_shifts() -> None:
    stream = FakeStream(size=70, page=30)
    source = Source("fake-names", stream.fetch, 30, name=lambda i: i.name)
    state = NameState()
    got: list[str] = []
    async for item in walk_names(source, state, reader()):
        got.append(item.name)
        if len(got) == 10:
            stream.add(4)  # four new names at the head push every position down
    assert len(got) == len(set(got)) == 70
    assert len(stream.reads) == 3
    assert state.phase == "live"


async def test_quota_refusals_are_waited_out_on_the_clock() -> None:
    clock = FakeClock(autojump=True)
    stream = FakeStream(size=5)
    failures: list[BaseException] = [
        QuotaExhausted("minute", free_at=30.0),
        ThrottleLimitExceeded("groups.getStream", 113, "limit"),
    ]

    async def fetch(start: int, count: int) -> Sequence[Item]:
        if failures:
            raise failures.pop(0)
        return await stream.fetch(start, count)

    windows = [QuotaWindow(period="minute", length=60, limit=30, used=30, free_at=45.0)]
    source = Source("fake", fetch, 15, ident=lambda i: i.id)
    r = Reader(clock, lambda: windows)
    got = [i.id async for i in walk_back(source, IdState(), r)]
    assert len(got) == 5
    assert clock.monotonic() >= 45.0  # waited for the scheduler's window, not a fixed time
    assert r.calls == 1


def test_hold_delay() -> None:
    windows = [
        QuotaWindow(period="minute", length=60, limit=30, used=3, free_at=10.0),
        QuotaWindow(period="hour", length=3600, limit=1000, used=3, free_at=0.0,
                    held_until=70.0),
    ]
    assert math.isclose(hold_delay(windows, 5.0), 65.0)
    assert hold_delay([], 5.0) == 0.0
