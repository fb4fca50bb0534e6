"""How a follow starts (cursor, discovery, the first plan) and learns which groups it can read.

* **Start.** ``since="now"``: only what arrives after the start. ``since=<id>``: every message
  of a followed group with a larger id. ``since=0``: the whole history. A checkpoint's cursor,
  when there is one, wins.
* **Bad names.** A bad name (unreadable before anything was read) is the user's input: found
  by discovery it is raised before any poll and the follow does not start; found later (a
  probe, a first poll) it is raised once as :class:`~agupshup.errors.UnreadableGroups` and
  leaves the follow (iterate again for the rest). One that turns unreadable later, or after a
  restart, is dropped alone and reported to ``on_drop`` (default: a warning in the log);
  :attr:`Follower.dropped` lists both.
"""

from __future__ import annotations

from functools import partial

from agupshup import errors as E
from agupshup.aggregate import _tuning as tuning
from agupshup.aggregate._calls import FATAL, UNREADABLE, _public, _stamps, _why, log
from agupshup.aggregate._claim import _claim_of
from agupshup.aggregate._planning import _Planning
from agupshup.aggregate._source import _Source
from agupshup.checkpoint import FollowCursor
from agupshup.models import Group, Message
from agupshup.planner import JOINED, PUBLIC, Channel, GroupInfo, Planner, UnreadableGroups


class _Discovery(_Planning):
    """The start, discovery and probes; a group found unreadable."""

    # -- start ----------------------------------------------------------------------------

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            if self._peers is not None:
                self._shared = await self._peers.heads([JOINED.key, PUBLIC.key])
                self._advanced = dict(self._shared)
            await self._load()
            infos = await self._discover()
            self._planner = Planner(infos, self.budget, self.mode)
            # "now": every message with an id above the newest one discovery saw is new.
            self._starts = {g: self._known if s is None else s for g, s in self._starts.items()}
            await self._begin()
        except BaseException:
            self._closed = True  # nothing to follow, and nothing to save
            raise
        now = self.clock.time()
        for channel, (page, _) in self._first_pages.items():
            self._planner.seed_source(channel, self._covered(channel, infos), _stamps(page), now)
        self._resample_at = self.clock.monotonic() + self.resample_every
        self._replan()
        # A page kept for a source the plan does not poll would be stale by its first poll.
        self._first_pages = {c: p for c, p in self._first_pages.items() if c.key in self._sources}
        self._claim = self._claim_now()

    async def _begin(self) -> None:
        """With peers, the shared sources start where the fleet started: this follower's
        start only if it is the first. The joined stream starts at the earliest group start
        (it walks down itself); the public stream now (each group that starts earlier catches
        up on its own stream, read by its owner, whose cursor keeps that walk)."""
        if self._peers is None or not self._starts:
            return
        start = min(s for s in self._starts.values() if s is not None)
        shared = await self._peers.begin({JOINED.key: start, PUBLIC.key: self._known})
        self._shared = dict(shared)
        self._advanced = dict(shared)

    async def _load(self) -> None:
        cursor = self._resume
        if cursor is None and self._checkpoint is not None:
            raw = await self._checkpoint.store.load(self._key)
            self._saved = raw
            cursor = None if raw is None else FollowCursor.from_json(raw)
        start = None if self.since == "now" else int(self.since)
        self._starts = dict.fromkeys(self.groups, start)
        if self._peers is not None and self._shared:
            # Peers that followed before resume at their shared heads: a group no cursor names
            # and whose own stream another reads starts there (now, once the shared sources
            # are read from their heads); its reader's cursor holds its own progress.
            self._starts.update((g, None) for g in self.groups if not self._peers.owns(g))
        if cursor is None:
            return
        self._seen = set(cursor.yielded)
        self._handed = set(cursor.yielded)
        shared = [h for k, h in self._shared.items() if k in cursor.heads]
        for g in self.groups:
            claim = _claim_of(cursor, g)
            self._starts[g] = claim if claim is not None else start
            if claim is not None and shared and self._peers is not None and \
                    Channel("group", g).key not in cursor.heads:
                # Claimed through a shared source, no walk of its own stream pending: the
                # peers handed out every item of that source up to its shared head since.
                self._starts[g] = max(claim, min(shared))
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
            if self.joined is None:
                self.joined = await self._joined_groups() if has_login else {}
            joined = self.joined
        infos = {g: GroupInfo(g, joined=g in joined, public=_public(joined.get(g)))
                 for g in self.groups}
        for m in public:
            g = m.group_name.lower()
            if g in infos:
                infos[g] = GroupInfo(g, joined=infos[g].joined, public=True)
        self._readable = {g for g, i in infos.items() if i.public or i.joined}
        unknown = [g for g in self.groups
                   if infos[g].public is None and not (infos[g].joined and planned)]
        if len(unknown) > tuning.PROBE_AT_START:
            if planned:
                # Probing them all first would hold every delivery back (500 groups: 17
                # minutes at the minute window): the public stream covers them meanwhile.
                self._pending = set(unknown)
                return infos
            # Each group's own stream is its probe; a few are read now to learn the head.
            unknown = unknown[:tuning.PROBE_AT_START] if self.since == "now" else []
        bad = {}
        for g in unknown:
            infos[g] = await self._probe(g)
            if infos[g].problem:
                bad[g] = infos[g].problem
        if bad and self._restored is None and self._peers is None:
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
        for page_no in range(tuning._LIST_PAGES):
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
        if info.name not in self._readable and self._restored is None and self._peers is None:
            self._to_raise = problem  # never read: a bad name, raised once
        else:
            self._report(problem)
        self._readable.discard(info.name)
        if self.groups:
            self._replan_soon()

    # -- background work: probes and catch-ups --------------------------------------------

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
                tuning.PROBE_SHARE * self.budget.calls_per_second)

    async def _probe_or_wait(self, name: str) -> GroupInfo | None:
        try:
            return await self._probe(name, background=True)
        except FATAL:
            raise
        except E.GupshupError as exc:
            log.warning("group:%s: probe failed (%s); trying again later", name, exc)
            return None
