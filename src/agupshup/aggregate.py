"""The one follow engine: many groups, any start, each message handed out once, whatever fails.

``async with client.follow_groups(groups) as stream: async for message in stream: ...``
(``client.merged_stream(groups, ...)`` is the same engine, with a history walk by default).

Rules this module enforces:

* **Sources.** The planner (:mod:`agupshup.planner`) covers the followed groups with sources:
  the joined groups' stream, the public stream, or a group's own stream. Each source keeps a
  *head* (every item up to it was read) and open *gaps*, each a :class:`~agupshup.paging.
  Descent`: ids strictly between its ``low`` and ``top`` are not read yet. A poll reads the
  source's first page, opens a descent for what is new above the head, and walks the open
  descents page by page (the paging module's chase places each read, so a walk ends at any
  arrival rate and never skips). State moves after every page, so a failure, a cancel or the
  end of a poll's :data:`POLL_PAGES` loses nothing: the next poll walks on where this one
  stopped.
* **Hand-over.** A group that moves to another source (a new plan, a resumed cursor, a start
  from an id) brings its claim: the point up to which its messages were handed out. Its own
  stream starts there; a shared source above it leaves the difference to a *catch-up*, a walk
  of the group's own stream down to the claim (a private joined group, which only the joined
  stream shows, makes the joined stream walk down instead). So a hand-over never walks
  unfollowed traffic of a shared source.
* **Exactly once.** A message is handed out once across sources (a set of ids above the
  lowest claim). The cursor (:class:`~agupshup.checkpoint.FollowCursor`) claims the heads and
  gaps as they stood when nothing was buffered and nothing handed out was unacknowledged, plus
  the ids handed out and acknowledged since: it never covers an item not yet handed out.
* **Cancels.** The work (sleeping until a source is due, polls, walks) runs in one task that
  ``anext()`` awaits through :func:`asyncio.shield`: a timeout around ``anext()`` cancels the
  wait, not the poll, whose pages land in the buffer for the next ``anext()``. No call is sent
  twice for a cancel, and repeated short timeouts still make progress. The task ends with the
  follower (``aclose()``, ``async with``).
* **Budget.** Every call the follower makes (discovery, probes, polls, walks, catch-ups,
  resamples) first takes a place in the follower's own windows: ``share`` of each throttle
  window's limit. So it never spends more than its share of any window, whatever the traffic;
  a flood costs delay, never the user's other calls. A poll that stops at
  :data:`POLL_PAGES` re-plans at once: the planner prices what the source carries (rates are
  measured from the time the items of a page span) and moves groups off a flooded source.
* **Faults** back off per source (doubling from :data:`BACKOFF_FIRST` to :data:`BACKOFF_CAP`)
  and resume, outages of any length included; only the user's deadline or cancel, a closed
  client, or an error about the user's own input (bad credentials, a bad URL, a bad argument)
  ends a follow. A bad name (unreadable before anything was read) is the user's input: found by
  discovery it is raised before any poll and the follow does not start; found later (a probe, a
  first poll) it is raised once as :class:`~agupshup.errors.UnreadableGroups` and leaves the
  follow (iterate again for the rest). One that turns unreadable later, or after a restart, is
  dropped alone and reported to ``on_drop`` (default: a warning in the log);
  :attr:`Follower.dropped` lists both. Catch-ups back off like polls and never go before a poll
  that is due; a plan is revised at most every :data:`REPLAN_GAP` seconds.
* **Start.** ``since="now"``: only what arrives after the start. ``since=<id>``: every message
  of a followed group with a larger id. ``since=0``: the whole history. A checkpoint's cursor,
  when there is one, wins. ``follow=False`` ends once every source has been read down to its
  start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import math
import warnings
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Literal, Protocol, Self, TypeVar

import anyio

from agupshup import errors as E
from agupshup.checkpoint import Checkpoint, FollowCursor, MergedCursor
from agupshup.clock import Clock
from agupshup.models import Group, Message, QuotaWindow
from agupshup.paging import Descent
from agupshup.planner import (
    JOINED,
    PUBLIC,
    Budget,
    Channel,
    GroupInfo,
    Mode,
    Plan,
    Planner,
    UnreadableGroups,
)
from agupshup.throttle import Window

__all__ = [
    "FollowCalls", "Follower", "MergedStream", "OnDrop", "Resume", "Start", "follow_groups",
    "merged_stream",
]

log = logging.getLogger("agupshup.aggregate")
T = TypeVar("T")

#: What to do with a group that turns unreadable: call this, or ``"raise"`` it from the next
#: ``anext()`` (the follow goes on when iterated again), or None: a warning in the log.
OnDrop = Callable[[UnreadableGroups], None] | Literal["raise"] | None
#: A cursor to resume from: this engine's, one of version 1 (read as this one), or its JSON.
Resume = FollowCursor | MergedCursor | str | bytes | None
#: Where a follow starts: ``"now"`` (new messages only) or a message id (every later one).
Start = Literal["now"] | int
#: Pages one poll of a source reads at most: the rest of its walk waits for the next poll,
#: and the plan is revised at once (the source carries more than the plan priced).
POLL_PAGES = 20
_LIST_PAGES = 10_000
#: Up to this many groups of unknown readability are probed before the first poll (so a bad
#: name in a short list is an error before any poll); more are probed in the background.
PROBE_AT_START = 10
#: The share of the budget that background work (probes, catch-ups) uses while there is some.
PROBE_SHARE = 0.25
#: The shortest time between two plans (a forced re-plan waits for it).
REPLAN_GAP = 60.0
BACKOFF_FIRST = 5.0
BACKOFF_CAP = 300.0
#: Errors that end a follow: the user's own input, or a closed client.
FATAL: tuple[type[BaseException], ...] = (
    E.Closed, E.ValidationError, E.InvalidRequest, E.AuthenticationError, E.HTTPRefused,
)
#: Errors of a group's own stream that say the group cannot be read.
UNREADABLE: tuple[type[BaseException], ...] = (E.PrivateGroup, E.GroupNotFound, E.GroupDisabled)


class FollowCalls(Protocol):
    """What the follower uses of a client (:class:`~agupshup.Client` has it)."""

    clock: Clock

    def quota(self) -> list[QuotaWindow]: ...

    async def get_joined_groups(self, start: int = ..., count: int = ...) -> list[Group]: ...

    async def get_joined_groups_stream(
        self, start: int = ..., count: int = ...
    ) -> list[Message]: ...

    async def get_public_stream(
        self, start: int = ..., count: int = ..., *, skip_adult: bool = ...
    ) -> list[Message]: ...

    async def get_stream(self, group: str, start: int = ..., count: int = ...) -> list[Message]: ...


@dataclass(eq=False)
class _Source:
    """One polled stream: its head, its open gaps and its schedule."""

    channel: Channel
    #: Every item with an id up to it was read, but for the gaps; None: not read yet.
    head: int | None = None
    #: Open walks, newest first.
    gaps: list[Descent] = field(default_factory=list)
    interval: float = math.inf
    due: float = 0.0
    polled: float | None = None
    failures: int = 0
    #: A catch-up: the source reads its head once more, walks down, and leaves.
    retiring: bool = False
    #: The head was read since the source was opened (or turned into a catch-up).
    caught: bool = False
    #: A cold shared source walks down to this instead of starting at its head.
    rewind: int | None = None
    #: Read during the poll under way: handed on, oldest first, when it ends (or fails).
    held: list[Message] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.channel.key

    def claim(self) -> int | None:
        """Up to here every item was read (None: nothing is claimed yet)."""
        if self.head is None:
            return None
        return min([self.head, *(g.low for g in self.gaps)])

    def open_gap(self, low: int) -> None:
        """Items above ``low`` up to the head are to be read again (a claim handed over). One
        walk from the lowest point replaces the open ones: repeated hand-overs (a group moving
        back and forth) never pile up copies of one range."""
        assert self.head is not None
        low = min([low, *(g.low for g in self.gaps)])
        if low >= self.head:
            return
        gap = Descent(self.channel.page, low)
        gap.top = self.head + 1
        self.gaps = [gap]

    @property
    def settled(self) -> bool:
        """Read from its head down to its claim: nothing of it is left to read."""
        return self.caught and self.head is not None and not self.gaps


class _Spend:
    """The follower's own windows: ``share`` of each throttle window, over its own calls."""

    def __init__(self, budget: Budget, clock: Clock) -> None:
        self.clock = clock
        # A client without a throttle (windows None and none reported) has no windows to
        # share: nothing to hold back.
        self.windows = [(w.length, max(1, math.floor(w.limit * budget.share)))
                        for w in budget.windows or ()]
        self.calls: deque[float] = deque()
        self.longest = max((length for length, _ in self.windows), default=0.0)

    def wait(self) -> float:
        """Seconds until every window has a place."""
        now = self.clock.monotonic()
        while self.calls and self.calls[0] <= now - self.longest:
            self.calls.popleft()
        wait = 0.0
        for length, cap in self.windows:
            if len(self.calls) >= cap:  # the cap-th call back frees the window's next place
                wait = max(wait, self.calls[-cap] + length - now)
        return wait

    def sustainable(self, shortest: float) -> float:
        """The highest steady rate (calls a second) from now on that never meets a full
        window at least ``shortest`` seconds long, given the calls each still holds: a burst
        (probes, discovery, a flood's pages) lowers it until the burst rolls out of the
        window. (A shorter window only holds a call for seconds: the wait does.) Infinite
        when there is no such window."""
        now = self.clock.monotonic()
        rate = math.inf
        for length, cap in self.windows:
            if length < shortest:
                continue
            inside = [t for t in self.calls if t > now - length]
            rate = min(rate, cap / length)
            for i, t in enumerate(inside):  # by t + length, i of them have rolled out
                rate = min(rate, max(cap - len(inside) + i, 0) / max(t + length - now, 1e-9))
        return rate

    async def take(self) -> None:
        while (wait := self.wait()) > 0:
            await self.clock.sleep(wait)
        self.calls.append(self.clock.monotonic())


