"""The aggregator: follow many groups through the cheapest cover of sources, each message once.

``async with follow_groups(client, groups) as stream: async for message in stream: ...``

Rules this module enforces:

* Discovery, before the first poll: the account's joined groups (``users.getJoinedGroups``
  pages) and the first page of the joined and public streams. Those pages are what the
  planner's rates start from, and any new message in them is yielded: discovery costs no call
  that polling would not. A followed group neither shows to be readable is probed with one
  ``groups.getStream``: up to :data:`PROBE_AT_START` of them before the first poll (so a bad
  name in a short list raises :class:`~agupshup.planner.UnreadableGroups` before any poll);
  more are covered by the public stream meanwhile (a group that is not joined is public or
  unreadable) and probed in the background with :data:`PROBE_SHARE` of the budget, unless a
  public page shows them first. One found unreadable then is raised by the next ``anext``
  and leaves the follow set (iterate again to follow the rest).
* Start point: ``since`` (a message id) or the cursor of a checkpoint: every message of a
  followed group with a larger id is yielded exactly once. Without either, the follower starts
  from now: each source from the newest id of its own first page (a source whose first page was
  empty starts from 0, since all it holds is new). Messages that arrive while discovery is
  still reading its first pages may be taken as old; every later one is yielded.
* Each source keeps a head (every item with an id up to it has been seen). A poll reads pages
  from the newest on until it meets an id at or below the head, or a short page: a page of only
  unseen items means a possible gap, so the walk goes deeper (positions only move down as items
  arrive, so a deeper page can repeat items but never skip one). Ids are global and grow with
  time, so once a poll ends, everything up to the newest id known when it began is seen too.
  A walk stops after :data:`MAX_PAGES` pages: what lies between its last page and the head is
  a gap, refilled from that position on (the same and later polls) down to the old head; until
  then the cursor claims no more than the old head.
* A message seen through two sources is yielded once (a set of ids above the lowest head).
* One :class:`~agupshup.checkpoint.MergedCursor` covers the whole plan: each source's head, and
  under ``"*yielded"`` the ids above the lowest head already yielded. It is saved through a
  :class:`~agupshup.checkpoint.Checkpoint` as the consumer acknowledges items; resuming from it
  repeats only the un-checkpointed window. A source the cursor does not name starts from its
  lowest head.
* One task: the follower sleeps on the client's clock until the next source is due; the client's
  scheduler keeps every call within the throttle windows. The plan is revised every
  ``replan_every`` seconds from the rates observed; a group moving to another source hands over
  its head.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from agupshup import errors as E
from agupshup.checkpoint import Checkpoint, Checkpointer, Cursor, MergedCursor
from agupshup.models import Group, Message
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

if TYPE_CHECKING:
    # What the follower uses of a client is the client itself (its clock and page calls),
    # typed by its own signatures; the client imports this module, hence no run-time import.
    from agupshup.client import Client as AggregateCalls

__all__ = ["Follower", "follow_groups"]

log = logging.getLogger("agupshup.aggregate")
YIELDED = "*yielded"
#: A walk reads at most this many pages at a time; a poll that has not met a seen item by then
#: leaves a gap, refilled from where it stopped (see _Gap).
MAX_PAGES = 2_000
_LIST_PAGES = 10_000
#: Up to this many groups of unknown readability are probed before the first poll (so a bad
#: name in a short list is an error before any poll); more are probed in the background.
PROBE_AT_START = 10
#: The share of the budget that background probes use until every group is known.
PROBE_SHARE = 0.25


@dataclass
class _Gap:
    """Items of a source with ids in ``(low, top)`` may not be seen yet; a refill walk
    resumes at ``position`` (arrivals since push them deeper, so it may repeat, never skip)."""

    position: int
    low: int
    top: int


class Follower:
    """An async iterator over the messages of ``groups``, newest arrivals as they come."""

    def __init__(
        self,
        client: AggregateCalls,
        groups: Iterable[str],
        *,
        budget: Budget | None = None,
        checkpoint: Checkpoint | None = None,
        since: int | None = None,
        mode: Mode = "plan",
        replan_every: float = 600.0,
        limit: int | None = None,
    ) -> None:
        names = sorted({g.strip().lower() for g in groups})
        if not names or "" in names:
            raise E.ValidationError("follow_groups", "groups", "name at least one group")
        self.client = client
        self.clock = client.clock
        self.groups = names
        self.budget = budget or Budget()
        self.mode: Mode = mode
        self.replan_every = replan_every
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self._since = since
        self._checkpoint = (
            Checkpointer(checkpoint, _default_key(names), self.clock)
            if checkpoint
            else None
        )
        self._planner: Planner | None = None
        self._plan: Plan | None = None
        self._heads: dict[str, int] = {}
        self._gaps: dict[str, _Gap] = {}
        self._acked_heads: dict[str, int] = {}
        self._seen: set[int] = set()
        self._known_max = 0
        self._buffer: deque[Message] = deque()
        self._due: list[tuple[float, int, Channel]] = []
        self._order = itertools.count()
        self._first_pages: list[tuple[Channel, list[Message]]] = []
        self._intervals: dict[Channel, float] = {}
        self._planned_at = 0.0
        self.resample_every = 3600.0
        self._resample_at = self.clock.monotonic() + self.resample_every
        #: Followed groups not joined, not yet seen in the public stream nor probed.
        self._pending: set[str] = set()
        self._probe_at = 0.0
        self._started = False
        self._closed = False
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
    def cursor(self) -> MergedCursor:
        """Everything yielded so far (acknowledged or not)."""
        return self._cursor(self._safe(self._heads) if not self._buffer else self._acked_heads)

    def _safe(self, heads: dict[str, int]) -> dict[str, int]:
        """``heads``, each no higher than its source's open gap: what a cursor may claim."""
        return {k: min(h, self._gaps[k].low) if k in self._gaps else h for k, h in heads.items()}

    def _cursor(self, heads: dict[str, int]) -> MergedCursor:
        if self._plan is not None:
            keys = {s.source.key for s in self._plan.sources}
            heads = {k: h for k, h in heads.items() if k in keys}
        floor = self._floor(heads)
        queued = {m.id for m in self._buffer}
        ids = sorted(i for i in self._seen if i > floor and i not in queued)
        streams = {k: Cursor(source=k, phase="live", newest=h) for k, h in heads.items()}
        streams[YIELDED] = Cursor(
            source=YIELDED, phase="live", newest=floor, seen=tuple(map(str, ids))
        )
        return MergedCursor(streams=streams)

    def _floor(self, heads: dict[str, int]) -> int:
        keys = [s.source.key for s in self._plan.sources] if self._plan else list(heads)
        return min((heads.get(k, 0) for k in keys), default=0)

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

    async def aclose(self) -> None:
        await self._close(ack=False)

    async def commit(self) -> None:
        """Everything yielded so far is processed: save it now."""
        if self._checkpoint is not None:
            await self._checkpoint.acknowledge(lambda: self.cursor, force=True)
            await self._checkpoint.flush()

    async def _close(self, *, ack: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpoint is not None and self._plan is not None:
            await self._checkpoint.close(lambda: self.cursor, ack=ack)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        if self._closed or (self.limit is not None and self.count >= self.limit):
            raise StopAsyncIteration
        await self._start()
        if self._checkpoint is not None:
            await self._checkpoint.acknowledge(lambda: self.cursor)
        while not self._buffer:  # ends when a poll finds something (it follows forever)
            self._acked_heads = self._safe(self._heads)
            await self._poll_next()
        message = self._buffer.popleft()
        self.count += 1
        if self._checkpoint is not None:
            self._checkpoint.sent()
        return message

    # -- start: discovery and the first plan ----------------------------------------------

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            await self._resume()
            infos = await self._discover()
            self._planner = Planner(infos, self.budget, self.mode)
        except BaseException:
            self._closed = True  # nothing to follow, and nothing to save
            raise
        for source, page in self._first_pages:
            self._planner.seed_source(source, self._covered(source, infos), _stamps(page),
                                      self.clock.time())
        if self._pending:
            self._planner.reserve = PROBE_SHARE * self.budget.calls_per_second
            self._probe_at = self.clock.monotonic()
        self._replan()
        if not self._buffer:
            # Nothing queued: the heads claim only what is seen. Otherwise the acknowledged
            # heads stay where discovery found them (_first_page), below the queued items.
            self._acked_heads = self._safe(self._heads)

    async def _resume(self) -> None:
        if self._checkpoint is None:
            return
        raw = await self._checkpoint.load()
        if raw is None:
            return
        cursor = MergedCursor.from_json(raw)
        for key, c in cursor.streams.items():
            if key == YIELDED:
                self._seen = {int(i) for i in c.seen}
                self._since = c.newest or 0
            elif c.newest is not None:
                self._heads[key] = c.newest
        self._acked_heads = dict(self._heads)  # what the checkpoint holds is acknowledged

    async def _discover(self) -> dict[str, GroupInfo]:
        joined = await self._joined_groups() if self.mode == "plan" else {}
        followed = set(self.groups)
        infos = {g: GroupInfo(g, joined=g in joined, public=_public(joined.get(g)))
                 for g in self.groups}
        if followed & joined.keys():
            await self._first_page(JOINED)
        if self.mode == "plan" and followed - joined.keys():
            seen = {m.group_name.lower() for m in await self._first_page(PUBLIC)}
            for g in seen & followed:
                infos[g] = GroupInfo(g, joined=infos[g].joined, public=True)
        unknown = [g for g in self.groups
                   if infos[g].public is None and not (infos[g].joined and self.mode == "plan")]
        if self.mode == "plan" and len(unknown) > PROBE_AT_START:
            # Probing them all first would hold every delivery back (500 groups: 17 minutes
            # at the minute window): the public stream covers them meanwhile.
            self._pending = set(unknown)
            return infos
        for g in unknown:
            infos[g] = await self._readable(g, self._first_page)
        return infos

    async def _joined_groups(self) -> dict[str, Group]:
        out: dict[str, Group] = {}
        for page_no in range(_LIST_PAGES):
            try:
                page = await self.client.get_joined_groups(page_no * 30, 30)
            except E.ValidationError:
                return out  # no credentials: no joined stream, and no call was made
            self.calls += 1
            out.update((g.group_name.lower(), g) for g in page)
            if len(page) < 30:
                break
        return out

    async def _first_page(self, source: Channel) -> list[Message]:
        page = await self._fetch(source, 0)
        self._first_pages.append((source, page))
        self._start_head(source, page)
        # Before _absorb moves the head past the items it queues: until they are taken, the
        # cursor claims only what came before them.
        self._acked_heads.setdefault(source.key, self._heads[source.key])
        await self._absorb(source, page, first=True)
        return page

    async def _readable(
        self, name: str, read: Callable[[Channel], Awaitable[object]]
    ) -> GroupInfo:
        """A group that is not joined, read once through ``read`` on its own stream."""
        try:
            await read(Channel("group", name))
        except (E.PrivateGroup, E.GroupNotFound) as exc:
            return GroupInfo(name, False, False, self._why(exc))
        return GroupInfo(name, False, True)

    async def _peek(self, source: Channel) -> None:
        """A background probe: the page only seeds the group's rate (the public stream
        delivers its messages meanwhile, so nothing in it is new)."""
        page = await self._fetch(source, 0)
        if self._planner is not None:
            self._planner.seed_source(source, [source.group], _stamps(page), self.clock.time())

    def _start_head(self, source: Channel, page: Sequence[Message]) -> None:
        key = source.key
        if key in self._heads:
            return
        if self._since is not None:
            self._heads[key] = self._since
        else:
            # From now: what a source held when first read is old (ids are global, so one
            # source's newest id says nothing of another's backlog); an empty one holds only
            # what is yet to come.
            self._heads[key] = page[0].id if page else 0

    @staticmethod
    def _covered(source: Channel, infos: dict[str, GroupInfo]) -> list[str]:
        if source.kind == "group":
            return [source.group]
        if source.kind == "joined":
            return [g for g, i in infos.items() if i.joined]
        return [g for g, i in infos.items() if i.public is not False]

    # -- polling --------------------------------------------------------------------------

    async def _fetch(self, source: Channel, start: int) -> list[Message]:
        self.calls += 1
        if source.kind == "joined":
            return await self.client.get_joined_groups_stream(start, source.page)
        if source.kind == "public":
            return await self.client.get_public_stream(start, source.page, skip_adult=False)
        return await self.client.get_stream(source.group, start, source.page)

    async def _poll_next(self) -> None:
        # Peeked, not popped: a poll cancelled or failed on the way stays due.
        due, _, source = self._due[0]
        if self._pending and self._probe_at < due:
            await self._sleep_until(self._probe_at)
            await self._probe_next()
            return
        await self._sleep_until(due)
        known = self._known_max
        try:
            page = await self._fetch(source, 0)
        except (E.PrivateGroup, E.GroupNotFound) as exc:
            if source.group not in self._pending:
                raise
            # A group not probed yet, moved to its own stream: this poll was its probe.
            self._found(GroupInfo(source.group, False, False, self._why(exc)))
            return
        if source.kind == "group" and source.group in self._pending:
            self._found(GroupInfo(source.group, False, True))
        await self._absorb(source, page, first=False, known=known)
        if source.key in self._gaps:
            await self._refill(source)
        now = self.clock.monotonic()
        heapq.heapreplace(self._due, (now + self._intervals[source], next(self._order), source))
        if now - self._planned_at >= self.replan_every:
            await self._resample()
            self._replan()

    async def _sleep_until(self, at: float) -> None:
        wait = at - self.clock.monotonic()
        if wait > 0:
            await self.clock.sleep(wait)

    async def _probe_next(self) -> None:
        """Probe one pending group, within the share of the budget kept for probes."""
        assert self._planner is not None
        self._probe_at = self.clock.monotonic() + 1 / max(self._planner.reserve, 1e-9)
        self._found(await self._readable(min(self._pending), self._peek))

    def _found(self, info: GroupInfo) -> None:
        """What a probe (or a first poll) told of a pending group. One found unreadable leaves
        the follow set and is raised (iterate again to follow the rest); once none is pending,
        the next plan takes the budget probes used."""
        assert self._planner is not None
        self._pending.discard(info.name)
        self._planner.learn(info)
        if not info.problem:
            if not self._pending:
                self._planned_at = -math.inf  # re-plan after the poll under way
            return
        self.groups = [g for g in self.groups if g != info.name]
        self._replan()
        raise UnreadableGroups({info.name: info.problem})

    def _why(self, exc: Exception) -> str:
        if isinstance(exc, E.GroupNotFound):
            return "no such group"
        return "private, and not joined" if self.mode == "plan" else "private"

    def _learn_public(self, page: Sequence[Message]) -> None:
        """A group in a public stream page is public: no probe needed."""
        for name in {m.group_name.lower() for m in page} & self._pending:
            self._found(GroupInfo(name, False, True))

    async def _absorb(
        self, source: Channel, page: list[Message], *, first: bool, known: int = 0
    ) -> None:
        """Take a page read from position 0 and walk deeper until it meets the head."""
        head = self._heads[source.key]
        fresh: dict[int, Message] = {}
        for depth in range(1, MAX_PAGES + 1):
            if source == PUBLIC and self._pending:
                self._learn_public(page)
            fresh.update((m.id, m) for m in page if m.id > head)
            if len(page) < source.page or any(m.id <= head for m in page):
                break
            if depth == MAX_PAGES:
                self._open_gap(source, head, min(fresh))
                break
            page = await self._fetch(source, depth * source.page)
        newest = max([head, known, *fresh])
        self._heads[source.key] = newest
        self._known_max = max(self._known_max, newest)
        self._publish(source, sorted(fresh.values(), key=lambda m: m.id), first)

    def _open_gap(self, source: Channel, head: int, top: int) -> None:
        """The walk stopped above ``head``: what lies between is refilled later. A gap still
        open below is merged in (the refill re-reads the seen stretch between them)."""
        key = source.key
        low = min(head, self._gaps[key].low) if key in self._gaps else head
        self._gaps[key] = _Gap(MAX_PAGES * source.page, low, top)
        log.warning("%s: more than %d pages arrived between polls; refilling", key, MAX_PAGES)

    async def _refill(self, source: Channel) -> None:
        """Walk on from where the gap's last walk stopped, down to its low end."""
        gap = self._gaps[source.key]
        fresh: dict[int, Message] = {}
        for _ in range(MAX_PAGES):
            page = await self._fetch(source, gap.position)
            gap.position += source.page
            fresh.update((m.id, m) for m in page if gap.low < m.id < gap.top)
            if len(page) < source.page or any(m.id <= gap.low for m in page):
                del self._gaps[source.key]
                break
        else:
            # The position moves down every time, so the walk reaches the low end or the end
            # of the stream, unless a new gap above resets it (see _open_gap).
            gap.top = min(fresh, default=gap.top)
        self._publish(source, sorted(fresh.values(), key=lambda m: m.id), first=False)

    def _publish(self, source: Channel, fresh: list[Message], first: bool) -> None:
        wanted = set(self.groups)
        new = [m for m in fresh if m.id not in self._seen and m.group_name.lower() in wanted]
        self._seen.update(m.id for m in new)
        self._buffer.extend(new)
        if self._planner is not None and not first:
            now = self.clock.time()
            self._planner.observe(source, len(fresh), (m.group_name.lower() for m in new), now)
        self._prune()

    def _prune(self) -> None:
        if len(self._seen) < 4096 or self._plan is None:
            return
        floor = self._floor(self._safe(self._acked_heads))
        self._seen = {i for i in self._seen if i > floor}

    # -- planning -------------------------------------------------------------------------

    def _replan(self) -> None:
        assert self._planner is not None
        if not self._pending:
            self._planner.reserve = 0.0
        old = self._plan
        plan = self._planner.plan(self.clock.time())
        now = self.clock.monotonic()
        self._planned_at = now
        last = {s: t - self._intervals.get(s, 0.0) for t, _, s in self._due}
        self._due = []
        self._intervals = {}
        polled = {s.source for s in old.sources} if old else set()
        for row in plan.sources:
            source = row.source
            if source.key not in self._heads or (old and source not in polled):
                # A source that was left behind has a stale head: start where the groups were.
                self._heads[source.key] = self._handover(old, row.groups, self._heads)
                # The acknowledged cursor must not cover the groups' items still queued.
                self._acked_heads[source.key] = self._handover(
                    old, row.groups, self._acked_heads
                )
            self._intervals[source] = row.interval
            since = last.get(source, now)
            heapq.heappush(
                self._due, (max(now, since + row.interval), next(self._order), source)
            )
        keys = {row.source.key for row in plan.sources}
        # A source left behind takes its gap along: its groups' new sources start below it.
        self._gaps = {k: g for k, g in self._gaps.items() if k in keys}
        self._plan = plan
        log.info("plan: %d sources, %.0f calls/day, mean delay %.1f s",
                 len(plan.sources), plan.calls_per_day, plan.expected_delay)

    async def _resample(self) -> None:
        """Once every ``resample_every`` seconds, one page of each shared source the plan left:
        the only way to see that the traffic that made it too dear has passed."""
        now = self.clock.monotonic()
        if self._planner is None or self._plan is None or now < self._resample_at:
            return
        self._resample_at = now + self.resample_every
        for source in self._planner.unused_shared(self._plan):
            page = await self._fetch(source, 0)
            self._planner.resample(source, _stamps(page), self.clock.time())

    def _handover(self, old: Plan | None, groups: Sequence[str], heads: dict[str, int]) -> int:
        """A new source starts where the sources that covered its groups stood in ``heads``."""
        if old is None:
            # The first plan: a group first read through the public stream starts from its
            # head (in ``heads``: the acknowledged one may lie below the live one).
            return heads.get(PUBLIC.key, self._since or 0)
        mine = set(groups)
        heads = self._safe(heads)
        found = [heads.get(s.source.key, 0) for s in old.sources if mine & set(s.groups)]
        return min(found, default=self._floor(heads))


def follow_groups(
    client: AggregateCalls,
    groups: Iterable[str],
    *,
    budget: Budget | None = None,
    checkpoint: Checkpoint | None = None,
    since: int | None = None,
    mode: Mode = "plan",
    limit: int | None = None,
) -> Follower:
    """Follow ``groups`` on one IP's quota: see :class:`Follower`. ``mode="per-group"`` polls
    every group on its own stream (with the same optimised intervals)."""
    return Follower(
        client, groups, budget=budget, checkpoint=checkpoint, since=since, mode=mode, limit=limit
    )


def _default_key(names: Sequence[str]) -> str:
    # A thousand names make a poor store key; their digest names the same set.
    return "aggregate:" + hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _public(group: Group | None) -> bool | None:
    return None if group is None else not group.private


def _stamps(page: Sequence[Message]) -> list[tuple[str, float]]:
    return [(m.group_name.lower(), m.timestamp / 1000) for m in page]
