"""The follow engine's promises as a Hypothesis state machine on the virtual clock.

Rules move the world (posts, bursts deeper than a walk, a flooded public stream, outages and
faults, groups turning private) and the consumer (``anext()`` with a timeout at any await, a
crash that restarts the follower from its checkpoint). The invariants hold after every step;
the teardown drains and checks the rest:

* every message of a followed group is handed out, and once — but for the message a crash
  left unacknowledged, which may come once more (a group that turns private is excused: its
  unread messages can no longer be read by anyone);
* nothing of a group not followed;
* the follower's calls never exceed its share of any throttle window, and the server never
  answers 113.

A falsifying example prints its seed and the steps that led there (Hypothesis does both).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agupshup import Client
from agupshup import errors as E
from agupshup.aggregate import Follower, follow_groups
from agupshup.checkpoint import Checkpoint, MemoryCheckpointStore
from agupshup.models import Message
from agupshup.planner import Budget
from agupshup.virtualclock import run_virtual

from .helpers import Sim
from .test_faults import anext_within, assert_within_share, record_calls

PRIVATE = ["s0", "s1"]  # joined, private: only the joined stream shows them
JOINED = ["j0"]  # joined and public
OPEN = ["p0", "p1", "p2"]  # public, not joined
FOLLOWED = PRIVATE + JOINED + OPEN
NOISE = ["n0", "n1"]  # public, nobody follows them
BUDGET = Budget(0.8)
#: Virtual seconds the teardown waits for the last messages.
DRAIN = 6 * 3600.0


class FollowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim([*FOLLOWED, *NOISE], joined=PRIVATE + JOINED, private=PRIVATE)
        self.stamps = record_calls(self.sim)
        self.down_until = 0.0
        self.faulty = False
        #: When a call was failed here: the client may send it again (its own retries).
        self.faulted: list[float] = []
        inner = self.sim.fault

        def fault(method: str) -> Exception | None:
            if inner is not None:
                inner(method)
            now = self.sim.clock.monotonic()
            if now < self.down_until:
                self.faulted.append(now)
                return E.ConnectError("outage", method=method, maybe_sent=False)
            if self.faulty and int(now * 7) % 3 == 0:
                self.faulted.append(now)
                return E.ServerError(method, 129, "Please resubmit")
            return None

        self.sim.fault = fault
        self.loop = asyncio.new_event_loop()
        self.store = MemoryCheckpointStore()
        self.got: Counter[int] = Counter()
        #: Messages a crash left unacknowledged: each may come once more per such crash.
        self.replayable: Counter[int] = Counter()
        self.closed_private: dict[str, int] = {}  # group → newest id readable before
        self.client: Client = self.sim.client()
        self.follower: Follower = self._open()
        self.last: Message | None = None

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(run_virtual(self.sim.clock, coro))

    def _open(self) -> Follower:
        checkpoint = Checkpoint(self.store, key="machine", every=3)
        follower = follow_groups(self.client, FOLLOWED, budget=BUDGET, checkpoint=checkpoint)
        self._run(follower.__aenter__())
        return follower

    # -- the world --------------------------------------------------------------------------

    @rule(group=st.sampled_from(FOLLOWED + NOISE), n=st.integers(1, 5))
    def post(self, group: str, n: int) -> None:
        if group in self.closed_private:
            return
        self.sim.post(group, n)

    @rule(group=st.sampled_from(FOLLOWED), n=st.integers(40, 120))
    def burst(self, group: str, n: int) -> None:
        """Deeper than one poll's walk of the joined stream (30 a page)."""
        if group not in self.closed_private:
            self.sim.post(group, n)

    @rule(n=st.integers(50, 400))
    def flood(self, n: int) -> None:
        for _ in range(n):
            self.sim.emulator.insert_message(NOISE[n % 2], "flood")

    @rule(seconds=st.sampled_from([60.0, 300.0, 900.0]))
    def outage(self, seconds: float) -> None:
        self.down_until = self.sim.clock.monotonic() + seconds

    @rule()
    def toggle_faults(self) -> None:
        self.faulty = not self.faulty

    @precondition(lambda self: len(self.closed_private) < 1)
    @rule(group=st.sampled_from(OPEN))
    def turn_private(self, group: str) -> None:
        g = self.sim.emulator.world.group(group)
        assert g is not None
        g.private = True
        self.closed_private[group] = max(
            (i for i, name in self.sim.posted.items() if name == group), default=0
        )

    # -- the consumer -----------------------------------------------------------------------

    @rule(timeouts=st.lists(st.floats(0.01, 30.0), min_size=1, max_size=8))
    def consume(self, timeouts: list[float]) -> None:
        async def go() -> None:
            for t in timeouts:
                try:
                    m = await anext_within(self.follower, self.sim.clock, t)
                except E.UnreadableGroups:
                    continue
                if isinstance(m, Message):
                    self.got[m.id] += 1
                    self.last = m

        self._run(go())

    @rule(seconds=st.floats(1.0, 600.0))
    def idle(self, seconds: float) -> None:
        self._run(self.sim.clock.sleep(seconds))

    @rule()
    def crash_and_restart(self) -> None:
        """The consumer dies with the last message in hand: a new follower resumes from the
        checkpoint, on the same client (the same throttle ledger)."""
        if self.last is not None:
            self.replayable[self.last.id] += 1
        self._run(self.follower.aclose())
        self.follower = self._open()
        self.last = None

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def each_once(self) -> None:
        again = {i: n - 1 for i, n in self.got.items() if n > 1}
        assert all(n <= self.replayable[i] for i, n in again.items()), f"repeated: {again}"

    @invariant()
    def only_followed(self) -> None:
        assert all(self.sim.posted.get(i) in FOLLOWED for i in self.got)

    @invariant()
    def within_the_share(self) -> None:
        """The follower's calls, a login and the client's own retries of failed calls (each
        failed call may be sent once more) never pass the share of a window."""
        failed = set(self.faulted)
        sent = [t for t in self.stamps if t not in failed]
        assert_within_share(sent, BUDGET, extra=4, also=self.faulted)
        assert not self.sim.emulator.throttled

    def teardown(self) -> None:
        try:
            self.down_until = 0.0
            self.faulty = False
            self._drain()
            wanted = {i for i, g in self.sim.posted.items()
                      if g in FOLLOWED and g not in self.closed_private}
            missing = wanted - set(self.got)
            assert not missing, f"never handed out: {sorted(missing)[:10]}"
        finally:
            self._run(self.follower.aclose())
            self._run(self.client.aclose())
            self.loop.close()

    def _drain(self) -> None:
        async def go() -> None:
            wanted = {i for i, g in self.sim.posted.items()
                      if g in FOLLOWED and g not in self.closed_private}
            # Everything is in well within a day of quiet (bursts, floods and outages
            # included); a follower that lost a message would wait forever.
            until = self.sim.clock.monotonic() + DRAIN
            while self.sim.clock.monotonic() < until:
                if wanted <= set(self.got):
                    return
                try:
                    m = await anext_within(self.follower, self.sim.clock, 3600)
                except E.UnreadableGroups:
                    continue
                if isinstance(m, Message):
                    self.got[m.id] += 1

        self._run(go())



FollowMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
TestFollowMachine = FollowMachine.TestCase
