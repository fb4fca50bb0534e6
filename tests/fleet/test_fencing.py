"""The fleet when things go wrong (issue 22, F1 F2 F5 F6 F7), against the loopback emulator and a
real redis-server: a Redis that stops answering mid-publish, a claim lost while the consumer is
busy, a group lost and taken back (A-B-A), a quiet fleet, a group that turns private.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis

from agupshup import Client, Throttle
from agupshup.checkpoint import Cursor
from agupshup.emulator.server import EmulatorServer
from agupshup.fleet import (
    Fenced,
    FleetEvent,
    FleetObserver,
    FleetUnavailable,
    FleetWorker,
    RedisStreamSink,
)
from agupshup.models import Message
from agupshup.polling import PollPolicy
from agupshup.throttle import scaled_windows
from streams.helpers import group_ids, insert

from .conftest import ADDRESSES, GROUPS, SCALE

LEASE = 2.0
DEADLINE = 45.0
#: Longer than a poll interval (1 s) and a few heartbeats (0.5 s): what "no more polls" waits.
QUIET = 2.5


def _client(server: EmulatorServer) -> Client:
    client = Client(server.base_url, local_address=ADDRESSES[0],
                    throttle=Throttle(windows=scaled_windows(SCALE)))
    client.poll_policy = PollPolicy(min_interval=0.2, max_interval=1.0)
    return client


@pytest.fixture
def ns() -> str:
    return f"test:{uuid.uuid4().hex}"


async def _until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    for _ in range(int(DEADLINE / 0.1)):
        done = check()
        if done if isinstance(done, bool) else await done:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {DEADLINE}s: {what}")


def _polls(server: EmulatorServer) -> Counter[str]:
    """Calls of each group's stream received by the emulator, counted as they arrive."""
    counts: Counter[str] = Counter()
    emulator = server.emulator
    receive = emulator.receive

    def counting(params: Any, ip: str) -> Any:
        fields = dict(params)
        if str(fields.get("method", "")).lower() == "groups.getstream":
            counts[str(fields.get("group", "")).lower()] += 1
        return receive(params, ip)

    emulator.receive = counting  # type: ignore[method-assign]
    return counts


class _Events(FleetObserver):
    def __init__(self) -> None:
        self.seen: list[FleetEvent] = []

    def event(self, event: FleetEvent) -> None:
        self.seen.append(event)

    def kinds(self, kind: str) -> list[tuple[str, ...]]:
        return [e.groups for e in self.seen if e.kind == kind]


# -- F1: every Redis call bounded, publish included --------------------------------------------


@pytest.fixture
def own_redis(unused_tcp_port: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test alone (it gets SIGSTOPped)."""
    exe = shutil.which("redis-server")
    assert exe is not None, "redis-server is missing"
    proc = subprocess.Popen(
        [exe, "--port", str(unused_tcp_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{unused_tcp_port}/0", proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=10)


async def test_redis_stopped_during_a_publish_stops_the_worker(
    gupshup_server: EmulatorServer, own_redis: tuple[str, subprocess.Popen[bytes]], ns: str
) -> None:
    url, proc = own_redis
    await _until(lambda: _answers(url), "redis up")

    class StopsRedis(RedisStreamSink):
        """The fifth publish finds Redis stopped (SIGSTOP: the socket stays open, no answer)."""

        published = 0

        async def publish(self, message: Message, *, fence: tuple[str, str] | None = None) -> bool:
            self.published += 1
            if self.published == 5:
                proc.send_signal(signal.SIGSTOP)
            return await super().publish(message, fence=fence)

    # Clients without a socket timeout (redis-py's default was none before 6.0), and the sink's
    # own bound far away: the worker's bound is what counts.
    r = aioredis.Redis.from_url(url, socket_timeout=None)
    sink = StopsRedis(r, stream=f"{ns}:feed", timeout=10 * DEADLINE)
    try:
        async with _client(gupshup_server) as client:
            worker = FleetWorker(client, r, GROUPS, lease=LEASE, prefix=ns, sink=sink)
            with pytest.raises(FleetUnavailable, match="did not answer"):
                await _drain(worker)
            calls = sum(gupshup_server.emulator.calls.values())
            await asyncio.sleep(QUIET)  # nothing polls any more
            assert sum(gupshup_server.emulator.calls.values()) == calls
    finally:
        proc.send_signal(signal.SIGCONT)
        await r.aclose()


async def _answers(url: str) -> bool:
    r = aioredis.Redis.from_url(url)
    try:
        return bool(await r.ping())  # type: ignore[misc]
    except aioredis.ConnectionError:
        return False
    finally:
        await r.aclose()


async def _drain(worker: FleetWorker) -> None:
    """Follow until the worker raises (or the test's deadline)."""
    async with asyncio.timeout(DEADLINE), worker:
        async for _ in worker:
            pass


# -- F2: a lost claim stops its polls at once ---------------------------------------------------


async def test_a_lost_claim_stops_polling_while_the_consumer_is_busy(
    gupshup_server: EmulatorServer, redis_url: str, ns: str
) -> None:
    polls = _polls(gupshup_server)
    stolen = GROUPS[:4]
    async with _client(gupshup_server) as client:
        worker = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns)
        async with asyncio.timeout(DEADLINE), worker:
            everything = {i for g in GROUPS for i in group_ids(gupshup_server.emulator, g)}
            got: set[int] = set()
            while got != everything:  # the backlog: then every group is polled for news
                got.add((await anext(worker)).id)
            # The consumer now works on the last message for long; meanwhile another worker
            # owns four of the groups (as after this one's lease ran out).
            for group in stolen:
                await worker.redis.set(worker.claim_key(group), "1:another-worker")
            await _until(lambda: not worker.held & set(stolen), "the claims found lost")
            await asyncio.sleep(0.3)  # calls already on the wire when the claims went
            before = {g: polls[g] for g in stolen}
            await asyncio.sleep(QUIET)
            assert {g: polls[g] for g in stolen} == before, "a lost group was polled again"
            # Once the consumer is back, the worker follows the rest.
            fresh = insert(gupshup_server.emulator, GROUPS[-1], 1)
            assert (await anext(worker)).id in fresh
            assert worker.following == set(GROUPS) - set(stolen)


# -- F5: a fencing token per claim --------------------------------------------------------------


async def test_a_worker_that_lost_a_group_and_took_it_back_cannot_set_it_back(
    gupshup_server: EmulatorServer, redis_url: str, ns: str
) -> None:
    async with _client(gupshup_server) as client:
        worker = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns, every=1)
        async with asyncio.timeout(DEADLINE), worker:
            message = await anext(worker)
            group, r = message.group_name.lower(), worker.redis
            # A stalls; B takes the group over, reads it all and leaves; A takes it back.
            await r.set(worker.claim_key(group), "1:B")
            await _until(lambda: group not in worker.held, "A finding the claim lost")
            ids = group_ids(gupshup_server.emulator, group)
            b_done = Cursor(source=f"group:{group}", phase="live", newest=max(ids), oldest=min(ids))
            await r.set(worker.cursor_key(group), b_done.to_json())
            await r.delete(worker.claim_key(group))
            await _until(lambda: group in worker.held, "A taking the group back")
            # A's old follow closes now (saving its cursors): its token is no longer current.
            await anext(worker)
            saved = Cursor.from_json(await r.get(worker.cursor_key(group)))
            assert (saved.phase, saved.oldest) == ("live", min(ids)), "A set B's progress back"


