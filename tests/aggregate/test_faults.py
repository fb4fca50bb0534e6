"""The follow engine under faults and hostile traffic, on the virtual clock: each test is one
defect the two engines this one replaced had (issue: one follow engine), and fails on them."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from agupshup import errors as E
from agupshup.aggregate import BACKOFF_CAP, Follower
from agupshup.checkpoint import Checkpoint, FollowCursor, MemoryCheckpointStore
from agupshup.models import Message
from agupshup.planner import FAIR_CAP, PLAN_FILL, PUBLIC, Budget, UnreadableGroups
from agupshup.virtualclock import VirtualClock

from .helpers import Sim, take

PRIVATE = [f"s{i}" for i in range(3)]
OPEN = [f"p{i}" for i in range(4)]
FOLLOWED = PRIVATE + OPEN


def mixed() -> Sim:
    return Sim([*FOLLOWED, "noise"], joined=PRIVATE, private=PRIVATE)


def outage(clock: VirtualClock, start: float, end: float) -> Callable[[str], Exception | None]:
    """Every call between ``start`` and ``end`` (virtual seconds) fails to connect."""

    def fault(method: str) -> Exception | None:
        if start <= clock.monotonic() < end:
            return E.ConnectError("connection refused", method=method, maybe_sent=False)
        return None

    return fault


def record_calls(sim: Sim) -> list[float]:
    """The virtual time of every call the client sends from now on."""
    stamps: list[float] = []
    before = sim.fault

    def fault(method: str) -> Exception | None:
        stamps.append(sim.clock.monotonic())
        return before(method) if before is not None else None

    sim.fault = fault
    return stamps


def assert_within_share(
    stamps: list[float], budget: Budget, extra: int = 0, also: Sequence[float] = ()
) -> None:
    """No window of the budget holds more than its share of calls (plus ``extra``, plus one
    for each time in ``also`` inside it)."""
    for w in budget.limits:
        for n, t in enumerate(stamps):
            more = sum(1 for u in also if t <= u < t + w.length)
            cap = int(w.limit * budget.share) + extra + more
            inside = sum(1 for u in stamps[n:n + cap + 1] if u < t + w.length)
            assert inside <= cap, f"{inside} calls in a {w.name} window from {t:.0f}s"


async def anext_within(follower: Follower, clock: VirtualClock, seconds: float) -> object:
    """``anext()`` cancelled after ``seconds`` of virtual time (None then), as a consumer's
    timeout would: at whatever await the follower is in."""
    nxt = asyncio.ensure_future(anext(follower))
    timer = asyncio.ensure_future(clock.sleep(seconds))
    await asyncio.wait({nxt, timer}, return_when=asyncio.FIRST_COMPLETED)
    timer.cancel()
    if not nxt.done():
        nxt.cancel()
    await asyncio.gather(nxt, timer, return_exceptions=True)
    return None if nxt.cancelled() else nxt.result()


@pytest.mark.parametrize("at", [0.0, 30.0])
def test_a_five_minute_outage_does_not_end_a_follow(at: float) -> None:
    """Defect 1: a planned follow ended with ConnectError; now it backs off and resumes,
    whether the outage starts with the follow (its discovery and login) or during it."""
    sim = mixed()
    sim.fault = outage(sim.clock, at, at + 300)

    async def main() -> tuple[set[int], list[int], float]:
        async with sim.follow(FOLLOWED) as f:
            await sim.clock.sleep(max(0.0, at + 1 - sim.clock.monotonic()))
            posted = [sim.post(g)[0] for g in FOLLOWED]
            got = {m.id for m in await take(f, len(posted))}
            return got, posted, sim.clock.monotonic()

    got, posted, done = sim.run(main)
    assert got == set(posted)
    assert done <= at + 300 + BACKOFF_CAP + 120  # resumed within one back-off of the end


def consume_with_timeouts(timeouts: bool) -> int:
    """40 rounds of posts, each message asked for with ``anext()`` under a random short
    timeout (or none), then a drain: every message once. Returns the calls made."""
    sim = mixed()
    sim.latency = 0.5  # a call takes time, so a timeout can land while it is in flight
    rng = random.Random(7)
    got: Counter[int] = Counter()

    async def main() -> None:
        # merged_stream with a (here empty) history first: before the one engine, the
        # per-group pollers whose hand-over dropped an item when a timeout struck.
        async with sim.client() as client, client.merged_stream(FOLLOWED, follow=True) as f:
            for _ in range(40):
                for _ in sim.post(rng.choice(FOLLOWED), rng.randint(1, 3)):
                    wait = rng.uniform(0.01, 2.0) if timeouts else 3600.0
                    m = await anext_within(f, sim.clock, wait)
                    if isinstance(m, Message):
                        got[m.id] += 1
                await sim.clock.sleep(rng.uniform(0, 30))
            while sum(got.values()) < len(sim.posted):
                got[(await anext(f)).id] += 1

    sim.run(main)
    assert set(got) == set(sim.posted)
    assert max(got.values()) == 1
    return sum(sim.emulator.calls.values())


def test_timeouts_around_anext_lose_nothing_and_resend_nothing() -> None:
    """Defects 2 and 9: a timeout around ``anext()`` dropped the item in hand-over, and a
    poll it cancelled was sent again at once. Timeouts at every await: every message once,
    and about the calls of a run without timeouts."""
    assert consume_with_timeouts(True) <= 1.3 * consume_with_timeouts(False) + 5


def test_short_timeouts_still_make_progress() -> None:
    """Defect 4: each ``anext()`` restarted the walk, so timeouts shorter than a walk yielded
    nothing. Every timeout here is shorter than two calls; the burst still comes out whole."""
    sim = mixed()
    sim.latency = 1.0

    async def main() -> list[int]:
        out: list[int] = []
        async with sim.follow(OPEN) as f:
            await sim.clock.sleep(1)
            sim.post("p1", 150)
            for _ in range(2000):
                m = await anext_within(f, sim.clock, 1.5)
                if isinstance(m, Message):
                    out.append(m.id)
                if len(out) == 150:
                    break
        return out

    out = sim.run(main)
    assert sorted(out) == sorted(sim.posted)


def test_a_failure_mid_walk_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 3: a refill that failed dropped the pages it had read, and the cursor went past
    them. Here a walk of several polls meets failures on every other page."""
    monkeypatch.setattr("agupshup.aggregate._tuning.POLL_PAGES", 2)
    sim = mixed()
    store = MemoryCheckpointStore()
    checkpoint = Checkpoint(store, key="agg", every=1)
    failing = [False]
    count = [0]

    def fault(method: str) -> Exception | None:
        if failing[0] and method == "users.getJoinedGroupsStream":
            count[0] += 1
            if count[0] % 2 == 0:
                return E.ServerError(method, 129, "Please resubmit")
        return None

    sim.fault = fault
    got: Counter[int] = Counter()

    async def main() -> None:
        async with sim.follow(PRIVATE, checkpoint=checkpoint) as f:
            await sim.clock.sleep(1)
            sim.post("s0", 200)
            sim.post("noise", 50)
            sim.post("s1", 100)
            failing[0] = True
            for m in await take(f, 150):
                got[m.id] += 1
            failing[0] = False
            for m in await take(f, 150):
                got[m.id] += 1

    sim.run(main)
    wanted = {i for i, g in sim.posted.items() if g != "noise"}
    assert set(got) == wanted
    assert max(got.values()) == 1
    cursor = FollowCursor.from_json(store.data["agg"])
    assert all(i in got for i in cursor.yielded)


