"""``follow=True`` on a fake clock: order, pace, quota, sharing, backpressure, cancellation."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from agupshup import Client, FakeClock, QuotaExhausted
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.core import Emulator
from agupshup.emulator.state import Group as EmuGroup
from agupshup.emulator.throttle import ThrottleConfig
from agupshup.models import QuotaWindow, ThrottleTag
from agupshup.polling import PollPolicy, pace

from .helpers import (
    demo_client,
    direct_transport,
    insert,
    method_of,
    run_clock,
    settle,
    stream_seed,
)

FakeEnv = tuple[Client, FakeClock, Emulator, list[tuple[float, str]]]


def polls(log: list[tuple[float, str]], method: str = "groups.getstream") -> list[float]:
    return [t for t, m in log if m == method]


@asynccontextmanager
async def following(
    client: Client, group: str, sink: list[int], **kw: Any
) -> AsyncIterator[anyio.abc.TaskGroup]:
    """Follow ``group`` in a background task, appending ids to ``sink``; cancelled on exit."""

    async def consume() -> None:
        async with client.group_stream(group, follow=True, **kw) as stream:
            async for message in stream:
                sink.append(message.id)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await settle()
        yield tg
        tg.cancel_scope.cancel()


async def test_new_messages_arrive_oldest_first(fake_client: FakeEnv) -> None:
    client, clock, emulator, _log = fake_client
    got: list[int] = []
    async with following(client, "few", got):
        assert len(got) == 7  # the backlog, newest first
        assert got == sorted(got, reverse=True)
        new = insert(emulator, "few", 3)
        await run_clock(clock, 6)  # the first poll is due min_interval (5 s) after the backlog
        assert got[7:] == new
        gap = insert(emulator, "few", 40)  # more than a page: the poll pages back to fill it
        await run_clock(clock, 30)
        assert got[10:] == gap
    assert len(got) == len(set(got)) == 50


async def test_idle_streams_back_off_to_a_minute(fake_client: FakeEnv) -> None:
    client, clock, _emulator, log = fake_client
    got: list[int] = []
    async with following(client, "quiet", got):
        await run_clock(clock, 15 * 60)
    times = polls(log)
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [5, 10, 20, 40, 60]
    assert all(59 <= g <= 61 for g in gaps[4:])
    assert len(times) <= 20  # 1 backlog read + ~18 polls in 15 idle minutes
    assert got == []


async def test_activity_speeds_polling_up_and_quiet_slows_it_down(fake_client: FakeEnv) -> None:
    client, clock, emulator, log = fake_client
    got: list[int] = []
    async with following(client, "quiet", got):
        await run_clock(clock, 5 * 60)  # idle: at a minute by now
        start = clock.monotonic()
        for _ in range(60):  # a message every 2 s for two minutes
            insert(emulator, "quiet", 1)
            await run_clock(clock, 2)
        busy = [t for t in polls(log) if t > start + 60]
        assert busy
        assert max(b - a for a, b in itertools.pairwise(busy)) <= 10
        await run_clock(clock, 8 * 60)
    gaps = [b - a for a, b in itertools.pairwise(polls(log))]
    assert 59 <= gaps[-1] <= 61
    assert got == sorted(got)
    assert len(got) == 60


class HoldingScheduler:
    """A scheduler that holds every call from ``hold[0]`` to ``hold[1]`` (clock time) and, when
    ``report`` is false, does not say so in ``quota()`` (the call itself is refused)."""

    class _Slot:
        def learn(self, throttle: Any = (), limited: bool = False) -> None:
            return None

    def __init__(self, clock: FakeClock, hold: tuple[float, float], report: bool = True):
        self.clock, self.hold, self.report = clock, hold, report
        self.refused = 0

    def held(self) -> bool:
        return self.hold[0] <= self.clock.monotonic() < self.hold[1]

    @asynccontextmanager
    async def slot(self, lane: str = "bulk", *, max_wait: float | None = None) -> Any:
        if self.held():
            self.refused += 1
            raise QuotaExhausted("minute", self.hold[1], 0.0)
        yield self._Slot()

    def quota(self) -> list[QuotaWindow]:
        now = self.clock.monotonic()
        if self.held() and self.report:
            return [QuotaWindow(period="minute", length=60, limit=30, used=30,
                                free_at=self.hold[1], held_until=self.hold[1])]
        return [QuotaWindow(period="minute", length=60, limit=30, used=0, free_at=now)]


@pytest.mark.parametrize("report", [True, False], ids=["reported-hold", "refused-calls"])
async def test_a_quota_hold_slows_every_poller_but_fails_none(
    fake_world: tuple[FakeClock, Emulator], report: bool
) -> None:
    clock, emulator = fake_world
    log: list[tuple[float, str]] = []
    transport = direct_transport(emulator, lambda f: log.append((clock.monotonic(),
                                                                      method_of(f))))
    scheduler = HoldingScheduler(clock, (60.0, 360.0), report=report)
    groups = ["few", "quiet", "jumpy"]
    sinks: dict[str, list[int]] = {g: [] for g in groups}
    async with demo_client("http://emulator.invalid", transport=transport, clock=clock,
                           throttle=scheduler) as client, anyio.create_task_group() as tg:
        for g in groups:
            tg.start_soon(_follow, client, g, sinks[g])
        await run_clock(clock, 70)
        landed = {g: insert(emulator, g, 4) for g in groups}  # during the hold
        await run_clock(clock, 250)
        assert all(not set(landed[g]) & set(sinks[g]) for g in groups)  # held: no news
        await run_clock(clock, 200)
        tg.cancel_scope.cancel()
    during = [t for t, m in log if 60 <= t < 360 and m == "groups.getstream"]
    assert during == []  # nothing left while held
    for g in groups:
        assert sinks[g][-4:] == landed[g]  # after the hold, everything, in order
        assert len(sinks[g]) == len(set(sinks[g]))
    assert (scheduler.refused > 0) == (not report)


async def _follow(client: Client, group: str, sink: list[int]) -> None:
    async with client.group_stream(group, follow=True) as stream:
        async for message in stream:
            sink.append(message.id)


async def test_server_113s_slow_pollers_down_without_failing() -> None:
    clock = FakeClock()
    config = EmulatorConfig(clock=clock, seed=stream_seed(),
                            throttle=ThrottleConfig.single(limit=4, length=60))
    emulator = Emulator(config)
    log: list[tuple[float, str]] = []
    transport = direct_transport(emulator, lambda f: log.append((clock.monotonic(),
                                                                      method_of(f))))
    groups = ["few", "quiet", "demo-bot"]
    sinks: dict[str, list[int]] = {g: [] for g in groups}
    async with demo_client("http://emulator.invalid", transport=transport, clock=clock) as client:
        client.poll_policy = PollPolicy(min_interval=2, max_interval=20)
        async with anyio.create_task_group() as tg:
            for g in groups:
                tg.start_soon(_follow, client, g, sinks[g])
            landed: dict[str, list[int]] = {g: [] for g in groups}
            for _ in range(10):
                await run_clock(clock, 30)
                for g in groups:
                    landed[g] += insert(emulator, g, 2)
            await run_clock(clock, 300)
            tg.cancel_scope.cancel()
    assert sum(emulator.throttled.values()) > 0  # the server did refuse calls
    for g in groups:
        assert landed[g] == [i for i in sinks[g] if i in set(landed[g])]
        assert len(sinks[g]) == len(set(sinks[g]))


class CountingScheduler:
    """Admits everything; ``quota()`` reports the calls of the last minute (sliding)."""

    class _Slot:
        def learn(self, throttle: tuple[ThrottleTag, ...] = (), limited: bool = False) -> None:
            return None

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    @asynccontextmanager
    async def slot(self, lane: str = "bulk", *, max_wait: float | None = None) -> Any:
        self.calls.append(self.clock.monotonic())
        yield self._Slot()

    def quota(self) -> list[QuotaWindow]:
        now = self.clock.monotonic()
        used = sum(1 for t in self.calls if t > now - 60)
        return [QuotaWindow(period="minute", length=60, limit=30, used=used, free_at=now)]


async def test_many_idle_followers_share_the_quota(fake_world: tuple[FakeClock, Emulator]) -> None:
    clock, emulator = fake_world
    scheduler = CountingScheduler(clock)
    transport = direct_transport(emulator)
    groups = ["jumpy", "few", "quiet", "demo-bot", "cricket", "bulk"]
    groups += [f"extra{i}" for i in range(34)]
    for name in groups[6:]:
        emulator.world.add_group(EmuGroup(name=name, owner="9999900000"))
    async with demo_client("http://emulator.invalid", transport=transport, clock=clock,
                           throttle=scheduler) as client, anyio.create_task_group() as tg:
        for g in groups:
            tg.start_soon(_follow, client, g, [])
        await run_clock(clock, 20 * 60, step=2.0)
        tg.cancel_scope.cancel()
    late = [t for t in scheduler.calls if t >= 10 * 60]
    per_minute = len(late) / 10
    assert per_minute <= 0.8 * 30 + 1  # the followers keep to their share of the minute window
    assert per_minute >= 10  # …and use it: every stream is still polled


def test_pace() -> None:
    free = [QuotaWindow(period="minute", length=60, limit=30, used=0, free_at=0.0)]
    assert pace(60.0, 0.1, [], 0.0) == 60.0  # no scheduler: activity only
    assert pace(60.0, 0.1, free, 0.0) == 60.0  # within the share: activity only
    # 100 feeds a minute where 24 are the share: unused, the share is spent at the activity pace;
    # half used, half way to the steady rate; used, at the steady rate (or without burst)
    assert pace(60.0, 100 / 60, free, 0.0) == 60.0
    half = [QuotaWindow(period="minute", length=60, limit=30, used=12, free_at=0.0)]
    steady = 60 * (100 / 60) / 0.4
    assert pace(60.0, 100 / 60, half, 0.0) == pytest.approx(60 * (1 + (steady / 60 - 1) / 2))
    full = [QuotaWindow(period="minute", length=60, limit=30, used=24, free_at=0.0)]
    assert pace(60.0, 100 / 60, full, 0.0) == pytest.approx(steady)
    assert pace(60.0, 100 / 60, free, 0.0, burst=False) == pytest.approx(steady)
    busy = [QuotaWindow(period="minute", length=60, limit=30, used=27, free_at=0.0)]
    assert pace(10.0, 0.1, busy, 0.0) == pytest.approx(20.0)  # 90 % used: twice as slow
    held = [QuotaWindow(period="minute", length=60, limit=30, used=30, free_at=5.0,
                        held_until=100.0)]
    assert pace(10.0, 0.1, held, 0.0) >= 100.0


async def test_followers_of_one_group_share_one_poller(fake_client: FakeEnv) -> None:
    client, clock, emulator, log = fake_client
    a: list[int] = []
    b: list[int] = []
    c: list[int] = []
    async with following(client, "few", a), following(client, "few", b):
        behind = client.group_stream("few", limit=3)  # a third follower, three items in
        early = [m.id async for m in behind]
        insert(emulator, "few", 2)
        await run_clock(clock, 10)
        feed = client.stream_hub.feeds["group:few"]
        async with following(client, "few", c, resume_from=behind.cursor):
            assert feed.subscribers == 3
            for _ in range(5):
                insert(emulator, "few", 3)
                await run_clock(clock, 60)
    # 3 backlog walks (1 call each), the late one's resumed backlog and catch-up (1 each), and
    # the polls of the one shared feed: three followers cost the polls of one
    assert len(polls(log)) == 3 + 2 + feed.polls
    assert 5 <= feed.polls <= 20
    assert a == b
    assert len(a) == 7 + 2 + 15
    assert early + c == a[:3] + a[3:]  # the late follower, resumed, has it all, once
    assert client.stream_hub.feeds == {}  # the last follower gone, the feed is dropped


async def test_a_slow_follower_holds_the_poller_back(fake_client: FakeEnv) -> None:
    client, clock, emulator, _log = fake_client
    client.poll_policy = PollPolicy(min_interval=5, max_interval=60, high_water=5)
    fast: list[int] = []
    slow: list[int] = []
    gate = anyio.Event()

    async def sluggish() -> None:
        async with client.group_stream("quiet", follow=True) as stream:
            async for message in stream:
                slow.append(message.id)
                await gate.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sluggish)
        async with following(client, "quiet", fast):
            for _ in range(12):
                insert(emulator, "quiet", 3)
                await run_clock(clock, 6)
            stalled = len(fast)
            assert stalled < 36  # the poller waits for the slow one to drain
            feed = client.stream_hub.feeds["group:quiet"]
            assert all(len(s._buf) <= 5 + 3 for s in feed._subs)  # bounded buffers
            gate.set()
            await run_clock(clock, 120)
            assert len(fast) == 36
            assert slow == fast
        tg.cancel_scope.cancel()


async def test_cancelling_a_follower_leaves_nothing_behind(fake_client: FakeEnv) -> None:
    client, clock, _emulator, _log = fake_client
    got: list[int] = []
    with anyio.move_on_after(0.5):  # real seconds: the follower sleeps on the fake clock
        async with client.group_stream("few", follow=True) as stream:
            async for m in stream:
                got.append(m.id)
    assert len(got) == 7
    await settle()
    assert client.stream_hub.feeds == {}
    assert clock.sleepers == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_breaking_out_closes_the_subscription(fake_client: FakeEnv) -> None:
    client, clock, emulator, _log = fake_client

    async def ticker() -> None:
        for _ in range(30):
            await clock.advance(1)
            await settle()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with client.group_stream("few", follow=True) as stream:
            async for _ in stream:
                if stream.count == 7:
                    insert(emulator, "few", 1)
                if stream.count == 8:
                    break
        assert client.stream_hub.feeds == {}
        assert stream.cursor.phase == "live"


async def test_public_stream_and_replies_follow_too(fake_client: FakeEnv) -> None:
    client, clock, emulator, _log = fake_client
    public: list[int] = []
    replies: list[int] = []

    async def take(stream: Any, sink: list[int]) -> None:
        async with stream:
            async for item in stream:
                sink.append(item.id)

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, client.public_stream(follow=True), public)
        tg.start_soon(take, client.replies("jumpy", follow=True), replies)
        await settle()
        backlog = len(public)
        assert len(replies) == 3
        new = insert(emulator, "few", 2) + insert(emulator, "bulk", 2)
        world = emulator.world
        reply = world.reply(world.groups["jumpy"], world.groups["cricket"], "@jumpy hi",
                            "9888800001", emulator.timebase.now_ms())
        await run_clock(clock, 6)
        tg.cancel_scope.cancel()
    assert public[backlog:] == new
    assert replies[3:] == [reply.id]


async def test_followers_keep_within_the_real_schedulers_windows() -> None:
    from agupshup.throttle import Scheduler, Window

    clock = FakeClock()
    config = EmulatorConfig(clock=clock, seed=stream_seed(),
                            throttle=ThrottleConfig.single(limit=6, length=60))
    emulator = Emulator(config)
    log: list[tuple[float, str]] = []
    transport = direct_transport(emulator, lambda f: log.append((clock.monotonic(),
                                                                  method_of(f))))
    scheduler = Scheduler([Window("minute", 6, 60.0, 6)], clock=clock)
    groups = ["few", "quiet", "demo-bot", "cricket"]
    sinks: dict[str, list[int]] = {g: [] for g in groups}
    landed: dict[str, list[int]] = {g: [] for g in groups}
    async with demo_client("http://emulator.invalid", transport=transport, clock=clock,
                           throttle=scheduler) as client, anyio.create_task_group() as tg:
        for g in groups:
            tg.start_soon(_follow, client, g, sinks[g])
        for _ in range(10):
            await run_clock(clock, 60)
            for g in groups:
                landed[g] += insert(emulator, g, 1)
        await run_clock(clock, 600)
        tg.cancel_scope.cancel()
    assert sum(emulator.throttled.values()) == 0  # the scheduler kept every call in its window
    times = [t for t, _ in log]
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) <= 6
    for g in groups:
        assert sinks[g][-10:] == landed[g]
        assert len(sinks[g]) == len(set(sinks[g]))


async def test_a_timed_out_next_does_not_end_the_stream(fake_client: FakeEnv) -> None:
    """``wait_for(anext(stream), t)`` with ``t`` shorter than the poll interval: each timeout
    cancels the walk, the next call goes on from the stream's state at the stream's pace."""
    client, clock, emulator, log = fake_client
    got: list[int] = []
    timeouts = 0

    new: list[int] = []

    async def ticker() -> None:
        for second in range(60):
            await asyncio.sleep(0.02)  # real time, so that some waits for the next item time out
            if second == 12:
                new.extend(insert(emulator, "few", 3))
            await clock.advance(1)
            await settle()

    async with anyio.create_task_group() as tg, client.group_stream("few", follow=True) as stream:
        while len(got) < 7:
            got.append((await anext(stream)).id)
        tg.start_soon(ticker)
        while len(got) < 10:
            try:
                got.append((await asyncio.wait_for(anext(stream), 0.01)).id)
            except TimeoutError:
                timeouts += 1
        assert got[7:] == new
        tg.cancel_scope.cancel()
    assert timeouts > 0
    assert len(got) == len(set(got)) == 10
    # the backlog page, then polls at the idle pace (5 s, 10 s, 20 s after the previous one),
    # not one per timeout
    assert len(polls(log)) <= 4
    assert client.stream_hub.feeds == {}


async def test_a_followers_first_poll_is_not_held_back_by_the_day_window(
    fake_world: tuple[FakeClock, Emulator],
) -> None:
    """With the real windows (30/min, 1 000/h, 10 000/day), the day's steady rate is one call
    per 8.6 s: a follower polling every second must still poll after one second at first."""
    from agupshup.throttle import DEFAULT_WINDOWS, Scheduler

    clock, emulator = fake_world
    log: list[tuple[float, str]] = []
    transport = direct_transport(emulator, lambda f: log.append((clock.monotonic(),
                                                                      method_of(f))))
    scheduler = Scheduler(DEFAULT_WINDOWS, clock=clock)
    got: list[int] = []
    async with demo_client("http://emulator.invalid", transport=transport, clock=clock,
                           throttle=scheduler) as client:
        client.poll_policy = PollPolicy(min_interval=1.0, max_interval=1.0)
        async with following(client, "few", got):
            start = clock.monotonic()
            new = insert(emulator, "few", 1)
            await run_clock(clock, 3, step=0.25)
            assert got[7:] == new
    first = [t for t in polls(log) if t > start]
    assert first
    assert first[0] - start <= 1.25


async def test_a_busy_follower_keeps_to_the_long_windows_share() -> None:
    """A stream with news at every poll, for ten hours of a window of 100 calls an hour: fast
    while the hour is unused, then at its steady rate."""
    from agupshup.throttle import Scheduler, Window

    clock = FakeClock()
    emulator = Emulator(EmulatorConfig(clock=clock, seed=stream_seed(),
                                       throttle=ThrottleConfig.off()))
    log: list[tuple[float, str]] = []
    transport = direct_transport(emulator, lambda f: log.append((clock.monotonic(),
                                                                      method_of(f))))
    scheduler = Scheduler([Window("hour", 100, 3600.0, 99)], clock=clock)
    got: list[int] = []
    async with demo_client("http://emulator.invalid", transport=transport, clock=clock,
                           throttle=scheduler) as client, following(client, "few", got):
        for _ in range(10 * 60):
            insert(emulator, "few", 10)  # news at every poll, one page at most
            await run_clock(clock, 60, step=5.0)
    times = polls(log)
    hours = [sum(1 for t in times if h * 3600 <= t < (h + 1) * 3600) for h in range(10)]
    assert times[1] - times[0] <= 6  # the first poll at min_interval (5 s), not 45 s
    worst = max(sum(1 for t in times if s <= t < s + 3600) for s in times)
    # the first hour spends its unused share fast, then slows into the pressure zone (over 80 %
    # of the limit) but never reaches the limit — reads are no longer capped at 90 by a reserve
    # nobody uses, so the brake alone stops it; once the window slides, the share exactly
    assert worst < 100
    assert all(79 <= h <= 81 for h in hours[3:]), hours