async def test_a_publish_under_an_old_token_is_refused(redis_url: str, ns: str) -> None:
    sink = RedisStreamSink(redis_url, stream=f"{ns}:feed", dedupe_ttl=60)
    claim = f"{ns}:claim:g0000"
    message = Message(id=100001, group_name="g0000")
    try:
        await sink.redis.set(claim, "7:A")
        with pytest.raises(Fenced):
            await sink.publish(message, fence=(claim, "5:A"))
        assert await sink.redis.xlen(sink.stream) == 0
        assert await sink.publish(message, fence=(claim, "7:A"))
    finally:
        await sink.aclose()


# -- F6: checkpoints by count or time -----------------------------------------------------------


def _covers(cursor: Cursor, ids: list[int]) -> bool:
    """Whether ``cursor`` says every id of ``ids`` was yielded."""
    if cursor.newest is None or cursor.newest < max(ids):
        return False
    return cursor.phase == "live" or (cursor.oldest is not None and cursor.oldest <= min(ids))


async def test_a_quiet_fleet_checkpoints_by_time(
    gupshup_server: EmulatorServer, redis_url: str, ns: str
) -> None:
    ids = {g: group_ids(gupshup_server.emulator, g) for g in GROUPS}
    everything = {i for v in ids.values() for i in v}
    async with _client(gupshup_server) as client:
        worker = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns, every=10_000,
                             interval=LEASE)
        async with asyncio.timeout(DEADLINE), worker:
            got: set[int] = set()
            while got != everything:
                got.add((await anext(worker)).id)
            # The consumer asks for more (so all it got is processed), and nothing comes.
            waiting = asyncio.ensure_future(anext(worker))

            async def saved() -> bool:
                raw = await worker.redis.mget([worker.cursor_key(g) for g in GROUPS])
                return all(v and _covers(Cursor.from_json(v), ids[g])
                           for g, v in zip(GROUPS, raw, strict=True))

            try:
                await _until(saved, "every yielded message checkpointed")
            finally:
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)


# -- F7: a group turning private ----------------------------------------------------------------


async def test_an_unreadable_group_is_reported_once_and_dropped_for_good(
    gupshup_server: EmulatorServer, redis_url: str, ns: str
) -> None:
    """F7: a group the follow cannot read (private, not joined) crash-looped its worker.
    (One that turns private while a shared stream covers it goes unnoticed: that stream just
    stops showing it; docs/aggregator.md, "Not done".)"""
    emulator, bad = gupshup_server.emulator, GROUPS[3]
    target = emulator.world.group(bad)
    assert target is not None
    target.private = True
    everything = {i for g in GROUPS if g != bad for i in group_ids(emulator, g)}
    events = _Events()
    async with _client(gupshup_server) as client:
        worker = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns,
                             observers=[events])
        async with asyncio.timeout(DEADLINE), worker:
            got: set[int] = set()
            while got != everything:
                got.add((await anext(worker)).id)
            # The other groups go on: their new messages arrive, the private one is dropped.
            fresh = set(insert(emulator, GROUPS[0], 1) + insert(emulator, GROUPS[-1], 1))
            while not fresh <= got:
                got.add((await anext(worker)).id)
            waiting = asyncio.ensure_future(anext(worker))
            try:
                await _until(lambda: bool(events.kinds("unreadable")), "the group dropped")
            finally:
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
            assert events.kinds("unreadable") == [(bad,)]
            assert worker.unreadable == {bad: "private, and not joined"}
            assert bad not in worker.held | worker.following
        # A restarted worker (or any other) never claims it again: the fleet remembers.
        assert await _unreadable(redis_url, ns) == {bad: "private, and not joined"}
        again = FleetWorker(client, redis_url, GROUPS, lease=LEASE, prefix=ns)
        async with again:
            assert again.held == set(GROUPS) - {bad}


async def _unreadable(url: str, ns: str) -> Mapping[str, str]:
    r = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return await r.hgetall(f"{ns}:unreadable")  # type: ignore[no-any-return,misc]
    finally:
        await r.aclose()
