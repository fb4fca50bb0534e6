"""The follower against the in-process emulator on a virtual clock: each message once, nothing
lost across overlapping sources, bursts deeper than a page, restarts and unreadable groups."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from agupshup.aggregate import Follower, follow_groups
from agupshup.checkpoint import Checkpoint, FollowCursor, MemoryCheckpointStore
from agupshup.errors import ValidationError
from agupshup.planner import JOINED, PUBLIC, Budget, Channel, Planner, UnreadableGroups

from .helpers import Sim, take

PRIVATE = [f"s{i}" for i in range(4)]  # joined, private: only the joined stream shows them
PUBLIC_JOINED = ["j0", "j1"]  # joined and public: in both shared streams
OPEN = [f"p{i}" for i in range(4)]  # public, not joined
FOLLOWED = PRIVATE + PUBLIC_JOINED + OPEN


def mixed() -> Sim:
    return Sim([*FOLLOWED, "noise"], joined=PRIVATE + PUBLIC_JOINED, private=PRIVATE)


def test_overlapping_sources_and_bursts_deeper_than_a_page() -> None:
    sim = mixed()
    got: Counter[int] = Counter()

    async def burst(f: Follower) -> None:
        await sim.clock.sleep(5)
        # 100 to a joined group (4 joined pages, and in the public stream too), 40 to an open
        # group (3 public pages), 200 unfollowed around them.
        sim.post("j0", 100)
        sim.post("noise", 100)
        sim.post("p1", 40)
        sim.post("noise", 100)
        sim.post("s2", 7)
        got.update(m.id for m in await take(f, 147))
        await sim.clock.sleep(600)
        for group in FOLLOWED:
            sim.post(group)
        got.update(m.id for m in await take(f, len(FOLLOWED)))

    async def main() -> set[object]:
        async with sim.follow(FOLLOWED) as f:
            sources = {s.source for s in f.plan.sources}
            await burst(f)
            return sources

    assert sim.run(main) == {JOINED, PUBLIC}
    wanted = {i for i, g in sim.posted.items() if g != "noise"}
    assert set(got) == wanted  # nothing lost, nothing of an unfollowed group
    assert max(got.values()) == 1  # nothing twice, though j0 is in both streams


def test_yields_only_what_arrives_after_the_start() -> None:
    sim = mixed()
    old = sim.post("p0", 20)

    async def main() -> tuple[list[int], list[int]]:
        async with sim.follow(["p0", "s1"]) as f:
            await sim.clock.sleep(1)
            new = sim.post("s1", 3) + sim.post("p0", 3)
            return [m.id for m in await take(f, 6)], new

    got, new = sim.run(main)
    assert sorted(got) == new
    assert not set(got) & set(old)


def test_since_yields_the_history_after_an_id() -> None:
    sim = mixed()
    ids = sim.post("p2", 40)

    async def main() -> list[int]:
        async with sim.follow(["p2"], since=ids[4]) as f:
            return [m.id for m in await take(f, 35)]

    assert sorted(sim.run(main)) == ids[5:]


def test_resume_from_checkpoint_loses_nothing_and_repeats_only_the_unsaved() -> None:
    sim = mixed()
    store = MemoryCheckpointStore()
    checkpoint = Checkpoint(store, key="agg", every=1)

    async def first() -> list[int]:
        async with sim.follow(FOLLOWED, checkpoint=checkpoint) as f:
            await sim.clock.sleep(1)
            sim.post("s0", 5)
            sim.post("p3", 5)
            return [m.id for m in await take(f, 6)]  # leaves 4 unread

    async def second() -> list[int]:
        await sim.clock.sleep(30)
        sim.post("j1", 3)
        async with sim.follow(FOLLOWED, checkpoint=checkpoint) as f:
            return [m.id for m in await take(f, 7)]

    seen = sim.run(first)
    assert FollowCursor.from_json(store.data["agg"]).heads
    rest = sim.run(second)
    assert not set(seen) & set(rest)
    assert sorted(seen + rest) == sorted(sim.posted)


def test_crash_repeats_only_the_unacknowledged_message() -> None:
    sim = mixed()
    checkpoint = Checkpoint(MemoryCheckpointStore(), key="agg", every=1)
    before: list[int] = []

    async def consume() -> None:
        async with sim.follow(OPEN, checkpoint=checkpoint) as f:
            await sim.clock.sleep(1)
            sim.post("p0", 4)
            async for message in f:
                before.append(message.id)
                if len(before) == 2:
                    raise RuntimeError("consumer died on its second message")

    async def crash() -> None:
        with pytest.raises(RuntimeError):
            await consume()

    async def again() -> list[int]:
        async with sim.follow(OPEN, checkpoint=checkpoint) as f:
            return [m.id for m in await take(f, 3)]

    sim.run(crash)
    after = sim.run(again)
    assert after[0] == before[1]  # the message being processed comes again, once
    assert sorted(set(before + after)) == sorted(sim.posted)


def test_unreadable_groups_raise_before_any_poll() -> None:
    sim = Sim(["p0", "secret"], private=["secret"])

    async def follow() -> None:
        async with sim.follow(["p0", "secret", "nosuch"]):
            pass

    async def main() -> dict[str, str]:
        with pytest.raises(UnreadableGroups) as caught:
            await follow()
        return caught.value.reasons

    assert sim.run(main) == {"secret": "private, and not joined", "nosuch": "no such group"}
    assert sim.calls("users.getjoinedgroupsstream") == 1  # discovery's head, before the list
    assert sim.calls("groups.getstream") == 3  # the probes (p0 has no message yet); no poll


def test_per_group_mode_polls_each_group_stream() -> None:
    sim = mixed()

    async def main() -> set[object]:
        async with sim.follow(OPEN, per_group=True) as f:
            await sim.clock.sleep(1)
            sim.post("p1", 20)
            assert len(await take(f, 20)) == 20
            return {s.source.kind for s in f.plan.sources}

    assert sim.run(main) == {"group"}
    assert sim.calls("gupshup.getpublicstream") == 0


def test_six_hours_within_the_budget() -> None:
    """Steady traffic: calls stay within the share of the day window (plus discovery)."""
    sim = mixed()
    budget = Budget(0.5)

    async def main() -> int:
        count = 0
        async with sim.follow(FOLLOWED, budget=budget) as f:
            for hour in range(6):
                for group in FOLLOWED:
                    sim.post(group)
                count += len(await take(f, len(FOLLOWED)))
                await sim.clock.sleep(3600 - hour)
        return count

    assert sim.run(main) == 6 * len(FOLLOWED)
    calls = sum(sim.emulator.calls.values())
    elapsed_days = sim.clock.monotonic() / 86_400
    assert calls <= budget.calls_per_second * 86_400 * elapsed_days + 10


def test_quiet_sources_do_not_hold_the_cursor_back() -> None:
    """A silent group's head moves with the ids known when it is polled, so the cursor's set
    of yielded ids stays small instead of growing with every message since the start."""
    sim = mixed()

    async def main() -> int:
        async with sim.follow(OPEN, per_group=True) as f:
            for _ in range(10):
                await sim.clock.sleep(600)
                sim.post("p1", 5)
                await take(f, 5)
            return len(f.cursor.yielded)

    assert sim.run(main) <= 10  # the last two batches; without the rule, all 50


def test_replan_moves_groups_off_a_flooded_public_stream_without_loss() -> None:
    """Unfollowed traffic floods the public stream (2 a second: more pages than the budget):
    the next plan polls the open groups on their own streams, each starting at the public
    stream's head, and nothing is lost or repeated across the switch."""
    sim = mixed()
    got: Counter[int] = Counter()

    async def flood(seconds: int) -> None:
        for tick in range(seconds * 2):
            await sim.clock.sleep(0.5)
            sim.post("noise")
            if tick % 120 == 0:
                sim.post(OPEN[tick // 120 % len(OPEN)])
        for group in OPEN:  # a last batch after the flood, so the reader knows when it is over
            sim.post(group)

    async def main() -> tuple[set[str], set[str]]:
        async with sim.follow(OPEN) as f:
            before = {s.source.kind for s in f.plan.sources}
            flooding = asyncio.ensure_future(flood(1800))
            while not (flooding.done() and len(got) >= len(wanted())):
                got[(await anext(f)).id] += 1
            return before, {s.source.kind for s in f.plan.sources}

    def wanted() -> set[int]:
        return {i for i, g in sim.posted.items() if g != "noise"}

    before, after = sim.run(main)
    assert before == {"public"}
    assert after == {"group"}
    assert set(got) == wanted()
    assert max(got.values()) == 1


def test_a_burst_deeper_than_the_walk_allows_is_refilled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 messages while the walk reads at most 2 pages (60) a poll: the gap is refilled from
    where the walk stopped, over several polls, while new messages keep coming; nothing is lost
    or repeated, and a restart from the checkpoint taken mid-gap loses nothing either."""
    monkeypatch.setattr("agupshup.aggregate._tuning.POLL_PAGES", 2)
    sim = mixed()
    checkpoint = Checkpoint(MemoryCheckpointStore(), key="agg", every=1)
    got: Counter[int] = Counter()

    async def first() -> None:
        async with sim.follow(["s0", "p0"], checkpoint=checkpoint) as f:
            await sim.clock.sleep(1)
            sim.post("s0", 100)
            sim.post("noise", 100)  # unfollowed: pages of the public stream carry it
            sim.post("s0", 100)
            got.update(m.id for m in await take(f, 80))
            sim.post("p0", 3)
            got.update(m.id for m in await take(f, 80))

    async def second() -> None:
        async with sim.follow(["s0", "p0"], checkpoint=checkpoint) as f:
            while len(got) < len(sim.posted) - 100:
                got[(await anext(f)).id] += 1

    sim.run(first)
    sim.run(second)
    wanted = {i for i, g in sim.posted.items() if g != "noise"}
    assert set(got) == wanted
    assert max(got.values()) <= 2  # at most the un-checkpointed message, again


def test_gaps_opening_poll_after_poll_are_merged_and_refilled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More than a walk arrives before each of several polls (a new gap above an open one):
    once the flood stops, everything is delivered, once."""
    monkeypatch.setattr("agupshup.aggregate._tuning.POLL_PAGES", 1)
    sim = mixed()
    got: Counter[int] = Counter()

    async def main() -> None:
        async with sim.follow(["s0", "s1"]) as f:
            for _ in range(6):
                sim.post("s0", 50)
                sim.post("s1", 20)
                got.update(m.id for m in await take(f, 30))
            while len(got) < len(sim.posted):
                got[(await anext(f)).id] += 1

    sim.run(main)
    assert set(got) == set(sim.posted)
    assert max(got.values()) == 1


def test_bad_group_lists_are_refused_without_a_call() -> None:
    sim = mixed()

    async def main() -> None:
        async with sim.client() as client:
            for groups in ([], ["p0", " "]):
                with pytest.raises(ValidationError):
                    follow_groups(client, groups)
            with pytest.raises(RuntimeError):
                _ = follow_groups(client, ["p0"]).plan

    sim.run(main)
    assert sum(sim.emulator.calls.values()) == 0


def test_a_cancelled_wait_leaves_every_source_due() -> None:
    sim = mixed()

    async def main() -> list[str]:
        async with sim.follow(["p0"]) as f:
            waiting = asyncio.ensure_future(anext(f))
            await sim.clock.sleep(1)  # the follower sleeps until its poll is due
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            sim.post("p0")
            return [m.group_name for m in await take(f, 1)]

    assert sim.run(main) == ["p0"]


def test_a_failed_start_ends_the_follower() -> None:
    sim = mixed()

    async def main() -> None:
        async with sim.client() as client:
            f = follow_groups(client, ["nosuch"])
            with pytest.raises(UnreadableGroups):
                await anext(f)
            with pytest.raises(StopAsyncIteration):
                await anext(f)

    sim.run(main)


def test_many_unknown_groups_are_probed_behind_the_first_deliveries() -> None:
    """30 open groups no page has shown yet, and one private: delivery starts at once through
    the public stream; the probes run in the background, and the unreadable group is raised
    when found, after which the rest is followed still."""
    opened = [f"o{i:02}" for i in range(30)]
    sim = Sim([*opened, "secret"], private=["secret"])
    world = sim.emulator.world
    o05 = world.group("o05")
    assert o05 is not None
    for hour in range(10, 0, -1):  # o05's backlog: one an hour; the public page shows o00's
        world.post(o05, "old", o05.owner, round((sim.clock.time() - 3600 * hour) * 1000))
    sim.post("o00", 15)

    async def main() -> tuple[int, set[int], dict[str, str]]:
        async with sim.follow([*opened, "secret"]) as f:
            await sim.clock.sleep(1)
            first = sim.post("o29", 2)
            got = {m.id for m in await take(f, 2)}
            probes_then = sim.calls("groups.getstream")
            with pytest.raises(UnreadableGroups) as caught:
                await take(f, 1)
            # o05's probe page seeded its rate, though the public stream had shown it as silent
            assert f._planner is not None
            assert f._planner.group_rate("o05", sim.clock.time()) > 0.5 / 3600
            later = sim.post("o00")
            got |= {m.id for m in await take(f, 1)}
            assert got == {*first, *later}
            return probes_then, {s.source for s in f.plan.sources}, caught.value.reasons

    probes_then, sources, reasons = sim.run(main)
    assert probes_then < 5
    assert sources == {PUBLIC}
    assert reasons == {"secret": "private, and not joined"}


@pytest.mark.parametrize("own_streams", [False, True])
def test_restarts_mid_backlog_lose_nothing_and_repeat_only_the_unacknowledged(
    monkeypatch: pytest.MonkeyPatch, own_streams: bool
) -> None:
    """A start from ``since`` (and one from a checkpoint after downtime) queues a backlog from
    its first pages: the checkpoint must not claim the queued part before it is taken. With
    ``own_streams`` the first plan moves the group off the public stream discovery read, so its
    own stream starts from the public stream's acknowledged head, not its live one."""
    if own_streams:
        covers = Planner.covers

        def own(planner: Planner) -> list[dict[Channel, list[str]]]:
            return [c for c in covers(planner) if all(s.kind == "group" for s in c)]

        monkeypatch.setattr(Planner, "covers", own)
    sim = mixed()
    ids = sim.post("p2", 40)
    checkpoint = Checkpoint(MemoryCheckpointStore(), key="agg", every=1)

    async def run(n: int, **kw: object) -> list[int]:
        async with sim.follow(["p2"], checkpoint=checkpoint, **kw) as f:  # type: ignore[arg-type]
            assert {s.source.kind for s in f.plan.sources} == {"group" if own_streams else "public"}
            got = [m.id for m in await take(f, n)]
            await f.aclose()  # like a crash: the last message taken is not acknowledged
            return got

    first = sim.run(lambda: run(5, since=ids[4]))
    later = sim.post("p2", 30)  # arrives while nothing runs
    second = sim.run(lambda: run(8))
    acknowledged = len(first) - 1 + len(second) - 1
    third = sim.run(lambda: run(len(ids[5:]) + len(later) - acknowledged))
    got = Counter(first + second + third)
    assert sorted(got) == ids[5:] + later  # nothing lost
    assert {i for i, n in got.items() if n > 1} == {first[-1], second[-1]}
    assert max(got.values()) == 2


def test_follow_groups_spells_per_group_one_way() -> None:
    """``mode="per-group"`` (the spelling of before) still works, with a warning."""
    sim = Sim(OPEN)

    async def main() -> str:
        async with sim.client() as client:
            with pytest.warns(DeprecationWarning, match="per_group=True"):
                follower = follow_groups(client, OPEN, mode="per-group")
            return follower.mode

    assert sim.run(main) == "per-group"
