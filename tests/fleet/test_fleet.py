"""The fleet on loopback: workers on three addresses, one emulator, one redis-server.

Assignment is weighted rendezvous hashing; a worker that leaves or dies hands its groups on
within a lease, resuming from the cursors in Redis; the feed holds every message exactly once;
no address ever earns a 113.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from agupshup import Client, Throttle
from agupshup.checkpoint import Cursor, MergedCursor
from agupshup.emulator.server import EmulatorServer
from agupshup.fleet import (
    FencedStore,
    FleetUnavailable,
    FleetWorker,
    RedisStreamSink,
    owner_of,
    quota_weight,
    token_holder,
)
from agupshup.models import Message, QuotaWindow
from agupshup.polling import PollPolicy
from agupshup.throttle import scaled_windows
from streams.helpers import group_ids, insert

from .conftest import ADDRESSES, GROUPS, SCALE
from .fleet_worker import EVERY

WORKER = Path(__file__).with_name("fleet_worker.py")
LEASE = 2.0
DEADLINE = 45.0
HANG = 10 * LEASE


def test_rendezvous_shares_by_weight_and_moves_only_the_leavers_groups() -> None:
    groups = [f"g{i}" for i in range(3000)]
    members = {"a": 1.0, "b": 1.0, "c": 2.0}
    owners = {g: owner_of(g, members) for g in groups}
    shares = Counter(owners.values())
    assert 650 < shares["a"] < 850
    assert 650 < shares["b"] < 850
    assert 1350 < shares["c"] < 1650
    del members["b"]
    moved = [g for g in groups if owner_of(g, members) != owners[g]]
    assert moved
    assert all(owners[g] == "b" for g in moved)
    assert owner_of("g1", {}) is None
    assert owner_of("g1", {"a": 0.0}) is None


def test_the_weight_is_the_days_quota_left_in_eighths() -> None:
    def day(used: int) -> list[QuotaWindow]:
        minute = QuotaWindow(period="minute", length=60, limit=30, used=29, free_at=0)
        return [minute, QuotaWindow(period="day", length=86400, limit=10000, used=used, free_at=0)]

    assert quota_weight([]) == 1.0
    assert quota_weight(day(0)) == 1.0
    assert quota_weight(day(1000)) == 1.0  # spending a little moves no group
    assert quota_weight(day(5000)) == 0.5
    assert quota_weight(day(10000)) == 0.125  # spent: a small share, never none


async def test_the_sink_keeps_each_message_once(redis_url: str) -> None:
    stream = f"test:{uuid.uuid4().hex}"
    sink = RedisStreamSink(redis_url, stream=stream, dedupe_ttl=60)
    try:
        first = Message(id=100001, group_name="g0000", text="hi")
        assert await sink.publish(first)
        assert not await sink.publish(first)
        assert await sink.publish(Message(id=100002, group_name="g0000"))
        entries = await sink.redis.xrange(stream)
        assert [e[1][b"id"] for e in entries] == [b"100001", b"100002"]
    finally:
        await sink.aclose()


@asynccontextmanager
async def _worker(
    server: EmulatorServer, redis_url: str, ns: str, address: str, into: list[int]
) -> AsyncIterator[FleetWorker]:
    """A worker consuming into ``into`` in a task of its own (entered and iterated there)."""
    joined: asyncio.Future[FleetWorker] = asyncio.get_running_loop().create_future()

    async def run() -> None:
        client = Client(server.base_url, local_address=address,
                        throttle=Throttle(windows=scaled_windows(SCALE)))
        client.poll_policy = PollPolicy(min_interval=0.2, max_interval=1.0)
        async with client, FleetWorker(client, redis_url, GROUPS, name=address, lease=LEASE,
                                       every=EVERY, prefix=ns) as worker:
            joined.set_result(worker)
            async for message in worker:
                into.append(message.id)

    task = asyncio.create_task(run())
    try:
        await asyncio.wait((joined, task), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        yield joined.result()
    finally:
        await _cancel(task)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task``; one that does not end within 30 s fails the test, showing where it hangs
    (rather than hanging the suite)."""
    task.cancel()
    await asyncio.wait([task], timeout=30)
    if not task.done():
        task.print_stack()
        raise AssertionError("a fleet worker did not stop within 30 s of its cancellation")
    failure = None if task.cancelled() else task.exception()
    if failure is not None:
        raise failure