#: What a cursor claims: heads, gaps (per source) and starts (per group).
_Claim = tuple[dict[str, int], dict[str, tuple[tuple[int, int], ...]], dict[str, int]]


@dataclass(slots=True)
class _Top:
    """A poll's walk down from the head, and what it found."""

    gap: Descent
    fresh: list[Message]


#: Each client's follower windows: followers of one client (a restarted one included) share
#: one budget, so that together they never take more than their share.
_SPENDS: weakref.WeakKeyDictionary[object, dict[object, _Spend]] = weakref.WeakKeyDictionary()
#: The ids kept for dedupe are pruned below the claim's floor from this many on.
_PRUNE_AT = 4096


def _spend_of(client: FollowCalls, budget: Budget) -> _Spend:
    spends = _SPENDS.setdefault(client, {})
    key = (budget.share, tuple((w.length, w.limit) for w in budget.windows or ()))
    spend = spends.get(key)
    if spend is None:
        spend = spends[key] = _Spend(budget, client.clock)
    return spend


class Follower:
    """An async iterator over the messages of ``groups``: see the module's rules."""

    def __init__(
        self,
        client: FollowCalls,
        groups: Iterable[str],
        *,
        budget: Budget | None = None,
        checkpoint: Checkpoint | None = None,
        since: Start = "now",
        follow: bool = True,
        mode: Mode = "plan",
        replan_every: float = 600.0,
        limit: int | None = None,
        on_drop: OnDrop = None,
        resume_from: Resume = None,
    ) -> None:
        names = sorted({g.strip().lower() for g in groups})
        if not names or "" in names:
            raise E.ValidationError("follow_groups", "groups", "name at least one group")
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        if since != "now" and (isinstance(since, bool) or not isinstance(since, int)
                               or since < 0):
            raise ValueError(f"since must be 'now' or a message id >= 0, not {since!r}")
        self.client = client
        self.clock = client.clock
        self.groups = names
        self.budget = _windows_of(budget or Budget(), client)
        self.mode: Mode = mode
        self.follow = follow
        self.replan_every = replan_every
        self.resample_every = 3600.0
        self.limit = limit
        self.since: Start = since
        self.on_drop = on_drop
        self._resume = _follow_cursor(resume_from)
        self._checkpoint = checkpoint
        self._key = (checkpoint.key if checkpoint and checkpoint.key else _default_key(names))
        self._planner: Planner | None = None
        self._plan: Plan | None = None
        self._sources: dict[str, _Source] = {}
        #: Pages discovery read, each with the newest id known before it: the first polls'.
        self._first_pages: dict[Channel, tuple[list[Message], int]] = {}
        #: Where each group starts before its source is read (None: now).
        self._starts: dict[str, int | None] = {}
        self._readable: set[str] = set()
        self._pending: set[str] = set()
        self._spend = _spend_of(client, self.budget)
        self._buffer: deque[Message] = deque()
        self._seen: set[int] = set()
        self._handed: set[int] = set()
        self._outstanding: int | None = None
        self._claim: _Claim = ({}, {}, {})
        self._task: asyncio.Future[None] | None = None
        self._planned_at = 0.0
        self._resample_at = 0.0
        self._unsaved = 0
        self._saved_at = self.clock.monotonic()
        self._saved: str | None = None
        self._started = False
        self._closed = False
        self._to_raise: UnreadableGroups | None = None
        self._background_at = 0.0
        self._prune_at = _PRUNE_AT
        #: Groups whose last probe failed: probed again once the others had their turn.
        self._probe_failed: set[str] = set()
        self._saving = asyncio.Lock()
        self._halted = False
        self._restored: FollowCursor | None = None
        #: The newest id read from any source (ids are global: everything below it exists).
        self._known = 0
        #: Groups left out of the follow, and why.
        self.dropped: dict[str, str] = {}
        self.count = 0
        self.calls = 0

    # -- inspection -----------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The current plan (after the first item is asked for, or ``async with``)."""
        if self._plan is None:
            raise RuntimeError("the plan is made when the follower starts")
        return self._plan

    @property
    def cursor(self) -> FollowCursor:
        """Everything handed out and acknowledged (the last item counts once the next one is
        asked for, or on ``commit()``)."""
        heads, gaps, starts = self._claim
        floor = self._floor()
        return FollowCursor(heads=dict(heads), gaps=dict(gaps), floor=floor, starts=starts,
                            yielded=tuple(sorted(i for i in self._handed if i > floor)))

    def _floor(self) -> int:
        """The lowest point the claim reaches: every id at or below it was handed out."""
        heads, gaps, starts = self._claim
        lows = [lo for g in gaps.values() for lo, _ in g]
        return min([*heads.values(), *lows, *starts.values()], default=0)

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close(ack=exc_type is None)

    async def aclose(self, *, ack: bool = False) -> None:
        """Stop and save; ``ack``: the last item handed out was processed (by default it
        counts as not processed: ``commit()`` first, or leave ``async with`` normally)."""
        await self._close(ack=ack)

    def halt(self) -> None:
        """Stop every poll now, synchronously (a fleet worker that lost its lease): the
        follower hands out nothing more; ``aclose()`` saves what was acknowledged."""
        self._halted = True
        if self._task is not None:
            self._task.cancel()

    async def flush(self) -> None:
        """Save what was acknowledged, now (a timer's save beside the consumer's)."""
        await self._save(force=True)

    async def commit(self) -> None:
        """Everything handed out so far is processed: save it now."""
        self._acknowledge()
        await self._save(force=True)

    async def _close(self, *, ack: bool) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if ack:
            self._acknowledge()
        with anyio.move_on_after(_CLOSE_SAVE_TIMEOUT, shield=True):
            await self._save(force=True)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        if self._closed or self._halted or (self.limit is not None
                                            and self.count >= self.limit):
            raise StopAsyncIteration
        await self._start()
        if not self.groups:
            raise StopAsyncIteration
        self._acknowledge()
        await self._save()
        if self._to_raise is not None:
            problem, self._to_raise = self._to_raise, None
            raise problem
        while not self._buffer:
            if not self.follow and self._finished():
                await self._save(force=True)
                raise StopAsyncIteration
            # Nothing buffered, nothing unacknowledged: everything read is handed out.
            self._claim = self._claim_now()
            await self._work()
        message = self._buffer.popleft()
        self._outstanding = message.id
        self.count += 1
        return message

    async def _work(self) -> None:
        """Run (or await the running) step: a cancel of this wait leaves the step running."""
        if self._halted:
            raise StopAsyncIteration
        if self._task is None:
            self._task = asyncio.ensure_future(self._step())
        task = self._task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if (self._halted or self._closed) and not _cancelling():
                raise StopAsyncIteration from None  # halted or closed by another task
            raise
        finally:
            if task.done() and self._task is task:
                self._task = None
        if self._to_raise is not None:
            problem, self._to_raise = self._to_raise, None
            raise problem

    def _acknowledge(self) -> None:
        """The item handed out last is processed; with nothing buffered, the claim moves up."""
        if self._outstanding is not None:
            self._handed.add(self._outstanding)
            self._outstanding = None
            self._unsaved += 1
        if not self._buffer and self._plan is not None:
            self._claim = self._claim_now()
            self._prune()

    def _claim_now(self) -> _Claim:
        if any(s.held for s in self._sources.values()):
            return self._claim  # read, not handed on yet: the claim may not cover them
        heads = {k: s.head for k, s in self._sources.items() if s.head is not None}
        gaps = {k: tuple((g.low, g.top if g.top is not None else s.head + 1) for g in s.gaps)
                for k, s in self._sources.items() if s.head is not None and s.gaps}
        return heads, gaps, self._cold_starts()

    def _cold_starts(self) -> dict[str, int]:
        """Groups whose source was not read yet, and where each starts."""
        out: dict[str, int] = {}
        for row in self._plan.sources if self._plan else ():
            src = self._sources.get(row.source.key)
            if src is None or src.head is not None:
                continue
            out.update((g, s) for g in row.groups if (s := self._starts.get(g)) is not None)
        return out

    def _prune(self) -> None:
        # Amortised: a floor held down (a source that keeps failing) must not make every
        # acknowledgement scan the whole set again.
        if len(self._seen) < self._prune_at:
            return
        floor = self._floor()
        self._seen = {i for i in self._seen if i > floor}
        self._handed = {i for i in self._handed if i > floor}
        self._prune_at = max(_PRUNE_AT, 2 * len(self._seen))

    async def _save(self, *, force: bool = False) -> None:
        async with self._saving:  # in order: a newer cursor is never overwritten by an older
            await self._save_now(force=force)

    async def _save_now(self, *, force: bool) -> None:
        cp = self._checkpoint
        if cp is None or self._plan is None:
            return
        due = self._unsaved >= cp.every or (
            cp.interval is not None and self.clock.monotonic() - self._saved_at >= cp.interval
        )
        if not (force or (due and self._unsaved)):
            return
        value = self.cursor.to_json()
        if value != self._saved:
            await cp.store.save(self._key, value)
            self._saved = value
        self._unsaved = 0
        self._saved_at = self.clock.monotonic()

    def _finished(self) -> bool:
        return (self._plan is not None and not self._pending
                and all(s.settled for s in self._sources.values()))

    # -- start ----------------------------------------------------------------------------

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            await self._load()
            infos = await self._discover()
            self._planner = Planner(infos, self.budget, self.mode)
        except BaseException:
            self._closed = True  # nothing to follow, and nothing to save
            raise
        now = self.clock.time()
        for channel, (page, _) in self._first_pages.items():
            self._planner.seed_source(channel, self._covered(channel, infos), _stamps(page), now)
        # "now": every message with an id above the newest one discovery saw is new.
        self._starts = {g: self._known if s is None else s for g, s in self._starts.items()}
        self._resample_at = self.clock.monotonic() + self.resample_every
        self._replan()
        # A page kept for a source the plan does not poll would be stale by its first poll.
        self._first_pages = {c: p for c, p in self._first_pages.items() if c.key in self._sources}
        self._claim = self._claim_now()

    async def _load(self) -> None:
        cursor = self._resume
        if cursor is None and self._checkpoint is not None:
            raw = await self._checkpoint.store.load(self._key)
            self._saved = raw
            cursor = None if raw is None else FollowCursor.from_json(raw)
        start = None if self.since == "now" else int(self.since)
        self._starts = dict.fromkeys(self.groups, start)
        if cursor is None:
            return
        self._seen = set(cursor.yielded)
        self._handed = set(cursor.yielded)
        for g in self.groups:
            claim = _claim_of(cursor, g)
            self._starts[g] = claim if claim is not None else start
        self._restored = cursor

    async def _discover(self) -> dict[str, GroupInfo]:
        planned = self.mode == "plan"
        public: list[Message] = []
        joined: dict[str, Group] = {}
        if planned:
            # The heads first: "now" is when the follow starts, not after the group list
            # (1 000 joined groups are 34 pages, over a minute of the minute window).
            has_login = await self._first_page_if_login(JOINED)
            public = await self._first_page(PUBLIC)
            joined = await self._joined_groups() if has_login else {}
        infos = {g: GroupInfo(g, joined=g in joined, public=_public(joined.get(g)))
                 for g in self.groups}
        for m in public:
            g = m.group_name.lower()
            if g in infos:
                infos[g] = GroupInfo(g, joined=infos[g].joined, public=True)
        self._readable = {g for g, i in infos.items() if i.public or i.joined}
        unknown = [g for g in self.groups
                   if infos[g].public is None and not (infos[g].joined and planned)]
        if len(unknown) > PROBE_AT_START:
            if planned:
                # Probing them all first would hold every delivery back (500 groups: 17
                # minutes at the minute window): the public stream covers them meanwhile.
                self._pending = set(unknown)
                return infos
            # Each group's own stream is its probe; a few are read now to learn the head.
            unknown = unknown[:PROBE_AT_START] if self.since == "now" else []
        bad = {}
        for g in unknown:
            infos[g] = await self._probe(g)
            if infos[g].problem:
                bad[g] = infos[g].problem
        if bad and self._restored is None:
            raise UnreadableGroups(bad)  # a bad name: the user's own input
        for g, why in bad.items():  # followed before, unreadable since: dropped alone
            self._drop_at_start(g, why)
            del infos[g]
        return infos

    def _drop_at_start(self, group: str, why: str) -> None:
        self.groups = [g for g in self.groups if g != group]
        self._starts.pop(group, None)
        self.dropped[group] = why
        self._report(UnreadableGroups({group: why}))

    def _report(self, problem: UnreadableGroups) -> None:
        if self.on_drop == "raise":
            self._to_raise = problem
        elif self.on_drop is not None:
            self.on_drop(problem)
        else:
            log.warning("%s; following the others", problem)

    async def _joined_groups(self) -> dict[str, Group]:
        out: dict[str, Group] = {}
        for page_no in range(_LIST_PAGES):
            try:
                page = await self._call(partial(self._groups_page, page_no))
            except E.ValidationError:
                return out  # no credentials: no joined stream, and no call was made
            out.update((g.group_name.lower(), g) for g in page)
            if len(page) < 30:
                break
        return out

    async def _first_page_if_login(self, channel: Channel) -> bool:
        """The first page of a stream that needs a login; False: no credentials (and no
        call was made)."""
        try:
            await self._first_page(channel)
        except E.ValidationError:
            return False
        return True

    async def _groups_page(self, page_no: int) -> list[Group]:
        await self._spend.take()
        self.calls += 1
        return await self.client.get_joined_groups(page_no * 30, 30)

    async def _first_page(self, channel: Channel) -> list[Message]:
        known = self._known
        page = await self._call(lambda: self._fetch(channel, 0))
        self._first_pages[channel] = (page, known)
        return page

    async def _probe(self, name: str, *, background: bool = False) -> GroupInfo:
        """A group neither shared stream shows: one read of its own stream. At the start the
        page is kept for the group's first poll (and faults are waited out); in the background
        it is read once (a fault is raised, and the group waits for its next turn)."""
        channel = Channel("group", name)
        try:
            page = await (self._fetch(channel, 0) if background else self._first_page(channel))
        except UNREADABLE as exc:
            return GroupInfo(name, False, False, _why(exc, self.mode))
        self._readable.add(name)
        if self._planner is not None:
            self._planner.seed_source(channel, [name], _stamps(page), self.clock.time())
        return GroupInfo(name, False, True)

    @staticmethod
    def _covered(channel: Channel, infos: dict[str, GroupInfo]) -> list[str]:
        if channel.kind == "group":
            return [channel.group]
        if channel.kind == "joined":
            return [g for g, i in infos.items() if i.joined]
        return [g for g, i in infos.items() if i.public is not False]

    # -- calls ----------------------------------------------------------------------------

    async def _fetch(self, channel: Channel, start: int) -> list[Message]:
        if self._spend.wait() > 0:  # what a poll read so far goes out before it waits
            self._release()
        await self._spend.take()
        self.calls += 1
        if channel.kind == "joined":
            page = await self.client.get_joined_groups_stream(start, channel.page)
        elif channel.kind == "public":
            page = await self.client.get_public_stream(start, channel.page, skip_adult=False)
        else:
            page = await self.client.get_stream(channel.group, start, channel.page)
        self._known = max([self._known, *(m.id for m in page)])
        return page

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """A start-up call: transient faults are waited out, like a poll's."""
        failures = 0
        while True:
            try:
                return await call()
            except FATAL + UNREADABLE:
                raise
            except E.GupshupError as exc:
                failures += 1
                wait = _backoff(failures)
                log.warning("follow: start-up call failed (%s); again in %.0f s", exc, wait)
                await self.clock.sleep(wait)

    # -- the work loop --------------------------------------------------------------------

    async def _step(self) -> None:
        """Wait for the next piece of work that is due, and do it."""
        what, at, source = self._next()
        wait = at - self.clock.monotonic()
        if wait > 0:
            await self.clock.sleep(wait)
        if what == "replan":
            self._replan()
        elif what == "probe":
            await self._probe_next()
        elif what == "catch-up":
            assert source is not None
            await self._catch_up_poll(source)
        elif what == "resample":
            await self._resample()
        else:
            assert source is not None
            await self._poll(source)

    def _next(self) -> tuple[str, float, _Source | None]:
        # (when, rank, what): whatever is already due counts as now, and then a re-plan (no
        # I/O) goes first, a poll or a resample next, background work (catch-ups, probes) last.
        now = self.clock.monotonic()
        options: list[tuple[float, int, str, _Source | None]] = []
        polled = [s for s in self._sources.values() if not s.retiring]
        if polled:
            first = min(polled, key=lambda s: s.due)
            options.append((first.due, 0, "poll", first))
        catching = [s for s in self._sources.values() if s.retiring]
        if catching:
            first = min(catching, key=lambda s: s.due)
            options.append((first.due, 1, "catch-up", first))
        if self._pending:
            options.append((self._background_at, 1, "probe", None))
        if self.follow:
            options.append((self._planned_at + self.replan_every, -1, "replan", None))
            if self._planner is not None and self._plan is not None and \
                    self._planner.unused_shared(self._plan):
                options.append((self._resample_at, 0, "resample", None))
        at, _, what, source = min(options, key=lambda o: (max(o[0], now), o[1]))
        return what, at, source

    async def _poll(self, src: _Source) -> None:
        now = self.clock.monotonic()
        try:
            full = await self._walk(src)
        except FATAL:
            raise
        except UNREADABLE as exc:
            self._lost(src, exc)
            return
        except E.GupshupError as exc:
            src.failures += 1
            src.due = now + _backoff(src.failures)
            log.warning("%s: poll failed (%s); again in %.0f s", src.key, exc,
                        src.due - now)
            return
        src.failures = 0
        src.polled = now
        if src.channel.kind == "group":
            self._readable.add(src.channel.group)
            if src.channel.group in self._pending:  # this read was its probe
                self._found(GroupInfo(src.channel.group, False, True))
        if src.retiring and src.settled:
            if self._sources.get(src.key) is src:
                del self._sources[src.key]
            return
        src.due = self._next_due(src, now)
        if full and self.follow:
            self._replan_soon()  # the source carries more than its plan priced

    def _next_due(self, src: _Source, now: float) -> float:
        if src.retiring:
            return now
        if not self.follow:
            return now if not src.settled else math.inf
        return now + src.interval

    async def _walk(self, src: _Source) -> bool:
        """One poll: the head, then the open gaps, page by page. True: stopped at
        :data:`POLL_PAGES` with gaps still open."""
        try:
            return await self._read(src)
        finally:
            self._release()

    def _release(self) -> None:
        """Hand on what the polls read, each source's oldest first."""
        for src in self._sources.values():
            held, src.held = src.held, []
            if held:
                self._publish(src.channel, held)

    async def _read(self, src: _Source) -> bool:
        top, pages = None, 0
        if src.head is None:
            top = await self._cold(src)
        elif not src.caught or (self.follow and not src.retiring):
            top = await self._top(src)
        src.caught = True
        fresh: list[Message] = top.fresh if top is not None else []
        while src.gaps and pages < POLL_PAGES:
            gap = src.gaps[0]
            position = gap.position()
            page = await self._fetch(src.channel, position)
            pages += 1
            got = self._take(src, gap, position, page)
            if top is not None and gap is top.gap:
                fresh += got
        if top is not None:
            self._observe(src, fresh, open_=top.gap in src.gaps)
        return bool(src.gaps)

    async def _cold(self, src: _Source) -> _Top | None:
        """The first read of a shared source: its head is now (or its rewind, walked down
        to); the groups it covers that start below catch up on their own streams."""
        page, known = await self._first_page_or_read(src.channel)
        if src.rewind is None:
            src.head = max([known, *(m.id for m in page)])
            self._catch_up_below(src)
            return None
        src.head, src.rewind = src.rewind, None
        return self._take_top(src, page, known)

    async def _top(self, src: _Source) -> _Top:
        page, known = await self._first_page_or_read(src.channel)
        return self._take_top(src, page, known)

    async def _first_page_or_read(self, channel: Channel) -> tuple[list[Message], int]:
        """Page 0, and the newest id known before it was read."""
        first = self._first_pages.pop(channel, None)  # discovery read it: no second call
        if first is not None:
            return first
        known = self._known
        return await self._fetch(channel, 0), known

    def _take_top(self, src: _Source, page: list[Message], known: int) -> _Top:
        """A first page: what is above the head opens a walk down to it. Ids are global and
        grow with time, so the source holds nothing unread up to ``known`` (the newest id
        known before the read) but what lies above the head: the head moves up to it, which
        keeps quiet sources from holding the cursor back."""
        assert src.head is not None
        gap = Descent(src.channel.page, src.head)
        newest = max((m.id for m in page), default=0)
        if newest <= src.head:
            src.head = max(src.head, min(known, self._known))
            return _Top(gap, [])
        src.head = max(newest, known)
        return _Top(gap, self._take(src, gap, 0, page, insert=True))

    def _take(
        self, src: _Source, gap: Descent, position: int, page: list[Message],
        *, insert: bool = False,
    ) -> list[Message]:
        """What a read of ``gap`` at ``position`` brought: new items to the buffer."""
        fresh = [page[n] for n in gap.take(position, [m.id for m in page])]
        if insert and not gap.done:
            src.gaps.insert(0, gap)
        elif gap.done and gap in src.gaps:
            src.gaps.remove(gap)
        src.held += fresh
        return fresh

    def _publish(self, channel: Channel, fresh: Sequence[Message]) -> None:
        wanted = set(self.groups)
        for m in sorted(fresh, key=lambda m: m.id):
            name = m.group_name.lower()
            if channel == PUBLIC and name in self._pending:
                self._found(GroupInfo(name, False, True))
            if name in wanted and m.id not in self._seen:
                self._seen.add(m.id)
                self._buffer.append(m)

    def _observe(self, src: _Source, fresh: Sequence[Message], *, open_: bool = False) -> None:
        """Teach the planner what a poll's top walk found. A walk left open has read only
        part of what arrived: the count is scaled by the time its items span."""
        if self._planner is None:
            return
        now = self.clock.time()
        total = float(len(fresh))
        if open_ and len(fresh) > 1 and src.polled is not None:
            span = (max(m.timestamp for m in fresh) - min(m.timestamp for m in fresh)) / 1000
            elapsed = self.clock.monotonic() - src.polled
            total *= max(1.0, elapsed / max(span, 1e-3))
        wanted = set(self.groups)
        followed = [m.group_name.lower() for m in fresh if m.group_name.lower() in wanted]
        self._planner.observe(src.channel, round(total), followed, now)

    # -- groups that cannot be read -------------------------------------------------------

    def _lost(self, src: _Source, exc: BaseException) -> None:
        """A group's own stream refused to be read: the group leaves the follow."""
        name = src.channel.group
        self._sources.pop(src.key, None)
        self._found(GroupInfo(name, False, False, _why(exc, self.mode)))

    def _found(self, info: GroupInfo) -> None:
        """What a read told of a group whose readability was not known, or changed."""
        assert self._planner is not None
        self._pending.discard(info.name)
        self._planner.learn(info)
        if not info.problem:
            self._readable.add(info.name)
            if not self._pending:
                self._replan_soon()  # the next plan takes the probes' share
            return
        self.groups = [g for g in self.groups if g != info.name]
        self.dropped[info.name] = info.problem
        self._sources.pop(Channel("group", info.name).key, None)
        problem = UnreadableGroups({info.name: info.problem})
        if info.name not in self._readable and self._restored is None:
            self._to_raise = problem  # never read: a bad name, raised once
        else:
            self._report(problem)
        self._readable.discard(info.name)
        if self.groups:
            self._replan_soon()

    # -- background work: probes and catch-ups --------------------------------------------

    async def _catch_up_poll(self, src: _Source) -> None:
        """One poll of a catch-up (the history a start or a hand-over asks for; it probes its
        group too): only when no poll is due, and backing off on faults like a poll."""
        await self._poll(src)

    async def _probe_next(self) -> None:
        """One probe of a group no page has shown yet; one that failed waits for the others
        (round robin), so a group whose stream fails holds no other back."""
        self._pace_background()
        fresh = sorted(self._pending - self._probe_failed) or sorted(self._pending)
        if not self._pending - self._probe_failed:
            self._probe_failed.clear()
        name = fresh[0]
        info = await self._probe_or_wait(name)
        if info is None:
            self._probe_failed.add(name)
        else:
            self._probe_failed.discard(name)
            self._found(info)

    def _pace_background(self) -> None:
        if self._spend.windows:  # a client without a throttle: nothing to pace
            self._background_at = self.clock.monotonic() + 1 / (
                PROBE_SHARE * self.budget.calls_per_second)

    async def _probe_or_wait(self, name: str) -> GroupInfo | None:
        try:
            return await self._probe(name, background=True)
        except FATAL:
            raise
        except E.GupshupError as exc:
            log.warning("group:%s: probe failed (%s); trying again later", name, exc)
            return None

    def _catch_up(self, group: str, claim: int) -> None:
        """``group``, now on the public stream, has messages above ``claim`` that stream
        will not show: its own stream reads them (its head once more, then down to the
        claim), and leaves."""
        if group not in self.groups:
            return
        own = self._sources.get(Channel("group", group).key)
        if own is None:
            own = self._sources[Channel("group", group).key] = _Source(
                Channel("group", group), head=claim
            )
        elif own.head is not None and claim < own.head:
            own.open_gap(claim)
        own.head = claim if own.head is None else own.head
        own.retiring, own.caught = True, False

    def _catch_up_below(self, src: _Source) -> None:
        """A shared source just read for the first time: its groups that start below its
        head catch up."""
        assert src.head is not None
        assert self._plan is not None
        row = next((r for r in self._plan.sources if r.source == src.channel), None)
        for g in row.groups if row else ():
            start = self._starts.get(g)
            if start is not None and start < src.head and src.channel == PUBLIC:
                self._catch_up(g, start)

    # -- planning -------------------------------------------------------------------------

    def _replan_soon(self) -> None:
        """Re-plan now, or :data:`REPLAN_GAP` seconds after the last plan: a plan is not
        revised faster than that, so groups do not flap between sources."""
        now = self.clock.monotonic()
        at = max(now, self._planned_at + REPLAN_GAP)
        self._planned_at = min(self._planned_at, at - self.replan_every)

    def _replan(self) -> None:
        assert self._planner is not None
        if not self.groups:
            self._planned_at = math.inf
            return
        if not self._pending and not any(s.retiring for s in self._sources.values()):
            self._planner.reserve = 0.0
        else:
            self._planner.reserve = PROBE_SHARE * self.budget.calls_per_second
        old = self._plan
        self._planner.ceiling = self._spend.sustainable(self.replan_every)
        plan = self._planner.plan(self.clock.time())
        self._plan = plan
        self._planned_at = self.clock.monotonic()
        claims = self._group_claims(old)
        self._apply(plan, old, claims)
        log.info("plan: %d sources, %.0f calls/day, mean delay %.1f s",
                 len(plan.sources), plan.calls_per_day, plan.expected_delay)

    def _group_claims(self, old: Plan | None) -> dict[str, int | None]:
        """Each group's claim before this plan: its source's, or its start."""
        if old is None:
            return dict(self._starts)
        out: dict[str, int | None] = {}
        for row in old.sources:
            src = self._sources.get(row.source.key)
            claim = src.claim() if src is not None else None
            for g in row.groups:
                out[g] = claim if claim is not None else self._starts.get(g)
        return out

    def _apply(self, plan: Plan, old: Plan | None, claims: dict[str, int | None]) -> None:
        now = self.clock.monotonic()
        before = {g: r.source for r in old.sources for g in r.groups} if old else {}
        keep = {r.source.key for r in plan.sources}
        for row in plan.sources:
            src = self._sources.get(row.source.key)
            if src is None:
                src = self._sources[row.source.key] = self._open(row.source)
            src.retiring = False
            if src.interval != row.interval:
                last = src.polled if src.polled is not None else now
                src.due = min(src.due, max(now, last + row.interval)) if src.polled else now
            src.interval = row.interval
            for g in row.groups:
                if before.get(g) != row.source:
                    self._hand_over(g, src, claims.get(g))
        for key in [k for k, s in self._sources.items() if k not in keep and not s.retiring]:
            del self._sources[key]

    def _open(self, channel: Channel) -> _Source:
        """A source the follower did not poll before."""
        src = _Source(channel)
        restored = self._restored
        if restored is not None and channel.key in restored.heads:
            src.head = restored.heads[channel.key]
            for low, top in restored.gaps.get(channel.key, ()):
                gap = Descent(channel.page, low)
                gap.top = top
                src.gaps.append(gap)
        return src

    def _hand_over(self, group: str, src: _Source, claim: int | None) -> None:
        """``group`` is now covered by ``src``; everything of it up to ``claim`` was handed
        out. What lies between is read again, never walked through unfollowed traffic."""
        if claim is None:
            return
        self._starts[group] = claim
        mine = src.claim()
        if src.channel.kind == "group":
            if mine is None:
                src.head = claim
            elif claim < mine:
                src.open_gap(claim)
            return
        if src.channel == JOINED:
            # The joined stream carries only the account's own groups: it walks down itself
            # (and private groups have no other source).
            if mine is None:
                src.rewind = claim if src.rewind is None else min(src.rewind, claim)
            elif claim < mine:
                src.open_gap(claim)
            return
        if mine is None:
            return  # catches up once the public stream's head is known (_catch_up_below)
        if claim < mine:
            self._catch_up(group, claim)

    async def _resample(self) -> None:
        """Once every ``resample_every`` seconds, one page of each shared source the plan left:
        the only way to see that the traffic that made it too dear has passed."""
        self._resample_at = self.clock.monotonic() + self.resample_every
        assert self._planner is not None
        assert self._plan is not None
        for channel in self._planner.unused_shared(self._plan):
            try:
                page = await self._fetch(channel, 0)
            except FATAL:
                raise
            except E.GupshupError as exc:
                log.warning("%s: resample failed (%s)", channel.key, exc)
                return
            self._planner.resample(channel, _stamps(page), self.clock.time())


