"""Walking a moving, newest-first paginated call: the algorithms, over any page source.

Rules this module enforces:

* A :class:`Source` is one paginated call (``fetch(start, count)``), its largest page, and how to
  tell its items apart: by ``id`` (messages, replies) or by name (groups). Every read asks for
  the full page size; a page shorter than that is the end, and no further call is made.
* Streams are newest first and grow at the head (protocol.md §4), so a position read later can
  repeat items already seen, but never skip one. The backlog walk (:func:`walk_back`) keeps the
  oldest id it has yielded: items of a page with an id at or above it are the shift and are
  skipped; the rest are yielded, newest first. Where it reads next is a :class:`Chase`: ahead by
  the shift it has measured, so that the page starts with at least one item already seen (the
  proof that nothing was skipped); a page with none is read again further back. So the walk
  ends at any steady arrival rate, and costs about ⌈N/14⌉ reads when items keep arriving,
  ⌈N/15⌉ when none do.
* The catch-up (:func:`catch_up`) collects everything newer than a known id by walking back
  from the head the same way until it meets an item at or below that id (or the end), and
  returns it oldest first.
* Lists without ids (groups) are walked by position and deduplicated by lower-cased name.
* Walks of one source share their reads through the :class:`Reader`: a read of a page that is
  already in flight, sent after the walk's own previous read completed, is awaited rather than
  sent again (an older one could be older than what the walk has seen). N walks in step cost
  the reads of one.
* A read refused for quota (:class:`~agupshup.errors.QuotaExhausted`, or a 113 the client gave up
  on) is not a failure: :func:`read_page` waits, on the client's clock, and reads again.
* Nothing here does I/O of its own; the state objects are plain, and every change to them
  happens just before the item it describes is yielded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import anyio

from agupshup import errors as E
from agupshup.clock import Clock
from agupshup.models import QuotaWindow

__all__ = [
    "Chase",
    "Descent",
    "IdState",
    "NameState",
    "Phase",
    "Place",
    "Source",
    "catch_up",
    "hold_delay",
    "read_page",
    "walk_back",
    "walk_names",
]

log = logging.getLogger("agupshup.streams")
T = TypeVar("T")

#: ``backlog``: walking back through history; ``live``: history done, following the head.
Phase = Literal["backlog", "live"]

Fetch = Callable[[int, int], Awaitable[Sequence[T]]]
QuotaFn = Callable[[], Sequence[QuotaWindow]]

#: How long to wait after a 113 when the scheduler says nothing about its windows.
THROTTLE_BACKOFF = 5.0
THROTTLE_BACKOFF_CAP = 60.0


@dataclass(frozen=True, slots=True, eq=False)
class Source(Generic[T]):
    """One paginated call: where pages come from and how items are told apart."""

    #: Names the stream: ``group:jumpy``, ``public``… (cursors and the poller hub use it).
    key: str
    fetch: Fetch[T]
    #: The largest page the method allows: every read asks for exactly this many.
    page: int
    #: The item's id (id-ordered streams) — None for lists deduplicated by name.
    ident: Callable[[T], int] | None = None
    #: The item's name (lists without ids).
    name: Callable[[T], str] | None = None


@dataclass(slots=True)
class IdState:
    """Where an id-ordered walk stands. ``newest``/``oldest``: the extreme ids yielded."""

    phase: Phase = "backlog"
    newest: int | None = None
    oldest: int | None = None
    #: Backlog: the position of the page being yielded (or the next one to read).
    offset: int = 0


@dataclass(slots=True)
class NameState:
    """Where a walk over a list without ids stands: the position and the names yielded."""

    phase: Phase = "backlog"
    offset: int = 0
    seen: set[str] = field(default_factory=set)


class Place:
    """One walk's place in a :class:`Reader`'s reads: the reads it may share."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        #: The reader's completion count when this walk's last read completed.
        self.seen = 0


@dataclass(slots=True, eq=False)
class _Flight:
    """A read in flight, which other walks of the same source and position may share."""

    started: int
    done: anyio.Event = field(default_factory=anyio.Event)
    items: Sequence[Any] | None = None
    error: BaseException | None = None
    finished: int = 0