async def _until(done: Callable[[], bool], what: str) -> None:
    for _ in range(int(DEADLINE / 0.1)):
        if done():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {DEADLINE}s: {what}")


def _all_ids(server: EmulatorServer) -> set[int]:
    return {i for g in GROUPS for i in group_ids(server.emulator, g)}


async def test_two_workers_split_the_groups_and_one_takes_over_when_the_other_leaves(
    gupshup_server: EmulatorServer, redis_url: str
) -> None:
    ns = f"test:{uuid.uuid4().hex}"
    got_a: list[int] = []
    got_b: list[int] = []
    async with _worker(gupshup_server, redis_url, ns, ADDRESSES[0], got_a) as a:
        stack = AsyncExitStack()
        async with stack:
            b = await stack.enter_async_context(
                _worker(gupshup_server, redis_url, ns, ADDRESSES[1], got_b)
            )
            await _until(lambda: len(a.members) == 2 and len(b.members) == 2, "both members")
            await _until(lambda: bool(a.following and b.following), "a split")
            # Each proposes its period for the shared stream; both turn on the longest.
            await _until(lambda: bool(a.periods.get(b.id) and b.periods.get(a.id)), "periods")
            source = next(iter(a.proposals))
            longest = max(a.proposals[source], b.proposals[source])
            await _until(lambda: all(max(w.proposals[source], *(
                p[source] for m, p in w.periods.items() if m != w.id)) == longest
                for w in (a, b)), "one period")
            assert not a.following & b.following
            assert a.following | b.following == set(GROUPS)
            await _until(lambda: set(got_a) | set(got_b) == _all_ids(gupshup_server), "backlog")
        # b left cleanly: its groups are released at once, and a resumes them from Redis.
        left = len(got_a)
        new = insert(gupshup_server.emulator, GROUPS[0], 2)
        new += insert(gupshup_server.emulator, GROUPS[-1], 2)
        await _until(lambda: set(got_a) | set(got_b) == _all_ids(gupshup_server), "new ones")
        # The shared stream may bring them before a's next beat takes b's claims over.
        await _until(lambda: a.following == set(GROUPS), "a holding every group")
    # Both polled the shared stream in turns, so both may have yielded a message (the feed
    # keeps it once); after the clean hand-over a re-yields nothing of b's groups.
    after = got_a[left:]
    assert len(after) == len(set(after)), "a clean hand-over repeats nothing"
    assert set(new) <= set(after)
    assert not gupshup_server.emulator.throttle.refusals


async def _read_lines(proc: asyncio.subprocess.Process, into: list[int]) -> None:
    assert proc.stdout is not None
    async for line in proc.stdout:
        into.append(int(line.split()[0]))