def follow_groups(
    client: FollowCalls,
    groups: Iterable[str],
    *,
    budget: Budget | None = None,
    checkpoint: Checkpoint | None = None,
    since: Start = "now",
    follow: bool = True,
    mode: Mode = "plan",
    limit: int | None = None,
    on_drop: OnDrop = None,
    resume_from: Resume = None,
) -> Follower:
    """Follow ``groups`` on one IP's quota: see :class:`Follower`. ``mode="per-group"`` polls
    every group on its own stream (with the same optimised intervals)."""
    return Follower(
        client, groups, budget=budget, checkpoint=checkpoint, since=since, follow=follow,
        mode=mode, limit=limit, on_drop=on_drop, resume_from=resume_from,
    )


def merged_stream(
    client: FollowCalls,
    groups: Iterable[str],
    *,
    follow: bool = False,
    since: Literal["now"] | int | None = None,
    limit: int | None = None,
    resume_from: Resume = None,
    checkpoint: Checkpoint | None = None,
    budget: Budget | None = None,
    per_group: bool = False,
    on_drop: OnDrop = None,
    buffer: int | None = None,
    planned: bool | None = None,
) -> Follower:
    """Many groups as one stream, each message once: ``client.merged_stream``'s rules.

    ``since=None``: each group's history, then (``follow``) what arrives; ``"now"`` (with
    ``follow``): new messages only; an id: every later message. Without ``follow`` the stream
    ends once every group is read down to its start, on the groups' own streams (no discovery:
    the cheapest way to read histories); with ``follow`` the planner picks the sources
    (``per_group=True``: each group's own stream). ``buffer`` and ``planned`` are the spellings
    of the per-group pollers this engine replaced: accepted, with a :class:`DeprecationWarning`.
    """
    if buffer is not None or planned is not None:
        warnings.warn("merged_stream: buffer= and planned= are deprecated (one engine: "
                      "per_group=True polls each group's own stream)", DeprecationWarning,
                      stacklevel=3)
        per_group = per_group or planned is False
    if since == "now":
        if not follow:
            raise ValueError("since='now' follows new items only: it needs follow=True")
        if resume_from is not None:
            raise ValueError("since='now' and resume_from both say where to start: pass one")
    elif since is not None and (isinstance(since, bool) or not isinstance(since, int)):
        raise ValueError(f"since must be 'now', a message id or None, not {since!r}")
    mode: Mode = "per-group" if per_group or not follow else "plan"
    return Follower(
        client, groups, budget=budget, checkpoint=checkpoint,
        since=0 if since is None else since, follow=follow, mode=mode, limit=limit,
        on_drop=on_drop, resume_from=resume_from,
    )