class Reader:
    """Reads pages of a source, waiting out quota refusals on ``clock``.

    Walks that hold a :class:`Place` share reads: one that asks for a page (same source, same
    position) while the same read is in flight waits for its answer instead of sending another
    — but only a read sent after its own previous read completed, since an older one could
    show the stream as it was before what the walk has already seen. So N walks of one source
    in step cost the reads of one.
    """

    __slots__ = ("_completed", "_flights", "calls", "clock", "quota")

    def __init__(self, clock: Clock, quota: QuotaFn) -> None:
        self.clock = clock
        self.quota = quota
        #: Pages requested (successful reads), for tests and benchmarks.
        self.calls = 0
        self._completed = 0
        self._flights: dict[tuple[str, int], _Flight] = {}

    async def __call__(
        self, source: Source[T], start: int, ticket: Place | None = None
    ) -> Sequence[T]:
        if ticket is None:
            return await read_page(source, start, self.clock, self.quota, self)
        key = (source.key, start)
        while True:
            flight = self._flights.get(key)
            if flight is None or flight.started < ticket.seen:
                return await self._fly(key, source, start, ticket)
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.items is not None:
                ticket.seen = flight.finished
                return flight.items
            # the walk that sent it was cancelled: send our own

    async def _fly(
        self, key: tuple[str, int], source: Source[T], start: int, ticket: Place
    ) -> Sequence[T]:
        flight = self._flights[key] = _Flight(self._completed)
        try:
            items = await read_page(source, start, self.clock, self.quota, self)
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.items = items
            return items
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            self._completed += 1
            flight.finished = ticket.seen = self._completed
            flight.done.set()


async def read_page(
    source: Source[T], start: int, clock: Clock, quota: QuotaFn, counter: Reader | None = None
) -> Sequence[T]:
    """One full page at ``start``. Quota refusals are waited out, never raised."""
    backoff = THROTTLE_BACKOFF
    while True:
        try:
            items = await source.fetch(start, source.page)
        except E.QuotaExhausted as exc:
            wait = max(exc.free_at - clock.monotonic(), hold_delay(quota(), clock.monotonic()))
            wait = max(wait, 1.0)
        except E.ThrottleLimitExceeded:
            wait = max(hold_delay(quota(), clock.monotonic()), backoff)
            backoff = min(backoff * 2, THROTTLE_BACKOFF_CAP)
        else:
            if counter is not None:
                counter.calls += 1
            return items
        log.info("%s: quota hold; reading again in %.1fs", source.key, wait)
        await clock.sleep(wait)


def hold_delay(windows: Sequence[QuotaWindow], now: float) -> float:
    """Seconds until every window has room and no hold is set (0 when free now)."""
    wait = 0.0
    for w in windows:
        wait = max(wait, w.free_at - now)
        if w.held_until is not None:
            wait = max(wait, w.held_until - now)
    return wait


class ReadFn(Protocol):
    """Reads one full page of a source at a position (a :class:`Reader`)."""

    async def __call__(
        self, source: Source[T], start: int, ticket: Place | None = None
    ) -> Sequence[T]: ...


def _ident(source: Source[T]) -> Callable[[T], int]:
    if source.ident is None:
        raise TypeError(f"{source.key}: items have no id")
    return source.ident


Outcome = Literal["found", "shift", "gap", "end"]


