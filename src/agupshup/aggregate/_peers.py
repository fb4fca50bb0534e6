"""Followers of one followed set on several addresses: a fleet, as the follow engine sees it.

* **Turns.** Every follower polls each shared source (the joined and the public streams) at
  the interval the plan gives it for the fleet's whole budget, times the number of peers, in
  its own turn: follower ``place`` of ``count`` at ``place / count`` of the interval, on a
  grid of wall-clock time all hosts share. So ``count`` addresses poll a shared source
  ``count`` times as often, evenly spaced, and the mean delay falls by ``count``.
* **Own streams.** A group's own stream is read by one follower only: the one whose
  :meth:`Peers.owns` says so (a fleet's claim holder). Catch-ups are its too.
* **Heads.** Every item of a shared source up to its *shared head* was handed out by some
  follower (and, in a fleet, published to the feed). The first follower to start sets it
  where its follow starts (its "now", or the start it was given); a later one, a restarted
  one included, opens the shared sources there, never at its own "now" (which would claim what
  arrived between as handed out). A follower moves it forward when its own claim of that
  source moves (so never over an item not handed out); before it reads a shared source's
  first page it takes the shared head in, so it walks only what arrived since any peer's last
  read, not since its own.
* **Budget.** The plan is made for the peers' whole budget: each window's limit times the
  number of peers (every address has GupShup's limits); each follower's own calls still keep
  to its own windows.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Protocol

from agupshup.aggregate._source import _Source
from agupshup.planner import Budget

__all__ = ["LocalFleet", "Peers"]


class Peers(Protocol):
    """The other followers of the same groups (see the module's rules)."""

    def turn(self) -> tuple[int, int]:
        """This follower's place among the peers, and how many they are (itself included)."""
        ...

    def owns(self, group: str) -> bool:
        """Whether this follower reads ``group``'s own stream."""
        ...

    def period(self, source: str, mine: float) -> float:
        """The period every peer polls ``source`` at: the longest that a live peer proposes
        (``mine``: this follower's proposal). One period puts every turn on one grid."""
        ...

    async def heads(self, sources: Sequence[str]) -> dict[str, int]:
        """The shared heads of ``sources`` (source keys) that exist."""
        ...

    async def begin(self, heads: Mapping[str, int]) -> dict[str, int]:
        """The shared heads of ``heads``' sources, each set to the value given where the peers
        have none yet (the first follower to start says where the fleet starts)."""
        ...

    async def advance(self, heads: Mapping[str, int]) -> bool:
        """Move shared heads forward (never back); False: this follower is no peer any more."""
        ...


class LocalFleet:
    """Peers in one process (several addresses on one host, and the tests and benchmarks):
    ``fleet.member(name)`` is a member's :class:`Peers`; ``fleet.leave(name)`` ends it (a
    dead member's turn goes to the others). Own streams go by a hash of the group's name."""

    def __init__(self) -> None:
        self.members: list[str] = []
        self.shared: dict[str, int] = {}
        self.periods: dict[str, dict[str, float]] = {}

    def member(self, name: str) -> _LocalPeer:
        if name not in self.members:
            self.members = sorted([*self.members, name])
        return _LocalPeer(self, name)

    def leave(self, name: str) -> None:
        self.members = [m for m in self.members if m != name]


@dataclasses.dataclass
class _LocalPeer:
    fleet: LocalFleet
    name: str

    def turn(self) -> tuple[int, int]:
        members = self.fleet.members
        return (members.index(self.name), len(members)) if self.name in members else (0, 1)

    def owns(self, group: str) -> bool:
        place, count = self.turn()
        return zlib.crc32(group.lower().encode()) % count == place

    def period(self, source: str, mine: float) -> float:
        proposed = self.fleet.periods.setdefault(source, {})
        proposed[self.name] = mine
        return max(p for m, p in proposed.items() if m in self.fleet.members or m == self.name)

    async def heads(self, sources: Sequence[str]) -> dict[str, int]:
        return {s: self.fleet.shared[s] for s in sources if s in self.fleet.shared}

    async def begin(self, heads: Mapping[str, int]) -> dict[str, int]:
        for source, head in heads.items():
            self.fleet.shared.setdefault(source, head)
        return {s: self.fleet.shared[s] for s in heads}

    async def advance(self, heads: Mapping[str, int]) -> bool:
        if self.name not in self.fleet.members:
            return False
        for source, head in heads.items():
            self.fleet.shared[source] = max(head, self.fleet.shared.get(source, head))
        return True


def fleet_budget(budget: Budget, count: int) -> Budget:
    """``budget`` for ``count`` addresses: each window's limit times ``count``."""
    if count <= 1 or not budget.windows:
        return budget
    windows = tuple(_Limit(w.limit * count, w.length) for w in budget.windows)
    return dataclasses.replace(budget, windows=windows)


@dataclasses.dataclass(frozen=True, slots=True)
class _Limit:
    """One window of the peers' whole budget (a :class:`~agupshup.planner.Limit`)."""

    limit: int
    length: float


def turn_due(now: float, wall: float, period: float, place: int, count: int) -> float:
    """The next monotonic time, after ``now``, at which follower ``place`` of ``count`` polls
    a source polled every ``period`` seconds by each of them (``wall``: the wall clock at
    ``now``; the grid is wall-clock time, which every host shares)."""
    if not math.isfinite(period) or period <= 0:
        return now + period
    offset = period * place / count
    turns = math.floor((wall - offset) / period) + 1
    return now + (offset + turns * period - wall)


def take_in(src: _Source, shared: int) -> bool:
    """The peers handed out every item of ``src`` up to ``shared``: the head moves up to it
    and the gaps below it close (one reaching above it stays: its items are read again, and
    handed out once by the dedupe). True when anything moved."""
    if src.head is None:
        return False
    before = (src.head, len(src.gaps))
    src.gaps = [g for g in src.gaps if (g.top if g.top is not None else src.head + 1) - 1 > shared]
    if shared > src.head and not src.gaps:
        src.head = shared
    return (src.head, len(src.gaps)) != before