#: The name of ``merged_stream``'s return type before the engines were one.
MergedStream = Follower

#: Longest a closing follower waits to save its checkpoint, even when cancelled.
_CLOSE_SAVE_TIMEOUT = 5.0


def _follow_cursor(value: Resume) -> FollowCursor | None:
    if value is None or isinstance(value, FollowCursor):
        return value
    if isinstance(value, MergedCursor):
        return FollowCursor.from_merged(value)
    return FollowCursor.from_json(value)


def _claim_of(cursor: FollowCursor, group: str) -> int | None:
    """Up to where ``group``'s messages were handed out, by a cursor: its start, if its source
    was not read; else the lowest claim of the sources that may have covered it (its own
    stream, the joined and the public streams). None: the cursor says nothing of it."""
    if group in cursor.starts:
        return cursor.starts[group]
    keys = (Channel("group", group).key, JOINED.key, PUBLIC.key)
    claims = [cursor.heads[k] for k in keys if k in cursor.heads]
    claims += [low for k in keys for low, _ in cursor.gaps.get(k, ())]
    return min(claims, default=None)


def _windows_of(budget: Budget, client: FollowCalls) -> Budget:
    """``budget`` with the client's windows when it names none (an empty tuple: the client has
    no throttle, and the plan is made for GupShup's limits)."""
    if budget.windows is not None:
        return budget
    windows = tuple(Window(w.period, w.limit, w.length, w.limit) for w in client.quota())
    return dataclasses.replace(budget, windows=windows)


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (not just a task it awaits)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _backoff(failures: int) -> float:
    return float(min(BACKOFF_FIRST * 2.0 ** (failures - 1), BACKOFF_CAP))


def _why(exc: BaseException, mode: Mode) -> str:
    if isinstance(exc, E.GroupNotFound):
        return "no such group"
    if isinstance(exc, E.GroupDisabled):
        return "disabled"
    return "private, and not joined" if mode == "plan" else "private"


def _default_key(names: Sequence[str]) -> str:
    # A thousand names make a poor store key; their digest names the same set.
    return "aggregate:" + hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _public(group: Group | None) -> bool | None:
    return None if group is None else not group.private


def _stamps(page: Sequence[Message]) -> list[tuple[str, float]]:
    return [(m.group_name.lower(), m.timestamp / 1000) for m in page]
