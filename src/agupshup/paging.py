"""Walking a moving, newest-first paginated call: the algorithms, over any page source.

Rules this module enforces:

* A :class:`Source` is one paginated call (``fetch(start, count)``), its largest page, and how to
  tell its items apart: by ``id`` (messages, replies) or by name (groups). Every read asks for
  the full page size; a page shorter than that is the end, and no further call is made.
* Streams are newest first and grow at the head (WIRE.md §4), so a position read later can
  repeat items already seen, but never skip one. The backlog walk (:func:`walk_back`) keeps the
  oldest id it has yielded: items of a page with an id at or above it are the shift and are
  skipped; the rest are yielded, newest first. The next read starts one full page further on,
  whatever the shift was, so nothing is read twice except the shift itself.
* The catch-up (:func:`catch_up`) collects everything newer than a known id by reading from the
  head until it meets an item at or below that id (or the end), skipping the shift by id, and
  returns it oldest first.
* Lists without ids (groups) are walked by position and deduplicated by lower-cased name.
* A read refused for quota (:class:`~agupshup.errors.QuotaExhausted`, or a 113 the client gave up
  on) is not a failure: :func:`read_page` waits, on the client's clock, and reads again.
* Nothing here does I/O of its own; the state objects are plain, and every change to them
  happens just before the item it describes is yielded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from agupshup import errors as E
from agupshup.clock import Clock
from agupshup.models import QuotaWindow

__all__ = [
    "IdState",
    "NameState",
    "Phase",
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


class Reader:
    """Reads pages of a source, waiting out quota refusals on ``clock``."""

    __slots__ = ("calls", "clock", "quota")

    def __init__(self, clock: Clock, quota: QuotaFn) -> None:
        self.clock = clock
        self.quota = quota
        #: Pages requested (successful reads), for tests and benchmarks.
        self.calls = 0

    async def __call__(self, source: Source[T], start: int) -> Sequence[T]:
        return await read_page(source, start, self.clock, self.quota, self)


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


ReadFn = Callable[[Source[T], int], Awaitable[Sequence[T]]]


def _ident(source: Source[T]) -> Callable[[T], int]:
    if source.ident is None:
        raise TypeError(f"{source.key}: items have no id")
    return source.ident


async def walk_back(source: Source[T], state: IdState, read: ReadFn[T]) -> AsyncIterator[T]:
    """The backlog: every item older than ``state.oldest`` (all, if None), newest first.

    Ends on a short page. ``state`` is updated before each yield, so a cursor taken between
    items resumes exactly after the last one yielded.
    """
    ident = _ident(source)

    def fresh_of(items: Sequence[T]) -> list[T]:
        fresh: list[T] = []
        boundary = state.oldest
        for item in items:
            i = ident(item)
            if boundary is not None and i >= boundary:
                continue  # the shift: yielded already (or newer than the walk's start)
            boundary = i
            fresh.append(item)
        return fresh

    def mark(item: T) -> None:
        i = ident(item)
        state.oldest = i
        if state.newest is None or i > state.newest:
            state.newest = i

    async with aclosing(_walk(source, state, read, fresh_of, mark)) as items:
        async for item in items:
            yield item


async def _walk(
    source: Source[T],
    state: IdState | NameState,
    read: ReadFn[T],
    fresh_of: Callable[[Sequence[T]], list[T]],
    mark: Callable[[T], None],
) -> AsyncGenerator[T, None]:
    """Page from ``state.offset`` until a short page, yielding what ``fresh_of`` keeps."""
    page = source.page
    while True:
        items = await read(source, state.offset)
        full = len(items) >= page
        fresh = fresh_of(items)
        for n, item in enumerate(fresh):
            mark(item)
            if n == len(fresh) - 1:  # the page is done once its last item is out
                _page_done(state, full, page)
            yield item
        if not fresh:
            _page_done(state, full, page)
        if not full:
            return


def _page_done(state: IdState | NameState, full: bool, page: int) -> None:
    if full:
        state.offset += page
    else:
        state.phase = "live"


async def catch_up(
    source: Source[T], after: int | None, read: ReadFn[T], *, upto: int | None = None
) -> list[T]:
    """Every item with ``after < id`` (and ``id <= upto``), oldest first.

    Reads from the head back until a page holds an item at or below ``after``, or is short. Items
    that slid into a later page while reading are recognised by id and dropped.
    """
    ident = _ident(source)
    page = source.page
    newest_first: list[T] = []
    low: int | None = None  # the smallest id collected: anything at or above it is the shift
    offset = 0
    while True:
        items = await read(source, offset)
        done = len(items) < page
        for item in items:
            i = ident(item)
            if after is not None and i <= after:
                done = True
                break
            if (low is not None and i >= low) or (upto is not None and i > upto):
                continue
            newest_first.append(item)
            low = i
        if done:
            break
        offset += page
    newest_first.reverse()
    return newest_first


async def walk_names(source: Source[T], state: NameState, read: ReadFn[T]) -> AsyncIterator[T]:
    """Every item whose (lower-cased) name is not in ``state.seen``, in the server's order."""
    if source.name is None:
        raise TypeError(f"{source.key}: items have no name")
    name = source.name

    def fresh_of(items: Sequence[T]) -> list[T]:
        return [item for item in items if name(item).lower() not in state.seen]

    def mark(item: T) -> None:
        state.seen.add(name(item).lower())

    async with aclosing(_walk(source, state, read, fresh_of, mark)) as items:
        async for item in items:
            yield item