async def test_kill_9_one_worker_loses_nothing(
    gupshup_server: EmulatorServer, redis_url: str
) -> None:
    ns = f"test:{uuid.uuid4().hex}"
    outputs: dict[str, list[int]] = {a: [] for a in ADDRESSES}
    procs: dict[str, asyncio.subprocess.Process] = {}
    readers = []
    r = aioredis.Redis.from_url(redis_url)
    try:
        for address in ADDRESSES:
            procs[address] = proc = await asyncio.create_subprocess_exec(
                sys.executable, str(WORKER), gupshup_server.base_url, redis_url, ns, address,
                ",".join(GROUPS), str(SCALE), str(LEASE),
                stdout=asyncio.subprocess.PIPE, env={**os.environ},
            )
            readers.append(asyncio.create_task(_read_lines(proc, outputs[address])))
        members = f"{ns}:members"
        for _ in range(int(DEADLINE / 0.1)):
            if await r.zcard(members) == 3:
                break
            await asyncio.sleep(0.1)
        history = _all_ids(gupshup_server)
        rng = random.Random(18)
        for n in range(30):
            insert(gupshup_server.emulator, rng.choice(GROUPS), 1, f"live {n}")
            await asyncio.sleep(0.15)
            if n == 12:
                victim = await _busiest(r, ns)
                victims_groups = await _held_by(r, ns, victim)
                procs[victim].send_signal(signal.SIGKILL)
                await asyncio.wait_for(procs[victim].wait(), 30)
        expected = _all_ids(gupshup_server)
        for _ in range(int(DEADLINE / 0.25)):
            feed = [int(e[1][b"id"]) for e in await r.xrange(f"{ns}:feed")]
            if set(feed) >= expected:
                break
            await asyncio.sleep(0.25)
        assert sorted(feed) == sorted(expected), "the feed: every message, exactly once"
        printed = Counter(i for out in outputs.values() for i in out)
        assert set(printed) == expected
        # Workers take turns on the shared stream, and a takeover re-reads the dead worker's
        # groups from its last checkpoint; a survivor that reopens its follow may re-read what a
        # peer handed out since its own last checkpoint. The feed above keeps each message
        # once; the outputs never repeat the history, only a part of the live messages.
        repeats = sum(c - 1 for c in printed.values())
        live = len(expected) - len(history)
        assert repeats <= live, f"{repeats} re-yielded of {live} live messages"
        assert victims_groups
        survivors = [a for a in ADDRESSES if a != victim]
        assert all(outputs[a] for a in survivors)
        throttle = gupshup_server.emulator.throttle
        assert not throttle.refusals, f"113s: {dict(throttle.refusals)}"
        now = gupshup_server.emulator.timebase.now()
        assert all(throttle.usage(a, now)["minute"] <= 30 for a in ADDRESSES)
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                await asyncio.wait_for(proc.wait(), 30)
        for reader in readers:
            await _cancel(reader)
        await r.aclose()


async def _held_by(r: aioredis.Redis, ns: str, worker: str) -> set[str]:
    keys = [f"{ns}:claim:{g}" for g in GROUPS]
    return {g for g, v in zip(GROUPS, await r.mget(keys), strict=True)
            if v is not None and token_holder(v) == worker}


async def _busiest(r: aioredis.Redis, ns: str) -> str:
    """The worker holding the most claims (the one whose death moves the most groups)."""
    keys = [f"{ns}:claim:{g}" for g in GROUPS]
    owners = Counter(token_holder(v) for v in await r.mget(keys) if v is not None)
    return owners.most_common(1)[0][0]


class _Flaky:
    """A ``redis.asyncio`` client that can be cut off: every command then fails, or with
    ``hang`` never answers (a blackholed connection without a socket timeout)."""

    def __init__(self, real: aioredis.Redis, *, hang: bool = False) -> None:
        self.real = real
        self.down = False
        self.hang = hang

    def _guard(self) -> None:
        if self.down:
            raise aioredis.ConnectionError("cut off by the test")

    async def _await_guard(self) -> None:
        if self.down and self.hang:
            # As good as forever (many leases), yet finite: without the worker's own bound the
            # test then fails on the message instead of hanging.
            await asyncio.sleep(HANG)
        self._guard()

    def register_script(self, lua: str) -> Callable[..., Awaitable[object]]:
        script = self.real.register_script(lua)

        async def run(**kw: object) -> object:
            await self._await_guard()
            return await script(**kw)  # type: ignore[arg-type]

        return run

    async def incr(self, key: str) -> object:
        await self._await_guard()
        return await self.real.incr(key)

    async def set(self, key: str, value: str, **kw: object) -> object:
        await self._await_guard()
        return await self.real.set(key, value, **kw)  # type: ignore[arg-type]

    async def mget(self, keys: list[str]) -> object:
        await self._await_guard()
        return await self.real.mget(keys)

    def pipeline(self, transaction: bool = True) -> object:
        self._guard()
        return self.real.pipeline(transaction=transaction)


async def _follow_then_cut(worker: FleetWorker, flaky: _Flaky) -> None:
    """Follow; after 10 messages Redis goes away. Returns only if the worker never notices."""
    got = 0
    async with asyncio.timeout(DEADLINE), worker:
        async for _ in worker:
            got += 1
            flaky.down = got >= 10


@pytest.mark.parametrize(("hang", "why"), [(False, "Redis failed"),
                                             (True, "Redis did not answer")])
