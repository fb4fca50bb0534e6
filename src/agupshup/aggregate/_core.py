"""The follower's state, its cursor and its calls: what every other part of it uses.

* **Exactly once.** A message is handed out once across sources (a set of ids above the
  lowest claim). The cursor claims the heads and gaps as they stood when nothing was buffered
  and nothing handed out was unacknowledged, plus the ids handed out and acknowledged since:
  it never covers an item not yet handed out.
* **Budget.** Every call (:meth:`_Core._fetch`) first takes a place in the follower's windows
  (:mod:`agupshup.aggregate._spend`); what a poll read so far is handed on before it waits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from agupshup import errors as E
from agupshup.aggregate import _tuning as tuning
from agupshup.aggregate._calls import FATAL, UNREADABLE, FollowCalls, OnDrop, Start, T, log
from agupshup.aggregate._claim import Resume, _Claim, _default_key, _follow_cursor
from agupshup.aggregate._peers import Peers
from agupshup.aggregate._source import _Source
from agupshup.aggregate._spend import _spend_of, _windows_of
from agupshup.aggregate._tuning import _backoff
from agupshup.checkpoint import Checkpoint, FollowCursor
from agupshup.models import Group, Message
from agupshup.planner import JOINED, PUBLIC, Budget, Channel, Mode, Plan, Planner, UnreadableGroups


class _Core:
    """A follower's state, cursor and calls (:class:`~agupshup.aggregate.Follower` is one)."""

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
        peers: Peers | None = None,
        joined: dict[str, Group] | None = None,
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
        self._prune_at = tuning._PRUNE_AT
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
        #: Followers of the same groups elsewhere (:mod:`~agupshup.aggregate._peers`), the
        #: shared heads as last read and as last moved, and how many peers the plan is for.
        self._peers = peers
        self._shared: dict[str, int] = {}
        self._advanced: dict[str, int] = {}
        self._count = 1
        #: The account's joined groups, as discovery found them (or was given them).
        self.joined = joined

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
        self._prune_at = max(tuning._PRUNE_AT, 2 * len(self._seen))

    async def _save(self, *, force: bool = False) -> None:
        async with self._saving:  # in order: a newer cursor is never overwritten by an older
            await self._advance()
            await self._save_now(force=force)

    async def _advance(self) -> None:
        """Move the shared heads to this follower's claim of each shared source (the claim
        covers only what was handed out). A peer that cannot be reached costs the others a
        longer walk, nothing else: the next save tries again."""
        if self._peers is None:
            return
        heads, gaps, _ = self._claim
        moved = {}
        for key in (JOINED.key, PUBLIC.key):
            if key in heads:
                claim = min([heads[key], *(lo for lo, _ in gaps.get(key, ()))])
                if claim > self._advanced.get(key, -1):
                    moved[key] = claim
        if not moved:
            return
        try:
            await self._peers.advance(moved)
        except E.GupshupError as exc:
            log.warning("follow: the shared heads were not moved (%s)", exc)
            return
        self._advanced.update(moved)

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

    # -- calls ----------------------------------------------------------------------------

    def _release(self) -> None:
        """Hand on what the polls read so far (the polling part, :mod:`~agupshup.aggregate.
        _polling`, defines it: a call that waits for the budget hands it on first)."""
        raise NotImplementedError

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