def test_a_flooded_public_stream_costs_delay_not_messages() -> None:
    """Defect 5: a public stream flooded by groups nobody follows was walked until the day's
    quota was gone, and followed messages were still missing hours later. Two hours of 2
    unfollowed messages a second; the followed groups post every few minutes."""
    sim = mixed()
    budget = Budget(0.8)
    posted_at: dict[int, float] = {}
    yielded_at: dict[int, float] = {}

    async def flood() -> None:
        for _ in range(2 * 3600 * 2):
            sim.emulator.insert_message("noise", "flood")
            await sim.clock.sleep(0.5)

    async def followed() -> None:
        for n in range(3 * 12):  # three hours, every five minutes
            for ident in sim.post(OPEN[n % len(OPEN)]):
                posted_at[ident] = sim.clock.monotonic()
            await sim.clock.sleep(300)

    async def main() -> None:
        async with sim.follow(OPEN, budget=budget) as f:
            tasks = [asyncio.ensure_future(flood()), asyncio.ensure_future(followed())]
            while len(yielded_at) < 36:
                m = await anext(f)
                yielded_at.setdefault(m.id, sim.clock.monotonic())
            await asyncio.gather(*tasks)

    stamps = record_calls(sim)
    sim.run(main, limit=6 * 3600)
    assert set(yielded_at) == set(posted_at)  # nothing lost, nothing unfollowed
    delays = sorted(yielded_at[i] - posted_at[i] for i in posted_at)
    assert delays[-1] < 3600  # bounded: the flood moved the groups to their own streams
    assert_within_share(stamps, budget, extra=4)  # discovery and login come on top
    assert sim.emulator.throttled == Counter()


def test_a_delay_target_spends_only_what_it_needs() -> None:
    """Defect 6: a quiet set spent the whole budget. With ``target_delay`` the plan takes the
    fewest calls that meet it: a quiet day of 50 joined groups at 60 s costs about a poll a
    minute, and every message waits less than the target."""
    groups = [f"q{i:02}" for i in range(50)]
    sim = Sim(groups, joined=groups)
    rng = random.Random(3)
    posted_at: dict[int, float] = {}
    delays: list[float] = []

    async def traffic() -> None:
        for _ in range(50):
            await sim.clock.sleep(rng.uniform(0, 2 * 86_400 / 50))
            for ident in sim.post(rng.choice(groups)):
                posted_at[ident] = sim.clock.monotonic()

    async def main() -> int:
        async with sim.follow(groups, budget=Budget(0.8, target_delay=60)) as f:
            poster = asyncio.ensure_future(traffic())
            for _ in range(50):
                m = await anext(f)
                delays.append(sim.clock.monotonic() - posted_at[m.id])
            await poster
            return f.calls

    calls = sim.run(main, limit=3 * 86_400)
    assert max(delays) <= 60
    days = sim.clock.monotonic() / 86_400
    assert calls <= days * 86_400 / 50 + 10  # one poll a 54 s (+ discovery), not 0.8 × 10 000