async def test_a_worker_cut_off_from_redis_stops_following(
    gupshup_server: EmulatorServer, redis_url: str, hang: bool, why: str
) -> None:
    ns = f"test:{uuid.uuid4().hex}"
    real = aioredis.Redis.from_url(redis_url)
    flaky = _Flaky(real, hang=hang)
    client = Client(gupshup_server.base_url, local_address=ADDRESSES[0],
                    throttle=Throttle(windows=scaled_windows(SCALE)))
    client.poll_policy = PollPolicy(min_interval=0.2, max_interval=1.0)
    try:
        async with client:
            worker = FleetWorker(client, flaky, GROUPS, lease=LEASE, prefix=ns)
            with pytest.raises(FleetUnavailable, match=why):
                await _follow_then_cut(worker, flaky)
            calls = sum(gupshup_server.emulator.calls.values())
            await asyncio.sleep(1.0)  # nothing polls any more
            assert sum(gupshup_server.emulator.calls.values()) == calls
    finally:
        await real.aclose()


async def test_a_worker_that_lost_a_group_cannot_set_its_cursor_back(
    gupshup_server: EmulatorServer, redis_url: str
) -> None:
    ns = f"test:{uuid.uuid4().hex}"
    async with Client(gupshup_server.base_url, local_address=ADDRESSES[0]) as client:
        worker = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns)
        async with worker:
            assert worker.held == set(GROUPS)  # the only member claims everything at once
            r, mine, lost = worker.redis, GROUPS[0], GROUPS[1]
            # The lease ran out while this worker stalled, and another took the group over.
            await r.set(worker.claim_key(lost), "the-new-owner")
            await r.set(worker.cursor_key(lost), "the new owner's cursor")
            stale = Cursor(source=f"group:{lost}", phase="live", newest=100001, oldest=100001)
            cursors = MergedCursor(streams={mine: stale, lost: stale})
            await FencedStore(worker, worker.tokens).save("fleet", cursors.to_json())
            assert await r.get(worker.cursor_key(lost)) == b"the new owner's cursor"
            assert await r.get(worker.cursor_key(mine)) == stale.to_json().encode()
    assert sum(gupshup_server.emulator.calls.values()) == 0


class _SinkDownOnce(RedisStreamSink):
    """A feed whose first publish fails (Redis blinked)."""

    refused: Message | None = None

    async def publish(self, message: Message, *, fence: tuple[str, str] | None = None) -> bool:
        if self.refused is None:
            self.refused = message
            raise FleetUnavailable("fleet: Redis failed during publish: the test")
        return await super().publish(message, fence=fence)


async def test_a_message_the_feed_refused_is_published_before_the_next(
    gupshup_server: EmulatorServer, redis_url: str
) -> None:
    ns = f"test:{uuid.uuid4().hex}"
    sink = _SinkDownOnce(redis_url, stream=f"{ns}:feed", dedupe_ttl=60)
    try:
        async with Client(gupshup_server.base_url, local_address=ADDRESSES[0]) as client:
            worker = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns, sink=sink)
            async with asyncio.timeout(DEADLINE), worker:
                with pytest.raises(FleetUnavailable, match="publish"):
                    await anext(worker)
                again = await anext(worker)
                after = await anext(worker)
        entries = await sink.redis.xrange(sink.stream)
        assert again == sink.refused  # yielded once the feed has it, before any other
        assert [int(fields[b"id"]) for _, fields in entries] == [again.id, after.id]
        assert again.id != after.id
    finally:
        await sink.aclose()


async def test_a_worker_left_with_a_message_the_feed_refused_does_not_acknowledge_it(
    gupshup_server: EmulatorServer, redis_url: str
) -> None:
    ns = f"test:{uuid.uuid4().hex}"
    sink = _SinkDownOnce(redis_url, stream=f"{ns}:feed", dedupe_ttl=60)
    try:
        async with Client(gupshup_server.base_url, local_address=ADDRESSES[0]) as client:
            worker = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns, sink=sink)
            async with worker:
                with pytest.raises(FleetUnavailable, match="publish"):
                    await anext(worker)
            assert sink.refused is not None
            # Its successor resumes from the saved cursors and yields the message again.
            worker = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns, sink=sink)
            async with asyncio.timeout(DEADLINE), worker:
                async for message in worker:
                    if message == sink.refused:
                        break
        entries = await sink.redis.xrange(sink.stream)
        assert sink.refused.id in [int(fields[b"id"]) for _, fields in entries]
    finally:
        await sink.aclose()
