"""Peers (a fleet's followers) as a Hypothesis state machine on the virtual clock.

Three followers of one set, each on its own address (the emulator throttles each apart), are
peers of one :class:`~agupshup.aggregate.LocalFleet`: they take turns on the shared streams,
share the streams' heads, and read each group's own stream only where they own it. Rules move
the world (posts, bursts deeper than a walk, a flooded public stream, outages and faults) and
the members (``anext()`` with a timeout at any await; a member killed without a save, the way
``kill -9`` leaves it, which leaves the fleet and later restarts from its checkpoint). After
every step:

* a shared head never covers a message no member handed out (so a member that takes it in
  skips nothing);
* each member hands a message out once — but for the one a kill left in its hand;
* nothing of a group not followed;
* each address keeps within its share of every window, and the server never answers 113.

The teardown drains: every message of a followed group was handed out by some member (the feed,
which keeps the first, then holds each exactly once).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agupshup import Client
from agupshup import errors as E
from agupshup.aggregate import Follower, LocalFleet
from agupshup.checkpoint import Checkpoint, MemoryCheckpointStore
from agupshup.emulator.traffic import READER_PASSWORD, READER_PHONE
from agupshup.models import Message
from agupshup.planner import JOINED as JOINED_STREAM
from agupshup.planner import Budget
from agupshup.retry import RetryPolicy
from agupshup.transport import MockTransport, RawResponse
from agupshup.virtualclock import run_virtual

from .helpers import Sim
from .test_faults import anext_within, assert_within_share

PRIVATE = ["s0", "s1"]  # joined, private: only the joined stream shows them
JOINED = ["j0"]  # joined and public
OPEN = ["p0", "p1", "p2"]  # public, not joined
FOLLOWED = PRIVATE + JOINED + OPEN
NOISE = ["n0", "n1"]  # public, nobody follows them
MEMBERS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
BUDGET = Budget(0.8)
DRAIN = 6 * 3600.0


class FleetMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim([*FOLLOWED, *NOISE], joined=PRIVATE + JOINED, private=PRIVATE)
        self.down_until = 0.0
        self.faulty = False
        self.faulted: dict[str, list[float]] = {m: [] for m in MEMBERS}
        self.stamps: dict[str, list[float]] = {m: [] for m in MEMBERS}
        self.loop = asyncio.new_event_loop()
        self.fleet = LocalFleet()
        self.stores = {m: MemoryCheckpointStore() for m in MEMBERS}
        self.clients = {m: self._client(m) for m in MEMBERS}
        #: Hand-outs per member, and by anyone.
        self.got: dict[str, Counter[int]] = {m: Counter() for m in MEMBERS}
        self.any: set[int] = set()
        self.replayable: dict[str, Counter[int]] = {m: Counter() for m in MEMBERS}
        self.last: dict[str, Message | None] = dict.fromkeys(MEMBERS)
        self.followers: dict[str, Follower | None] = {m: self._open(m) for m in MEMBERS}
        #: The newest id posted when the follow started: the followers start "now".
        self.start = max(self.sim.posted, default=0)

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(run_virtual(self.sim.clock, coro))

    def _client(self, ip: str) -> Client:
        async def handle(fields: Sequence[tuple[str, str]]) -> RawResponse:
            now = self.sim.clock.monotonic()
            self.stamps[ip].append(now)
            method = dict(fields).get("method", "")
            if now < self.down_until or (self.faulty and int(now * 7) % 3 == 0):
                self.faulted[ip].append(now)
                raise E.ConnectError("outage", method=method, maybe_sent=False)
            answer = self.sim.emulator.request(list(fields), ip=ip)
            return RawResponse(200, answer.content_type, answer.body)

        return Client("http://emulator.invalid", phone=READER_PHONE, password=READER_PASSWORD,
                      clock=self.sim.clock, transport=MockTransport(handle), local_address=ip,
                      retry=RetryPolicy(rng=random.Random(0)))

    def _open(self, member: str) -> Follower:
        checkpoint = Checkpoint(self.stores[member], key="fleet", every=3)
        follower = Follower(self.clients[member], FOLLOWED, budget=BUDGET,
                            checkpoint=checkpoint, peers=self.fleet.member(member))
        self._run(follower.__aenter__())
        return follower

    # -- the world --------------------------------------------------------------------------

    @rule(group=st.sampled_from(FOLLOWED + NOISE), n=st.integers(1, 5))
    def post(self, group: str, n: int) -> None:
        self.sim.post(group, n)

    @rule(group=st.sampled_from(FOLLOWED), n=st.integers(40, 120))
    def burst(self, group: str, n: int) -> None:
        self.sim.post(group, n)

    @rule(n=st.integers(50, 400))
    def flood(self, n: int) -> None:
        for _ in range(n):
            self.sim.emulator.insert_message(NOISE[n % 2], "flood")

    @rule(seconds=st.sampled_from([60.0, 300.0]))
    def outage(self, seconds: float) -> None:
        self.down_until = self.sim.clock.monotonic() + seconds

    @rule()
    def toggle_faults(self) -> None:
        self.faulty = not self.faulty

    # -- the members ------------------------------------------------------------------------

    @rule(member=st.sampled_from(MEMBERS),
          timeouts=st.lists(st.floats(0.01, 30.0), min_size=1, max_size=8))
    def consume(self, member: str, timeouts: list[float]) -> None:
        follower = self.followers[member]
        if follower is None:
            return

        async def go() -> None:
            for t in timeouts:
                m = await anext_within(follower, self.sim.clock, t)
                if isinstance(m, Message):
                    self._got(member, m)

        self._run(go())

    @rule(seconds=st.floats(1.0, 600.0))
    def idle(self, seconds: float) -> None:
        """Time passes while every member waits in ``anext()``: the turns go round."""
        async def go() -> None:
            live = [(m, f) for m, f in self.followers.items() if f is not None]
            got = await asyncio.gather(*(self._for(m, f, seconds) for m, f in live))
            del got

        self._run(go())

    async def _for(self, member: str, follower: Follower, seconds: float) -> None:
        until = self.sim.clock.monotonic() + seconds
        while (left := until - self.sim.clock.monotonic()) > 0:
            m = await anext_within(follower, self.sim.clock, left)
            if isinstance(m, Message):
                self._got(member, m)

    def _got(self, member: str, m: Message) -> None:
        self.got[member][m.id] += 1
        self.any.add(m.id)
        self.last[member] = m

    @precondition(lambda self: sum(f is not None for f in self.followers.values()) > 1)
    @rule(member=st.sampled_from(MEMBERS))
    def kill(self, member: str) -> None:
        """``kill -9``: no save, no head moved; its lease lapses and the others take its turn
        and its groups."""
        follower = self.followers[member]
        if follower is None:
            return
        follower.halt()
        self._run(asyncio.sleep(0))
        self.followers[member] = None
        self.fleet.leave(member)
        if (last := self.last[member]) is not None:
            self.replayable[member][last.id] += 1
        # What it handed out but never saved comes again from its checkpoint.
        for ident in self.got[member]:
            self.replayable[member][ident] += 1

    @rule(member=st.sampled_from(MEMBERS))
    def restart(self, member: str) -> None:
        if self.followers[member] is None:
            self.followers[member] = self._open(member)
            self.last[member] = None

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def heads_cover_only_what_was_handed_out(self) -> None:
        for source, head in self.fleet.shared.items():
            shown = {i for i, g in self.sim.posted.items()
                     if self.start < i <= head and g in FOLLOWED
                     and (g in PRIVATE + JOINED if source == JOINED_STREAM.key
                          else g in JOINED + OPEN)}
            missing = shown - self.any
            assert not missing, f"{source} head {head} covers {sorted(missing)[:5]}"

    @invariant()
    def each_member_hands_out_once(self) -> None:
        for member, got in self.got.items():
            again = {i: n - 1 for i, n in got.items() if n > 1}
            assert all(n <= self.replayable[member][i] for i, n in again.items()), (
                f"{member} repeated: {again}")

    @invariant()
    def only_followed(self) -> None:
        assert all(self.sim.posted.get(i) in FOLLOWED for i in self.any)

    @invariant()
    def within_the_share(self) -> None:
        for member in MEMBERS:
            failed = set(self.faulted[member])
            sent = [t for t in self.stamps[member] if t not in failed]
            assert_within_share(sent, BUDGET, extra=4, also=self.faulted[member])
        assert not self.sim.emulator.throttled

    def teardown(self) -> None:
        try:
            self.down_until = 0.0
            self.faulty = False
            for member in MEMBERS:
                self.restart(member)
            self._drain()
            wanted = {i for i, g in self.sim.posted.items() if g in FOLLOWED and i > self.start}
            missing = wanted - self.any
            assert not missing, f"never handed out: {sorted(missing)[:10]}"
        finally:
            for follower in self.followers.values():
                if follower is not None:
                    self._run(follower.aclose())
            for client in self.clients.values():
                self._run(client.aclose())
            self.loop.close()

    def _drain(self) -> None:
        wanted = {i for i, g in self.sim.posted.items() if g in FOLLOWED and i > self.start}

        async def go() -> None:
            until = self.sim.clock.monotonic() + DRAIN
            while self.sim.clock.monotonic() < until and not wanted <= self.any:
                live = [(m, f) for m, f in self.followers.items() if f is not None]
                await asyncio.gather(*(self._for(m, f, 600.0) for m, f in live))

        self._run(go())


FleetMachine.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
TestFleetMachine = FleetMachine.TestCase