@dataclass(slots=True)
class Chase:
    """Where the next read of a backward walk goes while new items push old ones down.

    Sans-I/O: :meth:`position` says where to read, :meth:`observe` takes what that read showed.
    The *anchor* is a position with no unseen item before it, as of the read that set it
    (``exact``: that read saw the walk's boundary, so the anchor was then the exact position of
    the first unseen item). Since then the boundary moved by ``D`` positions, one arrival each;
    the chase estimates ``D`` as reads × arrivals per read and reads just short of it, so that
    the page starts with ``margin`` items already seen: that overlap proves there is no gap.

    * all seen (a full page): ``D`` is beyond the page — a lower bound on the rate; read
      further (twice as far after two such pages in a row);
    * nothing seen at a position past the last one known to hold a seen item: items may have
      been skipped — an upper bound on the rate; step back and widen the margin;
    * both: the boundary is found, its move measures the rate exactly, and the page's unseen
      items are the next ones; the page's end is the new anchor.

    With a steady rate of K arrivals per read the chase settles in a few reads and then reads
    15 − ``margin`` new items a page (``margin`` is 1 when K does not vary), so it ends at any
    K. Reading at the anchor, or just past a page entirely seen, can never skip an item.
    """

    page: int
    anchor: int = 0
    exact: bool = False
    #: Reads since the anchor was set.
    reads: int = 0
    #: Arrivals per read, measured between two exact anchors (None: not yet).
    rate: float | None = None
    #: Mean deviation of successive measurements: how much margin the estimate needs.
    spread: float = 0.0
    margin: int = 1
    #: Bounds on arrivals per read since the anchor, from pages all seen / possibly gapped.
    low: float = 0.0
    high: float | None = None
    #: ``D`` is at least this (a page entirely seen).
    seen_to: int = 0
    #: Consecutive pages entirely seen.
    passed: int = 0

    def position(self) -> int:
        """Where to read next: never before the anchor."""
        n = self.reads + 1
        ahead = round(n * self._estimate()) - self.margin
        # seen_to is safe (every position before it holds seen items, and arrivals only add
        # more); low × n - 1 is where a steady rate would put the boundary
        return self.anchor + max(self.seen_to, math.floor(self.low * n) - 1, ahead)

    def _estimate(self) -> float:
        rate = self.rate or 0.0
        if rate < self.low and self.high is None:
            return self.low * (2 if self.passed > 1 else 1)
        if rate < self.low or (self.high is not None and rate > self.high):
            return (self.low + (self.high or self.low)) / 2
        return rate

    def observe(self, position: int, seen: int, got: int) -> Outcome:
        """A read at ``position`` returned ``got`` items, the first ``seen`` of them already
        seen. ``found``: the rest are the next unseen items; ``end``: nothing is left."""
        off = position - self.anchor
        self.reads += 1
        if seen == 0 and off > self.seen_to:
            self.high = off / self.reads
            if self.high < self.low:  # arrivals are not steady: trust the newer bound
                self.low = 0.0
            self.margin = self._max_margin()
            self.passed = 0
            return "gap"
        if seen >= got:
            if got < self.page:
                return "end"
            self.seen_to = off + got
            self.low = self.seen_to / self.reads
            if self.high is not None and self.high < self.low:
                self.high = None
            self.passed += 1
            return "shift"
        self._measure((off + seen) / self.reads)
        self.anchor, self.exact, self.reads = position + got, True, 0
        self.low, self.high, self.seen_to, self.passed = 0.0, None, 0, 0
        return "found"

    def _measure(self, rate: float) -> None:
        if not self.exact:  # the anchor's own position was a lower bound: no measurement
            return
        if self.rate is not None:
            self.spread = 0.7 * self.spread + 0.3 * abs(rate - self.rate)
        self.margin = min(1 + math.ceil(2 * self.spread), self._max_margin())
        self.rate = rate

    def _max_margin(self) -> int:
        return max(1, self.page // 2)


@dataclass(slots=True)
class Descent:
    """A resumable walk down one newest-first source: every id in ``(low, top)`` not yet read.

    Sans-I/O, for callers that must keep a walk across cancellations, failures and polls (the
    follow engine): :meth:`position` says where to read, :meth:`take` takes the ids that read
    showed and returns the indices of the items it newly covers (ids below ``top``, above
    ``low``, each below the one before). Reads are placed by a :class:`Chase` on ``top``, so
    the walk ends at any arrival rate and never skips an item. ``top`` None: nothing read yet
    (the first read is at the head). ``done``: the walk met ``low`` or the end of the source.
    """

    page: int
    low: int
    top: int | None = None
    done: bool = False
    chase: Chase = field(init=False)

    def __post_init__(self) -> None:
        self.chase = Chase(self.page)

    def position(self) -> int:
        return self.chase.position()

    def take(self, position: int, ids: Sequence[int]) -> list[int]:
        """The read at ``position`` returned items with these ids; the indices of new ones."""
        seen = 0
        if self.top is not None:
            while seen < len(ids) and ids[seen] >= self.top:
                seen += 1
        outcome = self.chase.observe(position, seen, len(ids))
        if outcome == "end":
            self.done = True
        if outcome != "found":
            return []
        fresh: list[int] = []
        below = self.top
        for n in range(seen, len(ids)):
            i = ids[n]
            if i <= self.low:
                self.done = True
                break
            if below is None or i < below:
                fresh.append(n)
                below = i
        self.top = below
        if len(ids) < self.page:
            self.done = True
        return fresh


async def _chase(
    source: Source[T], read: ReadFn, chase: Chase, boundary: Callable[[], int | None]
) -> AsyncGenerator[tuple[int, Sequence[T], int], None]:
    """The pages that continue a backward walk, as (position, items, index of the first unseen
    item); ``boundary()`` is the smallest id seen so far (None: nothing yet). Pages that do not
    continue it (all seen, or a possible gap) are read again elsewhere, not returned. Ends after
    a short page."""
    ident = _ident(source)
    ticket = Place()
    while True:
        position = chase.position()
        items = await read(source, position, ticket)
        low = boundary()
        seen = 0
        if low is not None:
            while seen < len(items) and ident(items[seen]) >= low:
                seen += 1
        outcome = chase.observe(position, seen, len(items))
        if outcome == "found":
            yield position, items, seen
        if outcome in ("found", "end") and len(items) < source.page:
            return


async def walk_back(source: Source[T], state: IdState, read: ReadFn) -> AsyncIterator[T]:
    """The backlog: every item older than ``state.oldest`` (all, if None), newest first.

    Ends on a short page. ``state`` is updated before each yield, so a cursor taken between
    items resumes exactly after the last one yielded.
    """
    ident = _ident(source)
    page = source.page
    chase = Chase(page, anchor=state.offset)
    async with aclosing(_chase(source, read, chase, lambda: state.oldest)) as pages:
        async for position, items, first in pages:
            fresh = _descending(items[first:], state.oldest, ident)
            for n, item in enumerate(fresh):
                i = ident(item)
                state.oldest = i
                if state.newest is None or i > state.newest:
                    state.newest = i
                if n == len(fresh) - 1:  # the page is done once its last item is out
                    _page_done(state, position + len(items), len(items) >= page)
                yield item
            if not fresh:
                _page_done(state, position + len(items), len(items) >= page)
    state.phase = "live"


def _descending(items: Sequence[T], below: int | None, ident: Callable[[T], int]) -> list[T]:
    """``items`` with ids below ``below``, each below the one before (a server that repeats or
    reorders items within a page is not trusted with the order)."""
    out: list[T] = []
    for item in items:
        i = ident(item)
        if below is None or i < below:
            out.append(item)
            below = i
    return out


def _page_done(state: IdState | NameState, end: int, full: bool) -> None:
    if full:
        state.offset = end
    else:
        state.phase = "live"


async def catch_up(
    source: Source[T], after: int | None, read: ReadFn, *, upto: int | None = None
) -> list[T]:
    """Every item with ``after < id`` (and ``id <= upto``), oldest first.

    Walks back from the head, as :func:`walk_back` does (so it ends however fast items
    arrive), until a page holds an item at or below ``after``, or is short.
    """
    ident = _ident(source)
    newest_first: list[T] = []
    low: int | None = None  # the smallest id met: anything at or above it is the shift

    async with aclosing(_chase(source, read, Chase(source.page), lambda: low)) as pages:
        async for _position, items, first in pages:
            for item in _descending(items[first:], low, ident):
                i = ident(item)
                if after is not None and i <= after:
                    newest_first.reverse()
                    return newest_first
                low = i
                if upto is None or i <= upto:
                    newest_first.append(item)
    newest_first.reverse()
    return newest_first


async def walk_names(source: Source[T], state: NameState, read: ReadFn) -> AsyncIterator[T]:
    """Every item whose (lower-cased) name is not in ``state.seen``, in the server's order.

    Lists have no ids, so no shift can be measured: pages are read one after the other."""
    if source.name is None:
        raise TypeError(f"{source.key}: items have no name")
    name = source.name
    while True:
        items = await read(source, state.offset)
        end, full = state.offset + len(items), len(items) >= source.page
        fresh = [item for item in items if name(item).lower() not in state.seen]
        for n, item in enumerate(fresh):
            state.seen.add(name(item).lower())
            if n == len(fresh) - 1:  # the page is done once its last item is out
                _page_done(state, end, full)
            yield item
        if not fresh:
            _page_done(state, end, full)
        if not full:
            return
