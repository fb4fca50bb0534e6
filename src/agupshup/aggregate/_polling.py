"""The follower's work loop: what is due next, and the polls and walks of its sources.

* **Walks.** A poll reads the source's first page, opens a descent for what is new above the
  head, and walks the open descents page by page (the paging module's chase places each read,
  so a walk ends at any arrival rate and never skips). State moves after every page, so a
  failure, a cancel or the end of a poll's :data:`~agupshup.aggregate._tuning.POLL_PAGES` loses
  nothing: the next poll walks on where this one stopped. A poll that stops there re-plans at
  once: the planner prices what the source carries (rates are measured from the time the
  items of a page span) and moves groups off a flooded source.
* **Faults** back off per source (doubling from ``BACKOFF_FIRST`` to ``BACKOFF_CAP``) and
  resume, outages of any length included. Catch-ups back off like polls and never go before a
  poll that is due.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agupshup import errors as E
from agupshup.aggregate import _tuning as tuning
from agupshup.aggregate._calls import FATAL, UNREADABLE, log
from agupshup.aggregate._discovery import _Discovery
from agupshup.aggregate._peers import take_in
from agupshup.aggregate._source import _Source, _Top
from agupshup.aggregate._tuning import _backoff
from agupshup.models import Message
from agupshup.paging import Descent
from agupshup.planner import PUBLIC, Channel, GroupInfo


class _Polling(_Discovery):
    """The work loop, polls, walks and what they hand on."""

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
        if self._peers is not None and self._peers.turn()[1] != self._count:
            self._replan_soon()  # peers came or went: the plan's budget and the turns move
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
        return self._due_after(src, now, now)

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
            await self._take_in(src)
            top = await self._top(src)
        src.caught = True
        fresh: list[Message] = top.fresh if top is not None else []
        while src.gaps and pages < tuning.POLL_PAGES:
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

    async def _take_in(self, src: _Source) -> None:
        """Before a shared source's first page: what the peers handed out of it since this
        follower's last read need not be walked again."""
        if self._peers is None or src.channel.kind == "group":
            return
        try:
            shared = (await self._peers.heads([src.key])).get(src.key)
        except E.GupshupError as exc:
            log.warning("%s: the shared head was not read (%s)", src.key, exc)
            return
        if shared is not None:
            self._shared[src.key] = shared
            take_in(src, shared)

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

    async def _catch_up_poll(self, src: _Source) -> None:
        """One poll of a catch-up (the history a start or a hand-over asks for; it probes its
        group too): only when no poll is due, and backing off on faults like a poll."""
        await self._poll(src)