def test_a_group_turning_private_is_dropped_alone_and_reported_once() -> None:
    """Defect 7: a group turning private ended the whole merged stream (and crash-looped the
    fleet). It is reported once, typed, and the others go on."""
    sim = mixed()
    reports: list[UnreadableGroups] = []

    async def main() -> list[int]:
        async with sim.client() as client:
            f = client.follow_groups(OPEN, per_group=True, on_drop=reports.append)
            async with f:
                await sim.clock.sleep(1)
                first = sim.post("p2") + sim.post("p0")
                got = [m.id for m in await take(f, 2)]
                group = sim.emulator.world.group("p2")
                assert group is not None
                group.private = True
                await sim.clock.sleep(3600)
                later = sim.post("p0") + sim.post("p3")
                got += [m.id for m in await take(f, 2)]
                while not f.dropped:  # p2 is found out at its next poll
                    assert await anext_within(f, sim.clock, 600) is None
                assert f.dropped == {"p2": "private"}
                assert sorted(got) == sorted(first + later)
                return got

    sim.run(main)
    assert [r.reasons for r in reports] == [{"p2": "private"}]


def test_a_burst_does_not_starve_quiet_groups() -> None:
    """Defect 8: after a burst on one group, the others' next polls were hours away. No source
    waits more than FAIR_CAP times the uniform interval."""
    groups = [f"g{i:02}" for i in range(20)]
    sim = Sim(groups)
    budget = Budget(0.8)

    async def main() -> tuple[float, list[float]]:
        async with sim.follow(groups, per_group=True, budget=budget) as f:
            await sim.clock.sleep(1)
            sim.post("g00", 3000)
            await take(f, 3000)
            f._planned_at = -float("inf")  # re-plan with the burst in the estimates
            t0 = sim.clock.monotonic()
            posted = [sim.post(g)[0] for g in groups[1:]]
            await take(f, len(posted))
            assert f._planner is not None
            # The burst's pages lower the rate the hour and day windows allow for a while.
            rate = min(budget.calls_per_second, f._planner.ceiling) * PLAN_FILL
            return sim.clock.monotonic() - t0, [s.interval for s in f.plan.sources], rate

    took, intervals, rate = sim.run(main, limit=10 * 86_400)
    cap = FAIR_CAP * len(groups) / rate
    assert max(intervals) <= cap
    assert took <= cap + 120


def test_acknowledging_a_long_backlog_costs_no_cursor_per_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defect 9: the cursor cost O(ids seen) and was built on every acknowledgement, so a
    30 000-message backlog took minutes of CPU. It is now built per save (every ``every``)."""
    sim = Sim(["big"])
    sim.post("big", 3000)
    built = [0]
    fget = Follower.cursor.fget
    assert fget is not None

    def counting(self: Follower) -> object:
        built[0] += 1
        return fget(self)

    monkeypatch.setattr(Follower, "cursor", property(counting))

    async def main() -> int:
        checkpoint = Checkpoint(MemoryCheckpointStore(), key="big", every=100)
        async with sim.client() as client, client.follow_groups(
            ["big"], since=0, checkpoint=checkpoint
        ) as f:
            return len([await anext(f) for _ in range(3000)])

    assert sim.run(main) == 3000
    assert 3000 / 100 <= built[0] <= 3000 / 100 + 5


def test_the_public_stream_is_not_rewound_on_a_hand_over() -> None:
    """Defect 5's second mechanism (a guard: this case the old engine got right by chance):
    switching back to a shared source must not walk it from the oldest per-group head, through
    an hour of unfollowed traffic. Groups handed to the public stream catch up on their own
    streams instead."""
    sim = mixed()

    async def main() -> tuple[int, list[int]]:
        async with sim.follow(OPEN, per_group=True) as f:
            await sim.clock.sleep(1)
            sim.post("p0", 3)
            first = [m.id for m in await take(f, 3)]
            for _ in range(300):  # an hour of unfollowed traffic
                sim.post("noise", 3)
                await sim.clock.sleep(12)
            mine = sim.post("p1", 2)
            public_before = sim.calls("gupshup.getpublicstream")
            assert f._planner is not None
            f._planner.covers = lambda: [{PUBLIC: sorted(OPEN)}]  # type: ignore[method-assign]
            f._planned_at = -float("inf")  # the next plan hands every group to the public one
            got = [m.id for m in await take(f, 2)]
            assert got == mine
            return sim.calls("gupshup.getpublicstream") - public_before, first

    public_pages, first = sim.run(main)
    assert 1 <= public_pages <= 10  # handed over: its head now and then, not 60 pages of noise
    assert len(first) == 3
